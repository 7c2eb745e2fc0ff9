/**
 * The decision path: build the payload -> sign -> write to the audit store (durable, before
 * anything leaves the device) -> publish on `<camera>/decision` (expiring) and on `audit`
 * (acknowledged rows are marked in the store). Used by the Daemon and by the tests' simulated kiosk.
 * A decision made while the broker is unreachable is not queued for the decision topic.
 */

import type { SessionDecision } from '../../decision/types.js';
import type { ContractLink } from '../contract-link.js';
import { buildDecisionPayload, type DecidedBy, type DecisionPayload, type SeqSource } from '../payloads.js';
import type { DecisionSigner } from '../signing/keys.js';
import { type AuditEventName, buildAuditEvent } from './events.js';
import type { AuditOutbox } from './outbox.js';

export interface DecisionChannelOptions {
  deviceId: string;
  seq: SeqSource;
  expiryS: number;
  signer: DecisionSigner;
  outbox: AuditOutbox;
  link: Pick<ContractLink, 'publishDecision'>;
  now?: () => number;
}

export class DecisionChannel {
  constructor(private readonly opts: DecisionChannelOptions) {}

  /** Synchronous up to the durable write: when it returns, the decision is in the audit store. */
  decide(d: SessionDecision, by: DecidedBy): DecisionPayload & { sig: string } {
    const { deviceId, seq, expiryS, signer, outbox, link } = this.opts;
    const built = buildDecisionPayload(d, by, {
      deviceId,
      seq,
      expiryS,
      ...(this.opts.now ? { now: this.opts.now } : {}),
    });
    // Two signatures: the delivery kind is under each, so the audit copy (live or replayed
    // after an outage) can never be moved onto a decision topic and verify as live.
    const live = signer.sign(built);
    outbox.record('decision', signer.sign({ ...built, delivery: 'audit' as const }));
    // Live only: offline decisions are in the audit store and reach `audit` after reconnect,
    // never `<camera>/decision`, where a gate could act on them late.
    void link.publishDecision(built.camera_id, live, true);
    return live;
  }

  /** `batched`: written with the other events of this event-loop turn (command floods). */
  event(event: AuditEventName, details: Record<string, unknown>, batched = false): void {
    const payload = buildAuditEvent(this.opts.deviceId, event, details);
    if (batched) this.opts.outbox.recordSoon('event', payload);
    else this.opts.outbox.record('event', payload);
  }
}
