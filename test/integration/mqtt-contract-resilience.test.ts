/**
 * The contract against a real mosquitto and the simulated kiosk (the daemon's MQTT side as a
 * child process): retained availability and the last will after kill -9, nothing decided is
 * lost to kill -9, 20 broker restarts lose no audit record, offline decisions never arrive
 * live, and forged or altered decisions fail verification. Every message is checked against
 * the contract's JSON Schemas.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { connectAsync, type MqttClient } from 'mqtt';
import { ContractSchemas } from '../../daemon/contract/contract-schema.js';
import { DecisionSigner } from '../../daemon/contract/signing/keys.js';
import { checkDecision, verifyDecision } from '../../daemon/contract/signing/verify.js';
import { needsMosquitto } from '../helpers/mosquitto.js';
import { simYaml, startBroker, startSim, stopSim, type TestBroker } from '../helpers/mqtt-contract-broker.js';
import { repoRoot } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp.js';
import { sleep, until } from '../helpers/wait.js';

const schemas = new ContractSchemas(path.join(repoRoot, 'contract/schemas'));

interface Msg {
  topic: string;
  payload: string;
  retain: boolean;
  expiry: number | undefined;
}

/** A subscriber with a persistent session (survives broker restarts with persistence on). */
async function subscriber(
  url: string,
  topics: string[],
  clientId: string,
): Promise<{ client: MqttClient; msgs: Msg[] }> {
  const client = await connectAsync(url, {
    protocolVersion: 5,
    clientId,
    clean: false,
    properties: { sessionExpiryInterval: 3600 },
    reconnectPeriod: 100,
  });
  const msgs: Msg[] = [];
  client.on('message', (topic, payload, packet) => {
    msgs.push({
      topic,
      payload: payload.toString(),
      retain: packet.retain,
      expiry: packet.properties?.messageExpiryInterval,
    });
  });
  await client.subscribeAsync(topics, { qos: 1 });
  return { client, msgs };
}

/** mqtt.js' end() can wait forever while it is reconnecting to a stopped broker: bounded. */
function endClient(c: MqttClient): Promise<unknown> {
  return Promise.race([c.endAsync(true).catch(() => undefined), sleep(1000)]);
}

function validAll(msgs: Msg[]): void {
  for (const m of msgs) {
    const leaf = m.topic.split('/').pop();
    const schema =
      leaf === 'decision'
        ? 'decision.json'
        : leaf === 'audit'
          ? 'audit.json'
          : leaf === 'health'
            ? 'health.json'
            : `${leaf}.json`;
    const value = leaf === 'availability' ? m.payload : JSON.parse(m.payload);
    assert.deepEqual(schemas.validate(schema, value), [], `${m.topic}: ${m.payload.slice(0, 300)}`);
  }
}

function storeRows(stateDir: string): { kind: string; payload: string; acked_at: number | null }[] {
  const db = new Database(path.join(stateDir, 'audit.sqlite'), { readonly: true });
  try {
    return db.prepare('SELECT kind, payload, acked_at FROM audit ORDER BY id').all() as {
      kind: string;
      payload: string;
      acked_at: number | null;
    }[];
  } finally {
    db.close();
  }
}

describe('MQTT contract: availability, audit, integrity', {
  skip: needsMosquitto(),
  timeout: 120_000,
}, () => {
  let broker: TestBroker;
  before(async () => {
    broker = await startBroker((port, dir) =>
      [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        'persistence true',
        `persistence_location ${dir}/`,
      ].join('\n'),
    );
  });
  after(async () => {
    await broker?.stop();
  });

  test('retained online + info with the public key; kill -9 fires the retained last will and loses nothing decided', async (t) => {
    const dir = tempDir('sim-kill');
    const sub = await subscriber(broker.url, ['fghv/k-kill/#'], `t-kill-${process.pid}`);
    t.after(() => endClient(sub.client));
    const sim = startSim(dir, simYaml({ deviceId: 'k-kill', stateDir: `${dir}/state`, url: broker.url }), 20);
    t.after(() => stopSim(sim));
    await until(() => sim.decided.length >= 30, 15_000, '30 decisions');
    sim.child.kill('SIGKILL');
    await sim.exited;
    const decided = sim.decided.map((d) => d.seq);
    await until(
      () => sub.msgs.some((m) => m.topic.endsWith('/availability') && m.payload === 'offline'),
      5000,
      'last will',
    );
    // A late subscriber sees the retained states: the will replaced `online`.
    const late = await subscriber(
      broker.url,
      ['fghv/k-kill/availability', 'fghv/k-kill/info'],
      `t-late-${process.pid}`,
    );
    t.after(() => endClient(late.client));
    await until(() => late.msgs.length >= 2, 3000, 'retained availability and info');
    const avail = late.msgs.find((m) => m.topic.endsWith('/availability'));
    assert.deepEqual([avail?.payload, avail?.retain], ['offline', true]);
    const info = JSON.parse(late.msgs.find((m) => m.topic.endsWith('/info'))?.payload ?? '{}');
    assert.match(info.decision_public_key, /^[A-Za-z0-9+/]{43}=$/);
    assert.ok(sub.msgs.some((m) => m.topic.endsWith('/availability') && m.payload === 'online'));
    validAll([...sub.msgs, ...late.msgs]);

    // Every decision the sim reported before the kill is in the store, signed, seq 1..n without gaps.
    const stored = storeRows(`${dir}/state`)
      .filter((r) => r.kind === 'decision')
      .map((r) => JSON.parse(r.payload));
    const storedSeqs = stored.map((p) => p.seq);
    for (const s of decided)
      assert.ok(storedSeqs.includes(s), `seq ${s} reported decided but not in the store`);
    assert.deepEqual(
      storedSeqs,
      storedSeqs.map((_, i) => i + 1),
    );
    for (const p of stored) {
      // The stored copy is the audit one: its signature holds, but it never passes as live.
      assert.equal(checkDecision(p, info.decision_public_key).ok, true);
      assert.equal(p.delivery, 'audit');
      assert.deepEqual(checkDecision(p, info.decision_public_key, { live: true }), {
        ok: false,
        reason: 'not_live',
      });
    }

    // Restarted on the same state dir: same key, seq continues, unacknowledged rows replayed.
    const sim2 = startSim(
      dir,
      simYaml({ deviceId: 'k-kill', stateDir: `${dir}/state`, url: broker.url }),
      50,
    );
    t.after(() => stopSim(sim2));
    await until(() => sim2.decided.length >= 3, 10_000, 'decisions after restart');
    // The seq is persisted before its decision is stored (seq-counter.ts: a number is never
    // reused), so a kill between the two leaves at most one number unused: never a reuse.
    const first = sim2.decided[0]?.seq ?? 0;
    const lastStored = storedSeqs.at(-1) ?? 0;
    assert.ok(
      first === lastStored + 1 || first === lastStored + 2,
      `seq after restart ${first}, last stored ${lastStored}`,
    );
    await stopSim(sim2);
    const rows = storeRows(`${dir}/state`);
    assert.equal(
      rows.filter((r) => r.acked_at === null).length,
      0,
      'everything acknowledged after the restart',
    );
  });

  test('20 broker restarts during a decision stream: every audit record arrives, seq has no gap or duplicate', async (t) => {
    const dir = tempDir('sim-restarts');
    const sub = await subscriber(broker.url, ['fghv/k-rs/audit'], `t-rs-${process.pid}`);
    t.after(() => endClient(sub.client));
    const sim = startSim(dir, simYaml({ deviceId: 'k-rs', stateDir: `${dir}/state`, url: broker.url }), 20);
    t.after(() => stopSim(sim));
    await until(() => sim.decided.length >= 5, 10_000, 'first decisions');
    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      // Graceful restarts: mosquitto writes its persistent sessions on SIGTERM. After a broker
      // crash (SIGKILL) messages it had already acknowledged can be gone from its queues: the
      // device's store still holds them, but the device cannot know to send them again.
      await broker.stop();
      await sleep(50 + (i % 5) * 60);
      await broker.start();
      await sleep(150);
    }
    const restartsMs = Date.now() - started;
    await sleep(300);
    await stopSim(sim);
    await until(() => sub.client.connected, 5000, 'subscriber reconnected');
    const decided = sim.decided.map((d) => d.seq);
    const wanted = new Set(decided);
    const seen = () =>
      new Set(
        sub.msgs
          .map((m) => JSON.parse(m.payload))
          .filter((p) => typeof p.seq === 'number')
          .map((p) => p.seq as number),
      );
    await until(
      () => [...wanted].every((s) => seen().has(s)),
      15_000,
      `all ${wanted.size} decisions on audit`,
    ).catch((e) => {
      const missing = [...wanted].filter((s) => !seen().has(s));
      throw new Error(`${(e as Error).message}; missing seq ${missing.slice(0, 20).join(',')}`);
    });
    const received = sub.msgs.map((m) => JSON.parse(m.payload));
    const ids = new Set(received.map((p) => p.id));
    const replayed = received.filter((p) => p.replayed === true).length;
    assert.deepEqual(
      decided,
      decided.map((_, i) => i + 1),
      'seq 1..n, no gap, no duplicate',
    );
    const rows = storeRows(`${dir}/state`);
    assert.equal(rows.filter((r) => r.acked_at === null).length, 0);
    validAll(sub.msgs);
    t.diagnostic(
      `${decided.length} decisions, 20 restarts in ${restartsMs} ms, ${sub.msgs.length} audit messages ` +
        `(${ids.size} distinct, ${replayed} replayed)`,
    );
  });

  test('decisions made while the broker is down never arrive live (expired) but all arrive on audit, replayed', async (t) => {
    const dir = tempDir('sim-offline');
    const sub = await subscriber(broker.url, ['fghv/k-off/#'], `t-off-${process.pid}`);
    t.after(() => endClient(sub.client));
    const yaml = simYaml({
      deviceId: 'k-off',
      stateDir: `${dir}/state`,
      url: broker.url,
      extra: '  decision_expiry_s: 1',
    });
    const sim = startSim(dir, yaml, 50);
    t.after(() => stopSim(sim));
    await until(() => sim.decided.some((d) => d.connected), 10_000, 'connected decisions');
    await broker.stop();
    const downFrom = sim.decided.length;
    await sleep(2500); // longer than the 1 s expiry
    const offline = sim.decided.slice(downFrom).filter((d) => !d.connected);
    assert.ok(offline.length >= 20, `decided ${offline.length} while offline`);
    await broker.start();
    await until(() => sub.client.connected, 5000, 'subscriber back');
    await until(
      () =>
        offline.every((d) => sub.msgs.some((m) => m.topic.endsWith('/audit') && m.payload.includes(d.id))),
      10_000,
      'offline decisions on audit',
    );
    await sleep(500);
    const live = new Set(
      sub.msgs.filter((m) => m.topic.endsWith('/decision')).map((m) => JSON.parse(m.payload).id as string),
    );
    for (const d of offline) assert.equal(live.has(d.id), false, `offline decision ${d.seq} delivered live`);
    const auditOffline = sub.msgs
      .filter((m) => m.topic.endsWith('/audit'))
      .map((m) => JSON.parse(m.payload))
      .filter((p) => offline.some((d) => d.id === p.id));
    assert.ok(
      auditOffline.every((p) => p.replayed === true),
      'offline decisions are marked replayed',
    );
    const order = auditOffline.map((p) => p.seq);
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
      'replayed oldest first',
    );
    const liveDecisions = sub.msgs.filter((m) => m.topic.endsWith('/decision'));
    assert.ok(liveDecisions.length > 0);
    for (const m of liveDecisions) {
      assert.equal(m.retain, false);
      assert.ok(m.expiry !== undefined && m.expiry <= 1, `message expiry ${m.expiry}`);
    }
    validAll(sub.msgs);
  });

  test('a gate rejects forged, altered, replayed and expired decisions', async (t) => {
    const dir = tempDir('sim-forge');
    const sub = await subscriber(broker.url, ['fghv/k-forge/#'], `t-forge-${process.pid}`);
    t.after(() => endClient(sub.client));
    const sim = startSim(
      dir,
      simYaml({ deviceId: 'k-forge', stateDir: `${dir}/state`, url: broker.url }),
      30,
    );
    t.after(() => stopSim(sim));
    await until(
      () =>
        sub.msgs.filter((m) => m.topic.endsWith('/decision')).length >= 3 &&
        sub.msgs.some((m) => m.topic.endsWith('/info')),
      10_000,
      'decisions and info',
    );
    const key = JSON.parse(
      sub.msgs.find((m) => m.topic.endsWith('/info'))?.payload ?? '{}',
    ).decision_public_key;
    const [a, b] = sub.msgs.filter((m) => m.topic.endsWith('/decision')).map((m) => JSON.parse(m.payload));
    const ok = verifyDecision(a, key, { deviceId: 'k-forge', cameraId: 'front', now: Date.parse(a.ts) + 1 });
    assert.equal(ok.ok, true);
    assert.deepEqual(
      checkDecision({ ...a, decision: 'accept', reason: 'live_verified', seq: a.seq + 1000 }, key).ok,
      false,
    );
    assert.deepEqual(checkDecision({ ...a, expires_at: '2099-01-01T00:00:00.000Z' }, key), {
      ok: false,
      reason: 'bad_signature',
    });
    const { sig: _s, ...unsigned } = a;
    assert.deepEqual(checkDecision(unsigned, key), { ok: false, reason: 'missing_signature' });
    const forger = DecisionSigner.fromKey(generateKeyPairSync('ed25519').privateKey);
    assert.deepEqual(checkDecision(forger.sign(unsigned), key), { ok: false, reason: 'bad_signature' });
    assert.deepEqual(checkDecision(a, key, { lastSeq: b.seq }), { ok: false, reason: 'replayed_seq' });
    assert.deepEqual(checkDecision(a, key, { now: Date.parse(a.expires_at) }), {
      ok: false,
      reason: 'expired',
    });
    assert.deepEqual(checkDecision(a, key, { deviceId: 'other' }), { ok: false, reason: 'wrong_device' });
  });
});
