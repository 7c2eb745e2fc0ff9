/**
 * The durable outbox in front of the `audit` topic. `record()` writes the row first (durable
 * when it returns), then publishes it if connected. After every (re)connect the rows the
 * broker never acknowledged are sent again, oldest first, with `replayed: true`; rows recorded
 * during the replay wait for it, so the audit topic stays in id order on every connection.
 *
 * Failover: when the link comes back on another broker than before (mqtt.url lists several),
 * the rows the old broker acknowledged in the last FAILOVER_RESEND_MS are sent again too,
 * marked replayed: a broker that acknowledged a row and then died may never have passed it on
 * (to its subscribers, or over a bridge to a central broker). Receivers deduplicate on `id`.
 */
import type { PublishOutcome } from '../../mqtt/mqtt-link.js';
import type { ContractLink } from '../contract-link.js';
import type { AuditKind, AuditRecord, AuditStore } from './audit-store.js';

export interface OutboxLogger {
  warn(obj: object, msg: string): void;
}

/** The part of ContractLink the outbox uses (a fake in unit tests). */
export type OutboxLink = Pick<ContractLink, 'publish' | 'isConnected' | 'on' | 'off'> &
  Partial<Pick<ContractLink, 'broker'>> & {
    topics: { audit: string };
  };

/** How far back a failover re-sends acknowledged rows. */
export const FAILOVER_RESEND_MS = 60_000;

export class AuditOutbox {
  /** Rows with id > this were recorded after the current connection's replay began: not replays. */
  private liveFrom = Number.POSITIVE_INFINITY;
  private pumping: Promise<void> | null = null;
  private stopped = false;
  /** Rows with id <= this were left by a previous run. */
  private readonly bootMax: number;
  private connectedBefore = false;
  /** The broker of the previous connection (when the link names it). */
  private lastBroker: string | null = null;
  /** Set on a connect to another broker: the replay includes recently acknowledged rows. */
  private failover = false;
  private readonly onConnect = () => {
    const broker = this.link.broker ?? null;
    this.failover =
      this.connectedBefore && broker !== null && this.lastBroker !== null && broker !== this.lastBroker;
    this.lastBroker = broker;
    // On the first connect only rows of a previous run are re-sent; rows this run recorded
    // before it (daemon_started, decisions while the broker was not yet reachable) go out
    // for the first time, so they are not marked replayed.
    this.liveFrom = this.connectedBefore ? this.store.maxId() : this.bootMax;
    this.connectedBefore = true;
    void this.pump();
  };
  readonly stats = { sent: 0, replayed: 0, acked: 0, failovers: 0 };

  constructor(
    private readonly store: AuditStore,
    private readonly link: OutboxLink,
    /** Rows sent at once during a replay (pipelined QoS 1). */
    private readonly window = 100,
    private readonly log?: OutboxLogger,
  ) {
    this.bootMax = store.maxId();
    link.on('connect', this.onConnect);
    // Rows left from a previous run (a crash, an outage): sent on the first connect.
    if (link.isConnected) this.onConnect();
  }

  /** Writes the row durably, then publishes it when nothing older is waiting. Throws only if the store fails. */
  record(kind: AuditKind, payload: object): AuditRecord {
    const rec = this.store.append(kind, JSON.stringify(payload));
    if (this.link.isConnected && !this.pumping && !this.stopped) void this.send(rec, false);
    return rec;
  }

  /**
   * For floods of small events (command requests): rows are written together at the end of
   * the event-loop turn, one transaction for all, then published like `record()`'s.
   */
  recordSoon(kind: AuditKind, payload: object): void {
    this.soon.push(JSON.stringify(payload));
    this.soonKind = kind;
    this.soonFlush ??= setImmediate(this.flushSoon);
  }

  private soon: string[] = [];
  private soonKind: AuditKind = 'event';
  private soonFlush: NodeJS.Immediate | null = null;
  private readonly flushSoon = () => {
    this.soonFlush = null;
    const payloads = this.soon.splice(0);
    if (!payloads.length) return;
    try {
      const recs = this.store.appendMany(this.soonKind, payloads);
      if (this.link.isConnected && !this.pumping && !this.stopped)
        for (const r of recs) void this.send(r, false);
    } catch (err) {
      this.log?.warn({ err, rows: payloads.length }, 'audit rows not written');
    }
  };

  /** Resolves when the current replay (if any) has finished. */
  async idle(): Promise<void> {
    while (this.pumping !== null) await this.pumping;
  }

  stop(): void {
    if (this.soonFlush) clearImmediate(this.soonFlush);
    this.flushSoon();
    if (this.ackFlush) clearImmediate(this.ackFlush);
    this.flushAcks();
    this.stopped = true;
    this.link.off('connect', this.onConnect);
  }

  private pump(): Promise<void> {
    if (this.pumping !== null) return this.pumping;
    const run = async () => {
      await null; // `pumping` is set before the loop runs, even when there is nothing to send
      try {
        let after = 0;
        const failover = this.failover;
        this.failover = false;
        if (failover) this.stats.failovers++;
        while (this.link.isConnected && !this.stopped) {
          const batch = failover
            ? this.store.unackedOrRecent(after, FAILOVER_RESEND_MS, this.window)
            : this.store.unacked(after, this.window);
          if (!batch.length) break;
          const outcomes = await Promise.all(batch.map((r) => this.send(r, r.id <= this.liveFrom)));
          after = (batch[batch.length - 1] as AuditRecord).id;
          if (outcomes.some((o) => !o.delivered)) break; // connection lost: the next connect replays
        }
      } catch (err) {
        this.log?.warn({ err }, 'audit replay failed');
      }
    };
    const p: Promise<void> = run().finally(() => {
      if (this.pumping === p) this.pumping = null;
    });
    this.pumping = p;
    return p;
  }

  private async send(rec: AuditRecord, replayed: boolean): Promise<PublishOutcome> {
    const payload = replayed ? `${rec.payload.slice(0, -1)},"replayed":true}` : rec.payload;
    this.stats.sent++;
    if (replayed) this.stats.replayed++;
    const outcome = await this.link.publish({
      topic: this.link.topics.audit,
      payload,
      qos: 1,
      retain: false,
      durable: true,
    });
    if (outcome.delivered) {
      this.stats.acked++;
      this.pendingAcks.push(rec.id);
      this.ackFlush ??= setImmediate(this.flushAcks);
    }
    return outcome;
  }

  /**
   * Acks are written in batches (one transaction per event-loop turn): an ack lost to a crash
   * only means the row is sent again, marked replayed, and receivers deduplicate on `id`.
   */
  private readonly pendingAcks: number[] = [];
  private ackFlush: NodeJS.Immediate | null = null;
  private readonly flushAcks = () => {
    this.ackFlush = null;
    const ids = this.pendingAcks.splice(0);
    if (!ids.length) return;
    try {
      this.store.markAckedMany(ids);
    } catch (err) {
      this.log?.warn({ err }, 'audit acks not stored (the rows will be sent again)');
    }
  };
}
