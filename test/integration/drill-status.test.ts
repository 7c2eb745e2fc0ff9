/**
 * A drill driven from the status page (start, label, stop) on the running daemon: it listens
 * to the daemon's own pipeline, records the presentation with its decisions, and writes the
 * report. The camera is a video of the shared T1 photo (pixels as stored), looped in real time;
 * MiniFASNetV2 accepts it (see drill.test.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { validateConfig } from '../../config/load.js';
import { Daemon } from '../../daemon/daemon.js';
import type { DrillStatus } from '../../daemon/drill/daemon-drill.js';
import { readDrill } from '../../daemon/drill/record.js';
import { MINIFASNET_MANIFEST } from '../helpers/kiosk-child.js';
import { needsSharedData } from '../helpers/paths.js';
import { photoVideo } from '../helpers/photo-video.js';

const skip = needsSharedData('images/T1.jpg', 'models/MiniFASNetV2.onnx');

describe('drill from the status page', { skip }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fghv-drill-status-'));
  let daemon: Daemon;
  let url = '';

  const post = async (action: string, body: unknown, type = 'application/json') => {
    const res = await fetch(`${url}api/drill/${action}`, {
      method: 'POST',
      headers: { 'content-type': type },
      body: JSON.stringify(body),
    });
    return {
      status: res.status,
      body: (await res.json().catch(() => null)) as DrillStatus & { error?: { code: string } },
    };
  };
  const status = async () => (await (await fetch(`${url}api/drill`)).json()) as DrillStatus;

  before(async () => {
    const file = path.join(dir, 't1.mp4');
    photoVideo('T1.jpg', file, { seconds: 2 });
    const config = validateConfig(
      {
        device: { id: 'drill-status', state_dir: path.join(dir, 'state') },
        mqtt: { embedded_port: 0, health_interval_s: 3600 },
        cameras: [{ id: 'front', source: file, loop: true, realtime: true }],
        liveness: {
          manifest: MINIFASNET_MANIFEST,
          providers: ['cpu'],
        },
        status: { port: 0 },
      },
      'drill-status test',
    );
    daemon = new Daemon({ config, log: pino({ level: 'silent' }), version: 'test' });
    await daemon.start();
    url = daemon.statusUrl ?? '';
  });

  after(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses what a cross-site page could send, and labels before a drill', async () => {
    assert.equal((await post('start', {}, 'text/plain')).status, 415);
    assert.equal((await fetch(`${url}api/drill/start`)).status, 405);
    const early = await post('label', { label: 'bona_fide' });
    assert.equal(early.status, 409);
    assert.equal(early.body.error?.code, 'KIOSK_E_DRILL_INVALID');
    assert.equal((await post('label', { label: 'attack' })).status, 400);
  });

  it('start, label, stop: the presentation is recorded with its decisions and reported', async () => {
    const started = await post('start', {});
    assert.equal(started.status, 200);
    assert.equal(started.body.running, true);
    assert.equal((await post('label', { label: 'bona_fide', subject: 'installer' })).status, 200);
    // Generous wait (slow shared CPUs): until the pipeline accepted the face.
    const deadline = Date.now() + 90_000;
    let s = await status();
    while (!s.presentation?.decisions.some((d) => d.startsWith('accept')) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      s = await status();
    }
    assert.ok(
      s.presentation?.decisions.some((d) => d.startsWith('accept')),
      JSON.stringify(s),
    );
    const stopped = await post('stop', {});
    assert.equal(stopped.status, 200);
    assert.equal(stopped.body.running, false);
    assert.equal(stopped.body.recorded, 1);
    const dirOf = stopped.body.dir as string;
    const rec = readDrill(dirOf);
    assert.equal(rec.presentations.length, 1);
    assert.equal(rec.presentations[0]?.label, 'bona_fide');
    assert.ok(rec.presentations[0]?.decisions.some((d) => d.decision === 'accept'));
    assert.equal(rec.meta.model.name, 'minifasnet-v2');
    assert.ok(existsSync(path.join(dirOf, 'report.json')));
    assert.equal(existsSync(path.join(dirOf, 'images')), false);
  });

  it('a presentation open when the daemon stops is kept as interrupted', async () => {
    assert.equal((await post('start', {})).status, 200);
    assert.equal((await post('label', { label: 'attack', type: 'print' })).status, 200);
    const dirOf = (await status()).dir as string;
    await daemon.stop();
    const rec = readDrill(dirOf);
    assert.deepEqual(
      rec.presentations.map((p) => [p.label, p.attackType, p.status, p.interruption?.code]),
      [['attack', 'print', 'interrupted', 'drill_stopped']],
    );
  });
});
