/**
 * The status page as an installer sees it: the daemon (in process, so the bound port is read
 * from `statusUrl`) on the sample video, the page rendered in headless Debian Chromium through
 * playwright-core. Checks: nothing is encoded before the page opens; a face box is drawn in
 * its overlay colour (pixel test on a screenshot); the page shows current figures; /metrics
 * counters move; the preview stops when the page closes.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { validateConfig } from '../../config/load.js';
import { cv } from '../../core/cv.js';
import { Daemon } from '../../daemon/daemon.js';
import { OverlayColors } from '../../daemon/status/overlay.js';
import { findDrawnBox } from '../helpers/drawn-box.js';
import { MINIFASNET_MANIFEST } from '../helpers/kiosk-child.js';
import { needsSharedData, repoRoot } from '../helpers/paths.js';
import { parsePromText, sumOf } from '../helpers/prom-text.js';

const CHROMIUM = '/usr/bin/chromium';
const DEMO_MANIFEST = path.join(repoRoot, 'models/fghv-demo/manifest.json');
const MINIFASNET = MINIFASNET_MANIFEST;

/** The demo model when it exists, else the shared MiniFASNetV2; a skip message when neither can run. */
function pickModel(): { manifest: string; skip: false | string } {
  if (!existsSync(CHROMIUM))
    return { manifest: '', skip: `needs ${CHROMIUM} (apt-get install chromium), which is absent` };
  if (existsSync(DEMO_MANIFEST)) return { manifest: DEMO_MANIFEST, skip: false };
  return { manifest: MINIFASNET, skip: needsSharedData('models/MiniFASNetV2.onnx') };
}

const model = pickModel();

describe('status page in headless Chromium against the daemon on the sample video', {
  skip: model.skip,
}, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fghv-status-page-'));
  const logLines: string[] = [];
  let daemon: Daemon;
  let context: BrowserContext | null = null;
  let page: Page;
  let url = '';

  /** The parts of /api/status this test reads. */
  interface StatusJson {
    totals: { processed: number };
    preview: { clients: number; encoded: number; sent: number };
    decisions: { decision: string }[];
  }
  const api = async () => (await (await fetch(`${url}api/status`)).json()) as StatusJson;
  const scrape = async () => parsePromText(await (await fetch(`${url}metrics`)).text());

  before(async () => {
    const config = validateConfig(
      {
        device: { id: 'status-page', state_dir: path.join(dir, 'state') },
        mqtt: { embedded_port: 0, health_interval_s: 3600 },
        cameras: [
          { id: 'front', source: path.join(repoRoot, 'media/demo-kiosk.mp4'), loop: true, realtime: true },
        ],
        liveness: { manifest: model.manifest, providers: ['cpu'] },
        status: { port: 0, preview_fps: 5 },
      },
      'status-page test',
    );
    const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
    daemon = new Daemon({ config, log, version: 'test' });
    await daemon.start();
    url = daemon.statusUrl ?? '';
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens on the port it bound (port 0) and logs it', () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.notEqual(url, 'http://127.0.0.1:0/');
    assert.ok(
      logLines.some((l) => l.includes(`status page listening on ${url}`)),
      'the bound URL is logged',
    );
  });

  it('encodes no preview frame while no page is open', async () => {
    await new Promise((r) => setTimeout(r, 2000));
    const s = await api();
    assert.ok(s.totals.processed > 0, 'the pipeline runs');
    assert.deepEqual([s.preview.clients, s.preview.encoded, s.preview.sent], [0, 0, 0]);
  });

  it('shows the preview with a drawn face box and current figures', async () => {
    context = await chromium.launchPersistentContext(path.join(dir, 'chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(
      () => /^\d+$/.test(document.getElementById('processed')?.textContent ?? ''),
      null,
      { timeout: 15_000 },
    );
    assert.match((await page.textContent('#privacy')) ?? '', /only while this page is open/);
    // The first preview frame follows the first status poll: on a loaded machine it can come
    // after the figures, and until then the element shows its empty minimum height.
    await page.waitForFunction(
      () => ((document.getElementById('preview') as HTMLImageElement | null)?.naturalWidth ?? 0) > 0,
      null,
      { timeout: 15_000 },
    );

    // The MJPEG stream's first frame may take a while on a loaded machine: until it has
    // arrived the element is an empty 120 px placeholder, not the frame.
    await page.waitForFunction(
      () => ((document.getElementById('preview') as HTMLImageElement | null)?.naturalWidth ?? 0) > 0,
      null,
      { timeout: 30_000 },
    );
    // The video shows a face for most of its 24 s loop: look for a drawn box for up to 30 s.
    const palette = [OverlayColors.live, OverlayColors.spoof, OverlayColors.uncertain, OverlayColors.gate];
    let box = null;
    const deadline = Date.now() + 30_000;
    while (!box && Date.now() < deadline) {
      const png = await page.locator('#preview').screenshot();
      const img = cv.imdecode(png);
      // Shown at the frame's size (the element may sit on a fractional pixel: one more row).
      assert.ok(
        img.cols >= 640 && img.cols <= 641 && img.rows >= 480 && img.rows <= 481,
        `${img.cols}x${img.rows}`,
      );
      box = findDrawnBox(img, palette);
      if (box) writeFileSync(path.join(dir, 'preview.png'), png);
      img.release();
      if (!box) await new Promise((r) => setTimeout(r, 300));
    }
    assert.ok(box, 'a face box in an overlay colour appeared in the preview within 30 s');
    assert.ok(box.x1 - box.x0 >= 30 && box.y1 - box.y0 >= 30);

    // Figures on the page are current: they match the JSON and keep moving.
    const shown = async () => Number(await page.textContent('#processed'));
    const p1 = await shown();
    const s1 = await api();
    assert.ok(p1 > 0 && p1 <= s1.totals.processed, `page ${p1}, daemon ${s1.totals.processed}`);
    await page.waitForFunction((n) => Number(document.getElementById('processed')?.textContent) > n, p1, {
      timeout: 5000,
    });
    assert.equal(await page.textContent('#provider'), 'cpu');
    assert.match((await page.textContent('#model')) ?? '', new RegExp(daemon.info.model?.name ?? '^$'));
    assert.equal(await page.textContent('#mqtt-connected'), 'yes');
    const s2 = await api();
    assert.equal(s2.preview.clients, 1);
    assert.ok(s2.preview.sent > 0);
  });

  it('exposes /metrics whose counters move', async () => {
    const m1 = await scrape();
    await new Promise((r) => setTimeout(r, 2500));
    const m2 = await scrape();
    for (const name of [
      'fghv_frames_captured_total',
      'fghv_frames_processed_total',
      'fghv_status_preview_frames_total',
    ])
      assert.ok(sumOf(m2, name) > sumOf(m1, name), `${name}: ${sumOf(m1, name)} -> ${sumOf(m2, name)}`);
    assert.ok(
      sumOf(m2, 'fghv_stage_duration_seconds_count', { stage: 'detect' }) >
        sumOf(m1, 'fghv_stage_duration_seconds_count', { stage: 'detect' }),
    );
    assert.equal(sumOf(m2, 'fghv_camera_up', { camera: 'front' }), 1);
    assert.equal(sumOf(m2, 'fghv_mqtt_connected'), 1);
    assert.equal(sumOf(m2, 'fghv_status_preview_clients'), 1);
    const info = daemon.info;
    assert.equal(
      sumOf(m2, 'fghv_model_info', {
        model: info.model?.name ?? '',
        sha256: info.model?.sha256 ?? '',
        provider: 'cpu',
      }),
      1,
    );
    // The fuser decides once per person (the first person may be decided before the status
    // server listens): the video's next person comes within its 24 s loop.
    let m3 = m2;
    const t0 = Date.now();
    while (sumOf(m3, 'fghv_decisions_total') < 1 && Date.now() - t0 < 40_000) {
      await new Promise((r) => setTimeout(r, 500));
      m3 = await scrape();
    }
    assert.ok(sumOf(m3, 'fghv_decisions_total') >= 1, 'decisions are counted');
    // The page's list of last decisions holds the same decisions (newest 20).
    const s = await api();
    assert.ok(s.decisions.length >= Math.min(20, sumOf(m3, 'fghv_decisions_total')));
    assert.ok(['accept', 'reject', 'retry'].includes(s.decisions[0]?.decision ?? ''));
  });

  it('stops encoding when the page closes', async () => {
    await context?.close();
    context = null;
    let s = await api();
    const t0 = Date.now();
    while (s.preview.clients !== 0) {
      assert.ok(Date.now() - t0 < 5000, 'the preview stream was not closed');
      await new Promise((r) => setTimeout(r, 100));
      s = await api();
    }
    const encoded = s.preview.encoded;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await api()).preview.encoded, encoded);
  });
});
