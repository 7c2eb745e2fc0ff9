/**
 * Everything of the MQTT contract beyond the link itself, started and stopped as one
 * component by the Daemon: the decision key, the durable audit store and outbox, the signed
 * decision path, the command server and Home Assistant discovery.
 */
import type { Config } from '../../config/schema.js';
import { redactSecrets } from '../../core/log.js';
import type { SessionDecision } from '../decision/types.js';
import { AuditStore } from './audit/audit-store.js';
import { CameraOutageAudit } from './audit/camera-outages.js';
import { DecisionChannel } from './audit/decision-channel.js';
import type { AuditEventName } from './audit/events.js';
import { AuditOutbox } from './audit/outbox.js';
import { CommandServer, type CommandTarget } from './commands/command-server.js';
import { PersistentReplayGuard } from './commands/replay-store.js';
import { COMMAND_NAMES, MUTATING_COMMANDS } from './commands/request.js';
import type { ContractLink } from './contract-link.js';
import { HaDiscovery } from './ha-discovery.js';
import type { DecidedBy, DecisionPayload, InfoPayload, SeqSource } from './payloads.js';
import { DecisionSigner } from './signing/keys.js';

export interface ContractLogger {
  warn(obj: object, msg: string): void;
}

/** What `info.capabilities` lists: commands that change the device only once a fleet key can sign them. */
export function contractCapabilities(
  commands: Pick<Config['commands'], 'enabled' | 'fleet_public_keys'>,
): string[] {
  const usable = COMMAND_NAMES.filter(
    (c) => !MUTATING_COMMANDS.has(c) || commands.fleet_public_keys.length > 0,
  );
  return [
    'decision',
    'health',
    'availability',
    'audit',
    'signed_decisions',
    ...(commands.enabled ? usable.map((c) => `command:${c}`) : []),
  ];
}

export class ContractServices {
  readonly signer: DecisionSigner;
  readonly store: AuditStore;
  private outbox: AuditOutbox | null = null;
  private channel: DecisionChannel | null = null;
  private commands: CommandServer | null = null;
  private ha: HaDiscovery | null = null;
  /** One lost/back pair per outage, rate-limited per camera (a flapping source cannot flood the log). */
  private readonly outages = new CameraOutageAudit({ emit: (name, details) => this.event(name, details) });

  constructor(
    private readonly config: Config,
    private readonly deviceId: string,
    private readonly log: ContractLogger,
  ) {
    const dir = config.device.state_dir;
    this.signer = DecisionSigner.loadOrCreate(dir);
    const a = config.audit;
    this.store = new AuditStore(dir, {
      maxRecords: a.max_records,
      maxBytes: Math.round(a.max_mb * 2 ** 20),
      maxAgeS: a.max_age_days * 86400,
      synchronous: a.synchronous,
    });
  }

  /** Call before `link.start()`, so the first connect already replays what a previous run left. */
  attach(link: ContractLink, seq: SeqSource, target: CommandTarget, info: () => InfoPayload): void {
    const { config } = this;
    this.outbox = new AuditOutbox(this.store, link, 100, this.log);
    this.channel = new DecisionChannel({
      deviceId: this.deviceId,
      seq,
      expiryS: config.mqtt.decision_expiry_s,
      signer: this.signer,
      outbox: this.outbox,
      link,
    });
    if (config.commands.enabled) {
      this.commands = new CommandServer({
        link,
        target,
        deviceId: this.deviceId,
        policy: {
          maxBytes: config.commands.max_payload_bytes,
          requireSignature: config.commands.require_signature,
          fleetKeys: config.commands.fleet_public_keys,
          maxSkewS: config.commands.max_clock_skew_s,
        },
        audit: (details) => this.event('command_executed', details, true),
        replay: new PersistentReplayGuard(config.device.state_dir),
        onError: (err) => this.log.warn({ err }, 'command handling failed'),
      });
      this.commands.start();
    }
    this.event('daemon_started', { public_key: this.signer.publicKey });
    if (config.mqtt.homeassistant.enabled) {
      this.ha = new HaDiscovery(link, config.mqtt.homeassistant.prefix, info, {
        decisionS: config.mqtt.decision_expiry_s,
        healthIntervalS: config.mqtt.health_interval_s,
      });
      this.ha.start();
    }
  }

  /** Numbers, signs, records and publishes a decision (DecisionChannel); returns the payload. */
  decide(d: SessionDecision, by: DecidedBy): DecisionPayload {
    if (!this.channel) throw new Error('ContractServices.decide before attach');
    return this.channel.decide(d, by);
  }

  /** Records an audit event; a failing store is logged, never thrown into the caller's path. */
  event(name: AuditEventName, details: Record<string, unknown>, batched = false): void {
    try {
      this.channel?.event(name, details, batched);
    } catch (err) {
      this.log.warn({ err, event: name }, 'audit event not recorded');
    }
  }

  /** Audits `camera_lost` when a camera stops delivering and `camera_back` when a lost one runs again. */
  cameraState(cameraId: string, state: string, rawError: string | null): void {
    // Errors of network sources quote their URL, credentials included.
    this.outages.state(cameraId, state, rawError === null ? null : redactSecrets(rawError));
  }

  outboxFigures(): { pending: number; oldest_age_s: number | null } {
    const c = this.store.counters();
    return {
      pending: c.pending,
      oldest_age_s:
        c.oldest_pending_ms === null ? null : Math.round((Date.now() - c.oldest_pending_ms) / 1000),
    };
  }

  async close(): Promise<void> {
    this.outages.close();
    await this.commands?.stop();
    this.ha?.stop();
    this.outbox?.stop();
    this.store.close();
  }
}
