import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { configSchema } from '../../config/schema.js';
import {
  applyDrillRetention,
  DRILL_RECORD_VERSION,
  type DrillMeta,
  DrillRecorder,
  DrillStore,
  drillsDir,
  latestDrillId,
  MAX_FRAMES_PER_PRESENTATION,
  readDrill,
} from '../../daemon/drill/record.js';
import type { FrameResult } from '../../daemon/pipeline/pipeline.js';

const dir = mkdtempSync(path.join(tmpdir(), 'fghv-drill-record-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const meta = (id: string): DrillMeta => ({
  version: DRILL_RECORD_VERSION,
  id,
  startedAt: '2026-01-01T00:00:00.000Z',
  software: 'test',
  cameraIds: ['front'],
  model: {
    name: 'm',
    version: '1',
    sha256: 'a'.repeat(64),
    family: 'softmax' as const,
    purpose: 'reference' as const,
  },
  configHash: 'abc',
  thresholds: { live_min: 0.8, spoof_max: 0.5 },
  decision: configSchema.parse({}).decision,
  detector: 'blazeface',
  storeImages: false,
});

describe('drill record', () => {
  it('appends each presentation as it ends; a torn last line is skipped, the rest kept', () => {
    const state = path.join(dir, 'torn');
    const store = new DrillStore(state, meta('d1'));
    const rec = new DrillRecorder(store);
    rec.begin({ label: 'bona_fide', attackType: null, subject: 'a' }, 'front');
    rec.end();
    rec.begin({ label: 'attack', attackType: 'print', subject: null }, 'front');
    rec.end({ code: 'KIOSK_E_CAMERA_READ_FAILED', message: 'unplugged' });
    appendFileSync(path.join(store.dir, 'presentations.jsonl'), '{"index":2,"label":"bona'); // crash mid-write
    const back = readDrill(store.dir);
    assert.deepEqual(
      back.presentations.map((p) => [p.index, p.label, p.status]),
      [
        [0, 'bona_fide', 'complete'],
        [1, 'attack', 'interrupted'],
      ],
    );
    assert.equal(back.meta.model.sha256, 'a'.repeat(64));
  });

  it('refuses an attack without its type and a second open presentation', () => {
    const rec = new DrillRecorder(new DrillStore(path.join(dir, 'bad'), meta('d2')));
    assert.throws(
      () => rec.begin({ label: 'attack', attackType: null, subject: null }, 'front'),
      /needs its type/,
    );
    rec.begin({ label: 'bona_fide', attackType: null, subject: null }, 'front');
    assert.throws(
      () => rec.begin({ label: 'bona_fide', attackType: null, subject: null }, 'front'),
      /already open/,
    );
  });

  it('keeps frames of the open presentation only, up to the cap, and decisions while closing', async () => {
    const rec = new DrillRecorder(new DrillStore(path.join(dir, 'cap'), meta('d3')));
    const frame = (t: number, cameraId = 'front', decisions: FrameResult['decisions'] = []) =>
      ({
        cameraId,
        frame: { capturedMono: t, width: 640, height: 480 },
        faces: [
          {
            trackId: 1,
            box: [0, 0, 100, 100],
            quality: {},
            qualityGate: null,
            verdict: 'live',
            scores: {},
            facesInView: 1,
          },
        ],
        ignored: 0,
        decisions,
      }) as unknown as FrameResult;
    rec.onFrame(frame(0)); // no presentation open: ignored
    rec.begin({ label: 'bona_fide', attackType: null, subject: null }, 'front');
    rec.onFrame(frame(1, 'side')); // another camera: ignored
    for (let i = 0; i < MAX_FRAMES_PER_PRESENTATION + 7; i++) rec.onFrame(frame(10 + i));
    const decision = {
      cameraId: 'front',
      trackId: 1,
      decision: 'accept',
      reason: 'live_verified',
      frames: { seen: 5, inferred: 5, live: 5, verified: 5 },
      scores: {},
      quality: { face_px: 100, sharpness: 1, brightness: 0.5 },
      firstFrameMono: 10,
      lastFrameMono: 14,
      decidedAtMono: 14,
      presenceSinceMono: 10,
    } as const;
    // Closing: no more frames, but the decision of the face already seen (track 1) is awaited.
    const closing = rec.finish({ session_timeout_ms: 60_000, track_lost_ms: 1 });
    rec.onFrame(frame(99_999, 'front', [decision]));
    const p = await closing;
    assert.equal(p?.frames.length, MAX_FRAMES_PER_PRESENTATION);
    assert.equal(p?.framesOmitted, 7);
    assert.equal(p?.frames[0]?.t, 10);
    assert.deepEqual(
      p?.decisions.map((d) => d.decision),
      ['accept'],
    );
  });

  it('retention keeps the newest drills and never the one in progress', () => {
    const state = path.join(dir, 'retention');
    for (const id of ['2026-01-01', '2026-02-01', '2026-03-01', '2026-04-01'])
      new DrillStore(state, meta(id));
    // An old one by age: 400 days ago.
    const old = path.join(drillsDir(state), '2026-01-01');
    const t = (Date.now() - 400 * 86_400_000) / 1000;
    utimesSync(old, t, t);
    const removed = applyDrillRetention(state, { maxDrills: 2, maxAgeDays: 365 }, '2026-02-01');
    assert.deepEqual(removed.sort(), ['2026-01-01']);
    // Count limit (2): the newest two stay, plus the protected one.
    assert.deepEqual(readdirSync(drillsDir(state)).sort(), ['2026-02-01', '2026-03-01', '2026-04-01']);
    applyDrillRetention(state, { maxDrills: 2, maxAgeDays: 365 });
    assert.deepEqual(readdirSync(drillsDir(state)).sort(), ['2026-03-01', '2026-04-01']);
    assert.equal(latestDrillId(state), '2026-04-01');
    assert.equal(existsSync(old), false);
    mkdirSync(path.join(dir, 'empty'));
    assert.equal(latestDrillId(path.join(dir, 'empty')), null);
  });
});
