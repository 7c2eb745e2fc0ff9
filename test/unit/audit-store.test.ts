import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { AuditStore } from '../../daemon/contract/audit/audit-store.js';
import { AuditOutbox, type OutboxLink } from '../../daemon/contract/audit/outbox.js';
import type { OutgoingMessage, PublishOutcome } from '../../daemon/mqtt/mqtt-link.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'fghv-audit-'));
const limits = { maxRecords: 1000, maxBytes: 1e9, maxAgeS: 1e9, synchronous: 'full' as const };

/** A link whose connection and PUBACKs the test drives. */
class FakeLink extends EventEmitter {
  isConnected = false;
  topics = { audit: 'fghv/k/audit' };
  sent: { msg: OutgoingMessage; done: (o: PublishOutcome) => void }[] = [];
  publish(msg: OutgoingMessage): Promise<PublishOutcome> {
    if (!this.isConnected) return Promise.resolve({ delivered: false, reason: 'offline' });
    return new Promise((done) => this.sent.push({ msg, done }));
  }
  ackAll(): void {
    for (const s of this.sent.splice(0)) s.done({ delivered: true });
  }
  connect(): void {
    this.isConnected = true;
    this.emit('connect');
  }
  drop(): void {
    this.isConnected = false;
    for (const s of this.sent.splice(0)) s.done({ delivered: false, reason: 'offline' });
  }
}

const tick = () => new Promise((r) => setImmediate(r));

describe('AuditStore', () => {
  test('rows are durable, ordered, acknowledged, and survive reopening', () => {
    const dir = tmp();
    const a = new AuditStore(dir, limits);
    const r1 = a.append('decision', '{"seq":1}');
    const r2 = a.append('event', '{"e":1}');
    a.append('decision', '{"seq":2}');
    a.markAcked(r2.id);
    assert.deepEqual(
      a.unacked(0, 10).map((r) => r.payload),
      ['{"seq":1}', '{"seq":2}'],
    );
    assert.deepEqual(
      a.unacked(r1.id, 10).map((r) => r.payload),
      ['{"seq":2}'],
    );
    a.close();
    const b = new AuditStore(dir, limits);
    assert.equal(b.counters().records, 3);
    assert.equal(b.counters().pending, 2);
    assert.equal(b.maxId(), 3);
    b.close();
  });

  test('retention: age, count and bytes; acknowledged rows go first, evicted unacknowledged ones are counted', () => {
    let now = 1_000_000;
    const s = new AuditStore(tmp(), {
      maxRecords: 5,
      maxBytes: 1e9,
      maxAgeS: 100,
      synchronous: 'normal',
      now: () => now,
    });
    for (let i = 0; i < 4; i++) s.markAcked(s.append('event', `{"i":${i}}`).id);
    for (let i = 4; i < 8; i++) s.append('event', `{"i":${i}}`);
    s.applyRetention();
    // 8 rows, limit 5: the 3 oldest acknowledged rows go, unacknowledged ones stay.
    assert.deepEqual(
      s.all().map((r) => JSON.parse(r.payload).i),
      [3, 4, 5, 6, 7],
    );
    assert.equal(s.evictedUnacked, 0);
    for (let i = 8; i < 10; i++) s.append('event', `{"i":${i}}`);
    s.applyRetention();
    assert.deepEqual(
      s.all().map((r) => JSON.parse(r.payload).i),
      [5, 6, 7, 8, 9],
    );
    assert.equal(s.evictedUnacked, 1);
    now += 101_000;
    s.append('event', '{"i":10}');
    s.applyRetention();
    assert.deepEqual(
      s.all().map((r) => JSON.parse(r.payload).i),
      [10],
    );
    assert.equal(s.evictedUnacked, 6);
    const small = new AuditStore(tmp(), {
      maxRecords: 100,
      maxBytes: 30,
      maxAgeS: 1e9,
      synchronous: 'normal',
    });
    for (let i = 0; i < 5; i++) small.markAcked(small.append('event', `{"pad":"${i}xxxxx"}`).id);
    small.applyRetention();
    assert.ok(small.all().reduce((n, r) => n + r.payload.length, 0) <= 30);
  });
});

describe('AuditOutbox', () => {
  test('written before publishing; live rows unmarked; after a reconnect the unacknowledged rows go oldest first, replayed', async () => {
    const store = new AuditStore(tmp(), limits);
    const link = new FakeLink();
    const outbox = new AuditOutbox(store, link as unknown as OutboxLink, 2);
    link.connect();
    await outbox.idle();
    outbox.record('decision', { seq: 1 });
    assert.equal(store.counters().records, 1, 'in the store before any PUBACK');
    assert.equal(link.sent[0]?.msg.payload, '{"seq":1}', 'sent at once when nothing older waits');
    link.ackAll();
    await tick();
    await tick();
    assert.equal(store.counters().pending, 0);

    outbox.record('decision', { seq: 2 }); // in flight when the connection drops
    link.drop();
    outbox.record('decision', { seq: 3 }); // offline
    outbox.record('event', { e: 'camera_lost' });
    assert.equal(store.counters().pending, 3);
    link.connect();
    outbox.record('decision', { seq: 4 }); // while the replay runs: waits for it
    const order: string[] = [];
    for (let i = 0; i < 10 && store.counters().pending > 0; i++) {
      await tick();
      for (const s of link.sent) order.push(s.msg.payload);
      link.ackAll();
      await tick();
    }
    await outbox.idle();
    assert.deepEqual(order, [
      '{"seq":2,"replayed":true}',
      '{"seq":3,"replayed":true}',
      '{"e":"camera_lost","replayed":true}',
      '{"seq":4}',
    ]);
    assert.ok(link.sent.every((s) => s.msg.durable === true));
    outbox.stop();
    assert.equal(store.counters().pending, 0);
  });

  test('back on another broker, rows the old one acknowledged in the last minute are sent again', async () => {
    let now = 1_000_000;
    const store = new AuditStore(tmp(), { ...limits, now: () => now });
    const link = Object.assign(new FakeLink(), { broker: 'mqtt://a:1883' as string | null });
    const outbox = new AuditOutbox(store, link as unknown as OutboxLink);
    link.connect();
    await outbox.idle();
    outbox.record('decision', { seq: 1 });
    link.ackAll();
    await tick();
    await tick(); // the ack is written at the end of its event-loop turn
    now += 61_000; // seq 1 acknowledged more than a minute before the failover
    outbox.record('decision', { seq: 2 });
    link.ackAll();
    await tick();
    await tick();
    assert.equal(store.counters().pending, 0);
    const resent = async () => {
      const out: string[] = [];
      for (let i = 0; i < 5; i++) {
        await tick();
        for (const s of link.sent) out.push(s.msg.payload);
        link.ackAll();
      }
      await outbox.idle();
      return out;
    };
    // The same broker again: nothing acknowledged is re-sent.
    link.drop();
    link.connect();
    assert.deepEqual(await resent(), []);
    // Another broker: seq 2 (acknowledged 0 s ago) again, seq 1 (61 s ago) not.
    link.drop();
    outbox.record('decision', { seq: 3 });
    link.broker = 'mqtt://b:1883';
    link.connect();
    assert.deepEqual(await resent(), ['{"seq":2,"replayed":true}', '{"seq":3,"replayed":true}']);
    assert.equal(outbox.stats.failovers, 1);
    outbox.stop();
  });

  test('rows left by a previous run are replayed on the first connect', async () => {
    const dir = tmp();
    const first = new AuditStore(dir, limits);
    first.append('decision', '{"seq":7}');
    first.close();
    const store = new AuditStore(dir, limits);
    const link = new FakeLink();
    const outbox = new AuditOutbox(store, link as unknown as OutboxLink);
    link.connect();
    await tick();
    assert.equal(link.sent[0]?.msg.payload, '{"seq":7,"replayed":true}');
    outbox.stop();
  });
});
