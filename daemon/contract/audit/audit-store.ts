/**
 * The durable audit log and outbox (better-sqlite3, WAL). Every decision and event is a row
 * written before it is published; `acked_at` is set when the broker acknowledged its audit
 * copy. Unacknowledged rows are what the outbox re-sends after a reconnect, oldest first.
 * A `kill -9` loses nothing already inserted: WAL commits survive a process crash, and with
 * `synchronous: full` a power loss too.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ErrorCodes, KioskError } from '../../../core/errors.js';

export type AuditKind = 'decision' | 'event' | 'command';

export interface AuditRecord {
  id: number;
  kind: AuditKind;
  /** The JSON payload as published (decisions: signed). */
  payload: string;
  /** ms since the epoch. */
  created_at: number;
  acked_at: number | null;
}

export interface RetentionLimits {
  maxRecords: number;
  maxBytes: number;
  maxAgeS: number;
}

export interface AuditStoreOptions extends RetentionLimits {
  synchronous: 'full' | 'normal';
  /** Wall clock (tests fix it). */
  now?: () => number;
}

export class AuditStore {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly insertStmt: Database.Statement;
  private readonly ackStmt: Database.Statement;
  private readonly unackedStmt: Database.Statement;
  private sinceRetention = 0;
  /** Rows removed by retention before the broker acknowledged them (lost to the log, counted). */
  evictedUnacked = 0;

  constructor(
    stateDir: string,
    private readonly opts: AuditStoreOptions,
  ) {
    mkdirSync(stateDir, { recursive: true });
    this.file = path.join(stateDir, 'audit.sqlite');
    this.now = opts.now ?? Date.now;
    try {
      this.db = new Database(this.file);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      this.db.exec(`CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        acked_at INTEGER
      );
      CREATE INDEX IF NOT EXISTS audit_unacked ON audit(id) WHERE acked_at IS NULL;`);
    } catch (cause) {
      throw new KioskError(ErrorCodes.AUDIT_STORE, `cannot open the audit store ${this.file}`, { cause });
    }
    this.insertStmt = this.db.prepare('INSERT INTO audit (kind, payload, created_at) VALUES (?, ?, ?)');
    this.ackStmt = this.db.prepare('UPDATE audit SET acked_at = ? WHERE id = ? AND acked_at IS NULL');
    this.unackedStmt = this.db.prepare(
      'SELECT * FROM audit WHERE acked_at IS NULL AND id > ? ORDER BY id LIMIT ?',
    );
  }

  /** Durable when it returns. */
  append(kind: AuditKind, payload: string): AuditRecord {
    const created_at = this.now();
    let id: number;
    try {
      id = Number(this.insertStmt.run(kind, payload, created_at).lastInsertRowid);
    } catch (cause) {
      throw new KioskError(ErrorCodes.AUDIT_STORE, 'cannot write to the audit store', { cause });
    }
    // Retention is a full scan of sizes: amortise it.
    if (++this.sinceRetention >= 100) this.applyRetention();
    return { id, kind, payload, created_at, acked_at: null };
  }

  /** Several rows in one transaction (one fsync with synchronous: full), in order. */
  appendMany(kind: AuditKind, payloads: string[]): AuditRecord[] {
    const created_at = this.now();
    let out: AuditRecord[];
    try {
      out = this.db.transaction(() =>
        payloads.map((payload) => ({
          id: Number(this.insertStmt.run(kind, payload, created_at).lastInsertRowid),
          kind,
          payload,
          created_at,
          acked_at: null,
        })),
      )();
    } catch (cause) {
      throw new KioskError(ErrorCodes.AUDIT_STORE, 'cannot write to the audit store', { cause });
    }
    this.sinceRetention += payloads.length;
    if (this.sinceRetention >= 100) this.applyRetention();
    return out;
  }

  markAcked(id: number): void {
    this.ackStmt.run(this.now(), id);
  }

  /** Several acks in one transaction (one fsync with synchronous: full). */
  markAckedMany(ids: number[]): void {
    const at = this.now();
    this.db.transaction(() => {
      for (const id of ids) this.ackStmt.run(at, id);
    })();
  }

  /** Unacknowledged rows with id > afterId, oldest first. */
  unacked(afterId: number, limit: number): AuditRecord[] {
    return this.unackedStmt.all(afterId, limit) as AuditRecord[];
  }

  /**
   * Rows with id > afterId that are unacknowledged or were acknowledged within the last
   * `windowMs`, oldest first: what a failover re-sends (a broker that acknowledged a row and
   * died may not have passed it on).
   */
  unackedOrRecent(afterId: number, windowMs: number, limit: number): AuditRecord[] {
    return this.db
      .prepare('SELECT * FROM audit WHERE id > ? AND (acked_at IS NULL OR acked_at >= ?) ORDER BY id LIMIT ?')
      .all(afterId, this.now() - windowMs, limit) as AuditRecord[];
  }

  /** The newest row's id (0 when empty). */
  maxId(): number {
    return (this.db.prepare('SELECT COALESCE(MAX(id), 0) AS m FROM audit').get() as { m: number }).m;
  }

  all(): AuditRecord[] {
    return this.db.prepare('SELECT * FROM audit ORDER BY id').all() as AuditRecord[];
  }

  counters(): {
    records: number;
    pending: number;
    oldest_pending_ms: number | null;
    evicted_unacked: number;
  } {
    const row = this.db
      .prepare(
        'SELECT COUNT(*) AS records, SUM(acked_at IS NULL) AS pending, MIN(CASE WHEN acked_at IS NULL THEN created_at END) AS oldest FROM audit',
      )
      .get() as { records: number; pending: number | null; oldest: number | null };
    return {
      records: row.records,
      pending: row.pending ?? 0,
      oldest_pending_ms: row.oldest,
      evicted_unacked: this.evictedUnacked,
    };
  }

  /**
   * Deletes rows older than maxAgeS, then the oldest rows beyond maxRecords or maxBytes.
   * Acknowledged rows go first; unacknowledged rows only when the limits still are exceeded
   * (the outage outlasted the retention), and those are counted.
   */
  applyRetention(): void {
    this.sinceRetention = 0;
    const { maxRecords, maxBytes, maxAgeS } = this.opts;
    const tx = this.db.transaction(() => {
      const cutoff = this.now() - maxAgeS * 1000;
      const aged = this.db
        .prepare('SELECT COUNT(*) AS n FROM audit WHERE created_at < ? AND acked_at IS NULL')
        .get(cutoff) as { n: number };
      this.evictedUnacked += aged.n;
      this.db.prepare('DELETE FROM audit WHERE created_at < ?').run(cutoff);
      for (const acked of [true, false]) {
        const where = acked ? 'acked_at IS NOT NULL' : 'acked_at IS NULL';
        const { n, bytes } = this.db
          .prepare('SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(payload)), 0) AS bytes FROM audit')
          .get() as { n: number; bytes: number };
        if (n <= maxRecords && bytes <= maxBytes) return;
        // Oldest first until both limits hold.
        const rows = this.db
          .prepare(`SELECT id, LENGTH(payload) AS len FROM audit WHERE ${where} ORDER BY id`)
          .all() as {
          id: number;
          len: number;
        }[];
        let count = n;
        let size = bytes;
        let lastId = -1;
        for (const r of rows) {
          if (count <= maxRecords && size <= maxBytes) break;
          count--;
          size -= r.len;
          lastId = r.id;
          if (!acked) this.evictedUnacked++;
        }
        if (lastId >= 0) this.db.prepare(`DELETE FROM audit WHERE ${where} AND id <= ?`).run(lastId);
      }
    });
    tx();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
