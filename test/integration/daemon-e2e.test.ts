/**
 * The daemon end to end, as a user runs it: `fghv-kiosk run --config FILE` as a child process,
 * a real mosquitto on a free loopback port, the committed sample video, the default models.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { type VerifyResult, verifyDecision } from '../../daemon/contract/signing/verify.js';
import {
  type Collector,
  collect,
  type Mosquitto,
  needsMosquitto,
  startMosquitto,
} from '../helpers/mosquitto.js';
import { repoRoot } from '../helpers/paths.js';

const REASONS = [
  'live_verified',
  'spoof_detected',
  'uncertain',
  'low_quality',
  'face_lost',
  'multiple_faces',
  'timeout',
];

function waitExit(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const t = setTimeout(() => reject(new Error(`daemon did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

describe('daemon end to end against mosquitto', { skip: needsMosquitto() }, () => {
  let broker: Mosquitto;
  let sub: Collector;
  let child: ChildProcess;
  let stderr = '';
  const deviceId = 'e2e-kiosk';
  /** A gate as docs/gate-integration.md describes one: key pinned from the retained info at commissioning. */
  let gate: MqttClient | undefined;
  const gateResults: { result: VerifyResult; seq: number }[] = [];

  before(async () => {
    broker = await startMosquitto();
    sub = await collect(broker.url, ['fghv/#']);
    const dir = mkdtempSync(path.join(tmpdir(), 'fghv-e2e-'));
    const cfg = path.join(dir, 'config.yaml');
    writeFileSync(
      cfg,
      [
        'device:',
        `  id: ${deviceId}`,
        `  state_dir: ${dir}/state`,
        'mqtt:',
        `  url: ${broker.url}`,
        '  health_interval_s: 1',
        'cameras:',
        '  - id: front',
        `    source: ${path.join(repoRoot, 'media/demo-kiosk.mp4')}`,
        '    loop: false',
        '    realtime: true',
        'liveness:',
        '  providers: [cpu]',
        'status:',
        '  port: 0',
        'log:',
        '  format: json',
        '',
      ].join('\n'),
    );
    child = spawn(process.execPath, [path.join(repoRoot, 'bin/fghv-kiosk.js'), 'run', '--config', cfg], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
  });

  after(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await gate?.endAsync(true);
    await sub?.close();
    await broker?.stop();
  });

  it('announces itself: availability online (retained) and info (retained)', async () => {
    const online = await sub.waitFor(
      (m) => m.topic === `fghv/${deviceId}/availability` && m.payload === 'online',
      90_000,
    );
    assert.ok(online);
    const info = await sub.waitFor((m) => m.topic === `fghv/${deviceId}/info`, 5000);
    const payload = JSON.parse(info.payload);
    assert.equal(payload.device_id, deviceId);
    assert.equal(payload.execution_provider, 'cpu');
    assert.match(payload.model.sha256, /^[0-9a-f]{64}$/);
    assert.equal(payload.cameras[0].id, 'front');

    // Commissioning a gate (docs/gate-integration.md): a new client reads the retained info,
    // pins its decision_public_key, then verifies every decision of its camera with it, as
    // the example subscriber does (bytes as received, device, camera, now, lastSeq).
    gate = await connectAsync(broker.url, { protocolVersion: 5, clientId: 'e2e-gate', reconnectPeriod: 0 });
    const c = gate;
    const retained = new Promise<Buffer>((resolve) =>
      c.on('message', (topic, buf, packet) => {
        if (topic === `fghv/${deviceId}/info` && packet.retain) resolve(buf);
      }),
    );
    await c.subscribeAsync(`fghv/${deviceId}/info`, { qos: 1 });
    const key = JSON.parse((await retained).toString()).decision_public_key;
    assert.match(key, /^[A-Za-z0-9+/]{43}=$/, 'base64 of 32 raw bytes');
    await c.unsubscribeAsync(`fghv/${deviceId}/info`);
    let lastSeq = 0;
    c.on('message', (topic, buf) => {
      if (topic !== `fghv/${deviceId}/front/decision`) return;
      const r = verifyDecision(buf, key, { deviceId, cameraId: 'front', now: Date.now(), lastSeq });
      if (r.ok) lastSeq = r.seq;
      gateResults.push({ result: r, seq: JSON.parse(buf.toString()).seq });
    });
    await c.subscribeAsync(`fghv/${deviceId}/front/decision`, { qos: 1 });
  });

  it('publishes health with pipeline figures', async () => {
    const h = await sub.waitFor((m) => m.topic === `fghv/${deviceId}/health`, 10_000);
    const payload = JSON.parse(h.payload);
    assert.equal(payload.device_id, deviceId);
    assert.ok(payload.uptime_s >= 0);
    assert.equal(payload.cameras[0].id, 'front');
    // The first message already has real rates (over its first interval), not 0.
    assert.ok(payload.fps.capture > 0, `first health message: fps ${JSON.stringify(payload.fps)}`);
    assert.ok(payload.cameras[0].capture_fps > 0);
  });

  it('publishes one decision per person-session while the sample video plays', async () => {
    // The video shows Hopper, then no one, then the astronaut, then both: several sessions.
    const exitCode = child.exitCode;
    assert.equal(exitCode, null, `daemon exited early: ${stderr.slice(-2000)}`);
    await sub.waitFor((m) => m.topic === `fghv/${deviceId}/front/decision`, 60_000);
    // Let the whole video play (it ends; the daemon stays up and says so).
    const t0 = Date.now();
    while (!stderr.includes('camera source ended')) {
      assert.ok(Date.now() - t0 < 120_000, 'the sample video did not end within 120 s');
      await new Promise((r) => setTimeout(r, 250));
    }
    await new Promise((r) => setTimeout(r, 500));
    const decisions = sub.messages.filter((m) => m.topic === `fghv/${deviceId}/front/decision`);
    assert.ok(decisions.length >= 2, `expected several decisions, got ${decisions.length}`);
    const payloads = decisions.map((d) => JSON.parse(d.payload));
    for (const [i, d] of decisions.entries()) {
      const p = payloads[i];
      assert.equal(d.retain, false);
      assert.ok(
        d.messageExpiryInterval !== undefined && d.messageExpiryInterval > 0 && d.messageExpiryInterval <= 10,
      );
      assert.equal(p.v, 1);
      assert.equal(p.device_id, deviceId);
      assert.equal(p.camera_id, 'front');
      assert.ok(['accept', 'reject', 'retry'].includes(p.decision), p.decision);
      assert.ok(REASONS.includes(p.reason), p.reason);
      assert.equal(Date.parse(p.expires_at) - Date.parse(p.ts), 10_000);
      assert.ok(p.frames.seen >= p.frames.verified);
      if (p.decision === 'accept') assert.equal(p.reason, 'live_verified');
    }
    const seqs = payloads.map((p) => p.seq);
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => (seqs[0] as number) + i),
      'seq increases by one per decision',
    );
    assert.ok(new Set(payloads.map((p) => p.track_id)).size >= 2, 'several tracked people were decided on');
    // Each decision is also one readable log line.
    const logLines = stderr.split('\n').filter((l) => l.includes('"decision"') && l.includes('"seq"'));
    assert.equal(logLines.length, decisions.length);
    // The gate verified each decision it received with the key the daemon announced.
    // It subscribed after commissioning: it has every decision from its first one on.
    const first = gateResults[0]?.seq;
    assert.ok(first !== undefined, 'the gate received no decision');
    assert.deepEqual(
      gateResults.map((g) => g.seq),
      seqs.filter((s) => s >= first),
    );
    for (const g of gateResults) assert.equal(g.result.ok, true, JSON.stringify(g.result));
  });

  it('stops on SIGTERM: publishes offline (retained) and exits 0', async () => {
    child.kill('SIGTERM');
    const code = await waitExit(child, 15_000);
    assert.equal(code, 0, stderr.slice(-2000));
    await sub.waitFor((m) => m.topic === `fghv/${deviceId}/availability` && m.payload === 'offline', 5000);
  });
});
