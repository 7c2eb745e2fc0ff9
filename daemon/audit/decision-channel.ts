/**
 * The decision path: build the payload -> sign -> write to the audit store (durable, before
 * anything leaves the device) -> publish on `<camera>/decision` (expiring) and on `audit`
 * (acknowledged rows are marked in the store). Used by the Daemon and by the tests' simulated kiosk.
 */
import type { MqttLink } from '../mqtt/mqtt-link.js';
import { buildDecisionPayload, type DecisionInput, type DecisionPayload, type SeqSource } from '../mqtt/topics.js';
import type { DecisionSigner } from '../signing/keys.js';
import { type AuditEventName, buildAuditEvent } from './events.js';
import type { AuditOutbox } from './outbox.js';

export interface DecisionChannelOptions {
  deviceId: string;
  seq: SeqSource;
  expiryS: number;
  signer: DecisionSigner;
  outbox: AuditOutbox;
  link: Pick<MqttLink, 'publishDecision'>;
  now?: () => number;
}

export class DecisionChannel {
  constructor(private readonly opts: DecisionChannelOptions) {}

  /** Synchronous up to the durable write: when it returns, the decision is in the audit store. */
  decide(input: DecisionInput): DecisionPayload & { sig: string } {
    const { deviceId, seq, expiryS, signer, outbox, link } = this.opts;
    const payload = signer.sign(
      buildDecisionPayload(input, { deviceId, seq, expiryS, ...(this.opts.now ? { now: this.opts.now } : {}) }),
    );
    outbox.record('decision', payload);
    void link.publishDecision(input.camera_id, payload);
    return payload;
  }

  event(event: AuditEventName, details: Record<string, unknown>): void {
    this.opts.outbox.record('event', buildAuditEvent(this.opts.deviceId, event, details));
  }
}
