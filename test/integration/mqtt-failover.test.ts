/**
 * Broker failover (`mqtt.url` as a list): the link takes the first broker that answers, moves
 * to the next when it is lost, and the durable audit outbox re-sends on the new broker what the
 * old one never acknowledged. The daemon test is the "done when": `fghv-kiosk run` on
 * the committed sample video, two real mosquittos, the first killed (SIGKILL) mid-run.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ContractLink } from '../../daemon/contract/contract-link.js';
import { spawnKiosk } from '../helpers/kiosk-child.js';
import {
  type Collector,
  collect,
  needsMosquitto,
  startMosquitto,
  testLinkOptions,
} from '../helpers/mosquitto.js';
import { freePort } from '../helpers/net.js';
import { repoRoot } from '../helpers/paths.js';
import { until } from '../helpers/wait.js';

const skip = needsMosquitto();

interface FleetEntry {
  device_id: string;
  online: boolean;
  last_decision: { verified: boolean; seq: number } | null;
}

/** Decision seqs a subscriber saw: live (`<camera>/decision`) and audit copies (`audit`). */
function seqs(c: Collector, deviceId: string): { live: number[]; audit: number[] } {
  const live: number[] = [];
  const audit: number[] = [];
  for (const m of c.messages) {
    if (m.topic === `fghv/${deviceId}/front/decision`) live.push(JSON.parse(m.payload).seq);
    else if (m.topic === `fghv/${deviceId}/audit`) {
      const p = JSON.parse(m.payload);
      if (p.delivery === 'audit' && typeof p.seq === 'number') audit.push(p.seq);
    }
  }
  return { live, audit };
}

describe('broker failover', { skip, timeout: 240_000 }, () => {
  it('the link connects to the first broker that answers and says which it is', async (t) => {
    const down = await startMosquitto({ autostart: false });
    const up = await startMosquitto();
    t.after(() => up.stop());
    const link = new ContractLink(testLinkOptions([down.url, up.url], 'k-first'));
    t.after(() => link.close());
    assert.equal(link.broker, null);
    link.start();
    assert.equal(await link.waitConnected(5000), true);
    assert.equal(link.broker, up.url);
    assert.equal(link.counters().broker, up.url);
  });

  describe('daemon on a live video loses its first broker mid-run', () => {
    const deviceId = 'failover-kiosk';
    let child: ChildProcess | null = null;
    let stderr = '';
    const cleanup: (() => Promise<unknown>)[] = [];
    after(async () => {
      if (child && child.exitCode === null) child.kill('SIGKILL');
      for (const c of cleanup.reverse()) await c().catch(() => undefined);
    });

    it('is back on the second broker within 15 s and no decision seq is missing', async () => {
      const a = await startMosquitto();
      const b = await startMosquitto();
      cleanup.push(
        () => a.stop(),
        () => b.stop(),
      );
      const onA = await collect(a.url, [`fghv/${deviceId}/#`]);
      const onB = await collect(b.url, [`fghv/${deviceId}/#`]);
      cleanup.push(
        () => onA.close(),
        () => onB.close(),
      );
      const dir = mkdtempSync(path.join(tmpdir(), 'fghv-failover-'));
      const cfg = path.join(dir, 'config.yaml');
      writeFileSync(
        cfg,
        [
          'device:',
          `  id: ${deviceId}`,
          `  state_dir: ${dir}/state`,
          'mqtt:',
          `  url: [${a.url}, ${b.url}]`,
          '  health_interval_s: 1',
          '  reconnect_min_ms: 500',
          'cameras:',
          '  - id: front',
          `    source: ${path.join(repoRoot, 'media/demo-kiosk.mp4')}`,
          '    loop: true',
          '    realtime: true',
          'liveness:',
          '  providers: [cpu]',
          'status:',
          '  enabled: false',
          'log:',
          '  format: json',
          '',
        ].join('\n'),
      );
      const proc = spawn(
        process.execPath,
        [path.join(repoRoot, 'bin/fghv-kiosk.js'), 'run', '--config', cfg],
        {
          cwd: dir,
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      child = proc;
      proc.stderr?.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-20_000);
      });
      const running = () => {
        assert.equal(proc.exitCode, null, `daemon exited: ${stderr.slice(-2000)}`);
        return true;
      };

      // On A: announced, info names A, two live decisions.
      const infoA = await onA.waitFor((m) => m.topic === `fghv/${deviceId}/info`, 90_000);
      assert.equal(JSON.parse(infoA.payload).broker, a.url);
      await until(() => running() && seqs(onA, deviceId).live.length >= 2, 90_000, 'two decisions on A');
      assert.equal(seqs(onB, deviceId).live.length, 0, 'nothing on B while A is up');

      await a.kill();
      const killedAt = Date.now();
      await onB.waitFor((m) => m.topic === `fghv/${deviceId}/availability` && m.payload === 'online', 15_000);
      const backAfterMs = Date.now() - killedAt;
      assert.ok(backAfterMs < 15_000, `back on B after ${backAfterMs} ms`);
      const infoB = await onB.waitFor((m) => m.topic === `fghv/${deviceId}/info`, 5000);
      assert.equal(JSON.parse(infoB.payload).broker, b.url, 'info names the broker in use');
      const health = await onB.waitFor((m) => m.topic === `fghv/${deviceId}/health`, 5000);
      assert.equal(JSON.parse(health.payload).mqtt.broker, b.url, 'health names the broker in use');
      await until(() => running() && seqs(onB, deviceId).live.length >= 2, 90_000, 'two decisions on B');

      // The fleet console on B lists the device online, its last decision's signature verified.
      const port = await freePort();
      const fleet = spawnKiosk(['fleet', '--broker', b.url, '--port', String(port)]);
      cleanup.push(async () => fleet.kill());
      await fleet.waitForOutput(/fleet console on http:\/\/127\.0\.0\.1:\d+\//, 20_000);
      const lastLive = () => Math.max(...seqs(onB, deviceId).live);
      const want = lastLive() + 1; // the console saw every live decision from this one on
      await until(() => running() && lastLive() >= want, 90_000, 'a decision while the console watches');
      let device: FleetEntry | undefined;
      const t0 = Date.now();
      while (Date.now() - t0 < 10_000 && !(device?.last_decision && device.last_decision.seq >= want)) {
        const res = await fetch(`http://127.0.0.1:${port}/api/fleet`);
        const body = (await res.json()) as { devices: FleetEntry[] };
        device = body.devices.find((d) => d.device_id === deviceId);
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(device, 'the console lists the device');
      assert.equal(device.online, true);
      assert.equal(device.last_decision?.verified, true, JSON.stringify(device));
      fleet.kill();

      // A clean stop: the outbox has sent everything it could; then count.
      proc.kill('SIGTERM');
      await new Promise((resolve) => (proc.exitCode !== null ? resolve(null) : proc.once('exit', resolve)));
      assert.equal(proc.exitCode, 0, stderr.slice(-2000));
      await onB.waitFor((m) => m.topic === `fghv/${deviceId}/availability` && m.payload === 'offline', 5000);

      const sa = seqs(onA, deviceId);
      const sb = seqs(onB, deviceId);
      const seen = new Set([...sa.live, ...sa.audit, ...sb.live, ...sb.audit]);
      const first = Math.min(...seen);
      const last = Math.max(...seen);
      const missing = [];
      for (let s = first; s <= last; s++) if (!seen.has(s)) missing.push(s);
      assert.deepEqual(missing, [], `seq ${first}..${last} seen on A or B (live or audit)`);
      // Every decision has its audit copy somewhere, and no live decision went out twice.
      const audited = new Set([...sa.audit, ...sb.audit]);
      assert.deepEqual(
        [...seen].filter((s) => !audited.has(s)),
        [],
        'every decision has an audit copy on A or B',
      );
      const live = [...sa.live, ...sb.live];
      assert.equal(new Set(live).size, live.length, 'no decision published live twice');
      // Seq of the first decision after the switch: on B, none of A's live ones again.
      assert.ok(Math.min(...sb.live) > Math.max(...sa.live));
      console.log(
        `failover: back on B ${backAfterMs} ms after A was killed; seq ${first}..${last}: ${sa.live.length} live on A, ${sb.live.length} live on B, ${audited.size} audit copies, 0 missing`,
      );
    });
  });
});
