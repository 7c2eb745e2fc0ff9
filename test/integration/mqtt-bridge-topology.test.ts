/**
 * A real multi-broker topology, built from Debian's mosquitto and started here: two edge
 * brokers, each bridging `fghv/#` out to a central broker (mosquitto's own bridge, MQTT 5),
 * and simulated kiosks (test/helpers/mqtt-contract-sim.ts: the daemon's real link, signing and
 * durable audit outbox) with both edges in `mqtt.url`, half of them starting on each. One edge
 * is killed (SIGKILL) mid-run: every decision's seq must reach the central subscriber (live or
 * audit copy), none twice as live.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  type Collector,
  collect,
  type Mosquitto,
  needsMosquitto,
  startMosquitto,
} from '../helpers/mosquitto.js';
import { type Sim, simYaml, startSim, stopSim } from '../helpers/mqtt-contract-broker.js';
import { until } from '../helpers/wait.js';

const bridge = (name: string, centralPort: number) =>
  [
    `connection ${name}`,
    `address 127.0.0.1:${centralPort}`,
    `remote_clientid ${name}`,
    'bridge_protocol_version mqttv50',
    'cleansession true',
    'restart_timeout 1',
    'topic fghv/# out 1',
    '',
  ].join('\n');

describe('edge pair bridged to a central broker, one edge killed', {
  skip: needsMosquitto(),
  timeout: 120_000,
}, () => {
  const sims: Sim[] = [];
  const brokers: Mosquitto[] = [];
  const centrals: Collector[] = [];
  after(async () => {
    for (const s of sims) await stopSim(s);
    for (const c of centrals) await c.close();
    for (const b of brokers) await b.stop();
  });

  /**
   * `stall`: the central broker hangs (SIGSTOP) for 2 s before the edge dies, so edge 1
   * acknowledges decisions it can no longer pass on; only the outbox's failover re-send (rows
   * acknowledged in the last minute, sent again through edge 2) gets them to the centre.
   */
  const run = async (tag: string, stall: boolean) => {
    const mine: Sim[] = [];
    const c = await startMosquitto();
    brokers.push(c);
    const e1 = await startMosquitto({ extraConfig: bridge('edge-1', c.port) });
    const e2 = await startMosquitto({ extraConfig: bridge('edge-2', c.port) });
    brokers.push(e1, e2);
    const sub = await collect(c.url, ['fghv/+/front/decision', 'fghv/+/audit', 'fghv/+/availability']);
    centrals.push(sub);
    const ids = [0, 1, 2, 3].map((i) => `${tag}-${i}`);
    for (const [i, id] of ids.entries()) {
      const dir = mkdtempSync(path.join(tmpdir(), `fghv-${id}-`));
      const urls = i < 2 ? [e1.url, e2.url] : [e2.url, e1.url];
      mine.push(
        startSim(
          dir,
          simYaml({ deviceId: id, stateDir: path.join(dir, 'state'), url: `[${urls.join(', ')}]` }),
          100,
        ),
      );
    }
    sims.push(...mine);
    // Through the bridges: every kiosk announced at the central broker, and deciding.
    await until(
      () =>
        ids.every((id) =>
          sub.messages.some((m) => m.topic === `fghv/${id}/availability` && m.payload === 'online'),
        ),
      30_000,
      'every kiosk online at the central broker',
    );
    await until(() => mine.every((s) => s.decided.length >= 20), 30_000, '20 decisions per kiosk');

    if (stall) {
      c.pause();
      await new Promise((r) => setTimeout(r, 2000));
    }
    await e1.kill();
    const killedAt = Date.now();
    if (stall) c.resume();
    const decidedAtKill = mine.map((s) => s.decided.length);
    // Kiosks 0 and 1 were on edge 1: back (on edge 2) when a decision is made connected again.
    await until(
      () => [0, 1].every((i) => mine[i]?.decided.slice(decidedAtKill[i]).some((d) => d.connected)),
      15_000,
      'kiosks of the killed edge connected again',
    );
    const backMs = Date.now() - killedAt;
    await new Promise((r) => setTimeout(r, 2000));
    // Everything decided up to now must arrive at the central subscriber.
    const want = mine.map((s) => s.decided.length);
    const seen = (id: string) => {
      const live: number[] = [];
      const audit = new Set<number>();
      for (const m of sub.messages) {
        if (m.topic === `fghv/${id}/front/decision`) live.push(JSON.parse(m.payload).seq);
        else if (m.topic === `fghv/${id}/audit`) {
          const p = JSON.parse(m.payload);
          if (p.delivery === 'audit') audit.add(p.seq);
        }
      }
      return { live, audit };
    };
    const missing = () =>
      ids.flatMap((id, i) => {
        const s = seen(id);
        const all = new Set([...s.live, ...s.audit]);
        return (mine[i] as Sim).decided
          .slice(0, want[i])
          .filter((d) => !all.has(d.seq))
          .map((d) => `${id}#${d.seq}`);
      });
    await until(() => missing().length === 0, 20_000, 'every decision at the central broker').catch(
      () => undefined,
    );
    assert.deepEqual(missing(), [], 'decisions missing at the central subscriber (neither live nor audit)');
    for (const id of ids) {
      const { live } = seen(id);
      assert.equal(new Set(live).size, live.length, `${id}: a decision arrived twice as live`);
    }
    const replayed = sub.messages.filter(
      (m) => m.topic.endsWith('/audit') && m.payload.includes('"replayed":true'),
    ).length;
    process.stdout.write(
      `topology (${stall ? 'central broker stalled 2 s, then ' : ''}edge killed): kiosks back after ${backMs} ms; ${want.reduce((a, b) => a + b, 0)} decisions, all at the central broker; ${replayed} audit replays\n`,
    );
  };

  it('every decision seq reaches the central subscriber, none twice as live', () => run('topo', false));

  it('the same when the central broker stalled before the edge died (failover re-send)', () =>
    run('stall', true));
});
