import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { parseTarget, propose, sweep } from '../../daemon/drill/propose.js';
import type { PresentationRecord } from '../../daemon/drill/record.js';
import {
  candidateThresholds,
  frameScores,
  replayPresentation,
  thresholdAxis,
} from '../../daemon/drill/replay.js';

const round = (v: number) => Math.round(v * 1e9) / 1e9;
const cfg = configSchema.parse({}).decision; // frames 5, min_live 4, min_spoof 3, cooldown 3000 ms
const axis = thresholdAxis('softmax', { live_min: 0.8, spoof_max: 0.5 });

/** One presentation: 8 frames, 66 ms apart, one good-quality face scoring p_live = s. */
function pres(i: number, label: 'bona_fide' | 'attack', s: number): PresentationRecord {
  return {
    index: i,
    label,
    attackType: label === 'attack' ? 'print' : null,
    subject: null,
    cameraId: 'front',
    source: null,
    startedAt: '',
    endedAt: '',
    status: 'complete',
    interruption: null,
    images: [],
    decisions: [],
    frames: Array.from({ length: 8 }, (_, k) => ({
      t: 10_000 * i + 66 * k,
      faces: [
        {
          trackId: 1,
          box: [100, 100, 200, 200],
          quality: { face_px: 200, sharpness: 0.5, brightness: 0.5 },
          qualityGate: null,
          verdict: null,
          scores: { p_live: s },
          facesInView: 1,
        },
      ],
    })),
  };
}

// Hand computation. 15 bona fide: 13 score 0.95, 2 score 0.70. 12 print attacks: 11 score
// 0.10, one scores 0.85 (an attack the model misses). Candidates (midpoints and ends):
// 0, 0.4, 0.775, 0.9, 0.950001. Per presence (5 frames decide, spoof_max follows live_min down):
//   t = 0.775: 0.70 is uncertain (above spoof_max 0.5)  -> BPCER 2/15, APCER 1/12
//   t = 0.9:   0.85 uncertain, 0.95 live                 -> BPCER 2/15, APCER 0/12
//   t = 0.4:   0.70 and 0.85 live, 0.10 spoof            -> BPCER 0/15, APCER 1/12
const data = [
  ...Array.from({ length: 13 }, (_, i) => pres(i, 'bona_fide', 0.95)),
  ...Array.from({ length: 2 }, (_, i) => pres(13 + i, 'bona_fide', 0.7)),
  ...Array.from({ length: 11 }, (_, i) => pres(15 + i, 'attack', 0.1)),
  pres(26, 'attack', 0.85),
];

describe('drill threshold proposal', () => {
  it('replays a presentation through the production fuser', () => {
    const live = replayPresentation(pres(0, 'bona_fide', 0.95), axis, 0.8, cfg);
    assert.deepEqual(
      live.map((d) => [d.decision, d.reason]),
      [['accept', 'live_verified']],
    );
    const band = replayPresentation(pres(0, 'bona_fide', 0.7), axis, 0.8, cfg);
    assert.deepEqual(
      band.map((d) => [d.decision, d.reason]),
      [['retry', 'uncertain']],
    );
    const attack = replayPresentation(pres(0, 'attack', 0.1), axis, 0.8, cfg);
    assert.deepEqual(
      attack.map((d) => [d.decision, d.reason]),
      [['reject', 'spoof_detected']],
    );
  });

  it('candidate thresholds sit between the observed scores', () => {
    assert.deepEqual(
      candidateThresholds(frameScores(data, axis)).map((t) => round(t)),
      [0, 0.4, 0.775, 0.9, 0.950001],
    );
  });

  it('BPCER <= 20 %: the threshold with the lowest APCER among those that meet it', () => {
    const curve = sweep(data, axis, cfg, 'presence');
    const at = (t: number) => curve.find((p) => round(p.threshold) === t)?.rates;
    assert.deepEqual([at(0.775)?.bpcer.errors, at(0.775)?.apcer.print?.errors], [2, 1]);
    assert.deepEqual([at(0.9)?.bpcer.errors, at(0.9)?.apcer.print?.errors], [2, 0]);
    assert.deepEqual([at(0.4)?.bpcer.errors, at(0.4)?.apcer.print?.errors], [0, 1]);
    const p = propose(curve, axis, parseTarget('bpcer<=20%'), 'presence');
    assert.equal(p.status, 'proposed');
    if (p.status !== 'proposed') return;
    assert.equal(round(p.threshold), 0.9);
    assert.deepEqual(p.update, { live_min: 0.9 });
    assert.equal(p.at.bpcer.errors, 2);
    assert.equal(p.at.bpcer.n, 15);
    assert.equal(p.at.apcer.print?.errors, 0);
  });

  it('refuses a target the data cannot show, saying how many more are needed', () => {
    const curve = sweep(data, axis, cfg, 'presence');
    const p = propose(curve, axis, parseTarget('bpcer<=10%'), 'presence');
    assert.equal(p.status, 'refused');
    if (p.status !== 'refused') return;
    assert.equal(p.code, 'KIOSK_E_DRILL_TOO_FEW');
    // rule of three: 3 / 0.10 = 30 bona fide, 15 recorded
    assert.deepEqual(p.need, { bona_fide: 15, attack: 0 });
    assert.match(p.message, /15 more bona fide/);
  });

  it('one class only: refused, attacks needed', () => {
    const bona = data.filter((d) => d.label === 'bona_fide');
    const p = propose(sweep(bona, axis, cfg, 'presence'), axis, parseTarget('eer'), 'presence');
    assert.equal(p.status, 'refused');
    if (p.status === 'refused') assert.deepEqual(p.need, { bona_fide: 0, attack: 10 });
  });

  it('EER: where BPCER and APCER are closest', () => {
    const p = propose(sweep(data, axis, cfg, 'presence'), axis, parseTarget('eer'), 'presence');
    assert.equal(p.status, 'proposed');
    if (p.status !== 'proposed') return;
    // t = 0.775: |2/15 - 1/12| = 0.05, the smallest gap; EER = (2/15 + 1/12) / 2
    assert.equal(round(p.threshold), 0.775);
    assert.ok(Math.abs((p.eer as number) - (2 / 15 + 1 / 12) / 2) < 1e-12);
  });

  it('per-frame basis counts frames (8 per presentation)', () => {
    const curve = sweep(data, axis, cfg, 'frame');
    const r = curve.find((c) => round(c.threshold) === 0.9)?.rates;
    assert.equal(r?.bpcer.n, 15 * 8);
    assert.equal(r?.bpcer.errors, 2 * 8);
    assert.equal(r?.apcer.print?.n, 12 * 8);
    assert.equal(r?.apcer.print?.errors, 0);
  });

  it('targets are parsed strictly', () => {
    assert.deepEqual(parseTarget('bpcer<=1%'), { kind: 'bpcer', max: 0.01 });
    assert.deepEqual(parseTarget('BPCER<=0.05'), { kind: 'bpcer', max: 0.05 });
    assert.throws(() => parseTarget('bpcer<=150%'), /not understood/);
    assert.throws(() => parseTarget('apcer'), /not understood/);
  });

  it('fghv: p_real_min is swept, the other limits stay', () => {
    const f = thresholdAxis('fghv', { p_real_min: 0.6, var_max: 0.02, delta_kl_max: 0.5 });
    const s = { p_real: 0.7, var: 0.01, delta_kl: 0, kl_real: 0, kl_attack: 0 };
    assert.equal(f.verdict(s, 0.65), 'live');
    assert.equal(f.verdict(s, 0.75), 'spoof');
    assert.equal(f.verdict({ ...s, var: 0.05 }, 0.1), 'uncertain');
    assert.deepEqual(f.update(0.75), { p_real_min: 0.75 });
  });
});
