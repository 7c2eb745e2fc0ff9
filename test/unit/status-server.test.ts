/**
 * The status server against a fake daemon (no models, no camera): auth over real HTTP, the
 * start-time checks, and the preview's promise that nothing is copied or encoded unless a
 * viewer is connected.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { cv, type Mat } from '../../core/cv.js';
import { ErrorCodes, isKioskError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import type { FrameResult } from '../../daemon/pipeline/pipeline.js';
import { MJPEG_BOUNDARY, type PreviewClient, PreviewHub } from '../../daemon/status/preview.js';
import { StatusServer } from '../../daemon/status/status-server.js';

class FakeDaemon extends EventEmitter {
  info = {
    v: 1 as const,
    device_id: 'unit',
    software: { name: 'fghv-kiosk', version: 't' },
    model: null,
    detector: null,
    execution_provider: null,
    cameras: [{ id: 'front', kind: 'fake', source: 'rtsp://user:secret@cam/stream' }],
    decision_public_key: null,
    capabilities: [],
    config_hash: null,
  };
  figures() {
    return { stages: {} };
  }
  cameraStates() {
    return [{ id: 'front', state: 'running' as const, error: null }];
  }
}

function statusConfig(over: Record<string, unknown> = {}) {
  return configSchema.parse({ status: { port: 0, ...over } }).status;
}

async function startServer(daemon: FakeDaemon, over: Record<string, unknown> = {}) {
  return StatusServer.start({
    failOnListenError: true,
    config: statusConfig(over),
    daemon,
    log: silentLogger(),
    cameraTotals: () => [{ camera: 'front', captured: 3, processed: 2, dropped: 1, stale: 0 }],
    mqttCounters: () => null,
    system: async () => ({
      cpu_load_pct: null,
      mem_used_pct: null,
      process_rss_mb: 1,
      cpu_temp_c: null,
      gpu: null,
    }),
  });
}

function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

function frameResult(mat: Mat): FrameResult {
  return {
    cameraId: 'front',
    frame: {
      mat,
      width: mat.cols,
      height: mat.rows,
      capturedAt: Date.now(),
      capturedMono: performance.now(),
      seq: 1,
    },
    faces: [],
    ignored: 0,
    decisions: [],
  };
}

const servers: StatusServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

describe('status server', () => {
  it('serves page, JSON and metrics on loopback, and refuses a foreign Host name', async () => {
    const s = await startServer(new FakeDaemon());
    servers.push(s);
    assert.match(s.url ?? '', /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await get(s.url ?? '');
    assert.equal(page.status, 200);
    assert.match(page.body, /only while this page is open/);
    const json = JSON.parse((await get(`${s.url ?? ''}api/status`)).body);
    assert.equal(json.device_id, 'unit');
    assert.equal(
      json.cameras[0].source,
      'rtsp://[redacted]@cam/stream',
      'credentials in a camera URL are not shown',
    );
    assert.deepEqual(json.totals, { captured: 3, processed: 2, dropped: 1, stale: 0 });
    const metrics = await get(`${s.url ?? ''}metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^fghv_frames_captured_total\{camera="front"\} 3$/m);
    assert.equal((await get(`${s.url ?? ''}api/status`, { host: 'attacker.example' })).status, 421);
    assert.equal((await get(`${s.url ?? ''}nothing`)).status, 404);
  });

  it('with a token: 401 and a basic-auth challenge without it, 200 with bearer or basic', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fghv-status-'));
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, 'a-long-enough-status-token\n');
    const s = await startServer(new FakeDaemon(), { token_file: tokenFile });
    servers.push(s);
    const denied = await get(`${s.url ?? ''}metrics`);
    assert.equal(denied.status, 401);
    assert.match(String(denied.headers['www-authenticate']), /^Basic realm=/);
    assert.equal(
      (await get(`${s.url ?? ''}metrics`, { authorization: 'Bearer wrong-token-of-some-length' })).status,
      401,
    );
    assert.equal(
      (await get(`${s.url ?? ''}metrics`, { authorization: 'Bearer a-long-enough-status-token' })).status,
      200,
    );
    const basic = `Basic ${Buffer.from('installer:a-long-enough-status-token').toString('base64')}`;
    assert.equal((await get(s.url ?? '', { authorization: basic, host: 'kiosk.example' })).status, 200);
  });

  it('refuses to start beyond loopback without a token, and on a taken port, with clear codes', async () => {
    await assert.rejects(
      StatusServer.start({
        config: { ...statusConfig(), host: '0.0.0.0' },
        daemon: new FakeDaemon(),
        log: silentLogger(),
        cameraTotals: () => [],
        mqttCounters: () => null,
      }),
      (e) => isKioskError(e, ErrorCodes.STATUS_AUTH_CONFIG),
    );
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const { port } = blocker.address() as net.AddressInfo;
    const tolerant = await StatusServer.start({
      config: statusConfig({ port }),
      daemon: new FakeDaemon(),
      log: silentLogger(),
      cameraTotals: () => [],
      mqttCounters: () => null,
    });
    assert.equal(tolerant.url, null, 'by default a taken port leaves the daemon running without the page');
    await tolerant.close();
    await assert.rejects(
      startServer(new FakeDaemon(), { port }),
      (e) => isKioskError(e, ErrorCodes.STATUS_LISTEN) && e.message.includes(String(port)),
    );
    blocker.close();
  });

  it('listens to frames only while a preview is open, and streams JPEG parts with the overlay', async () => {
    const daemon = new FakeDaemon();
    const s = await startServer(daemon, { preview_fps: 30 });
    servers.push(s);
    assert.equal(daemon.listenerCount('frame'), 0, 'no page open: the pipeline emits no frames to us');
    const mat = new cv.Mat(48, 64, cv.CV_8UC3, [40, 80, 120]);
    const received: Buffer[] = [];
    const req = http.get(`${s.url ?? ''}preview.mjpeg`, (res) => {
      assert.match(String(res.headers['content-type']), /multipart\/x-mixed-replace/);
      res.on('data', (d: Buffer) => received.push(d));
    });
    const t0 = Date.now();
    while (daemon.listenerCount('frame') === 0) {
      assert.ok(Date.now() - t0 < 5000, 'the stream never subscribed');
      await new Promise((r) => setTimeout(r, 10));
    }
    while (Buffer.concat(received).toString('latin1').split(`--${MJPEG_BOUNDARY}`).length < 3) {
      assert.ok(Date.now() - t0 < 5000, 'no preview parts arrived');
      daemon.emit('frame', frameResult(mat));
      await new Promise((r) => setTimeout(r, 40));
    }
    const body = Buffer.concat(received);
    const start = body.indexOf(Buffer.from([0xff, 0xd8]));
    const end = body.indexOf(Buffer.from(`\r\n--${MJPEG_BOUNDARY}`), start);
    const decoded = cv.imdecode(body.subarray(start, end));
    assert.deepEqual([decoded.cols, decoded.rows], [64, 48]);
    req.destroy();
    while (daemon.listenerCount('frame') !== 0) {
      assert.ok(Date.now() - t0 < 5000, 'the stream never unsubscribed');
      await new Promise((r) => setTimeout(r, 10));
    }
    mat.release();
  });
});

describe('preview hub', () => {
  const untouchable = { copy: () => assert.fail('the frame was copied with no viewer') } as unknown as Mat;

  function client(over: Partial<PreviewClient> = {}) {
    const writes: Buffer[] = [];
    return {
      writes,
      writableNeedDrain: false,
      destroyed: false,
      write: (b: Buffer) => writes.push(b) > 0,
      end: () => undefined,
      ...over,
    };
  }

  it('copies and encodes nothing without a viewer, at most preview_fps with one, one at a time', async () => {
    let t = 0;
    let renders = 0;
    const hub = new PreviewHub({ fps: 5, now: () => t, render: async () => Buffer.from([renders++]) });
    hub.offer(frameResult(untouchable));
    const c = client();
    assert.equal(hub.add(c), true);
    const mat = new cv.Mat(4, 4, cv.CV_8UC3, [0, 0, 0]);
    hub.offer(frameResult(mat));
    hub.offer(frameResult(mat)); // same instant, and an encode in flight: dropped
    await new Promise((r) => setImmediate(r));
    t = 100;
    hub.offer(frameResult(mat)); // 100 ms after the last: over 5 fps, dropped
    await new Promise((r) => setImmediate(r));
    t = 200;
    hub.offer(frameResult(mat));
    await new Promise((r) => setImmediate(r));
    assert.equal(renders, 2);
    assert.equal(c.writes.length, 2);
    assert.equal(hub.encoded, 2);
    hub.remove(c);
    t = 1000;
    hub.offer(frameResult(untouchable));
    await hub.close();
    mat.release();
  });

  it('skips a viewer that has not drained the last frame, and refuses viewers beyond the limit', async () => {
    let t = 0;
    const hub = new PreviewHub({
      fps: 10,
      maxClients: 2,
      now: () => t,
      render: async () => Buffer.from('jpeg'),
    });
    const slow = client({ writableNeedDrain: true });
    const fast = client();
    hub.add(slow);
    hub.add(fast);
    assert.equal(hub.add(client()), false);
    const mat = new cv.Mat(4, 4, cv.CV_8UC3, [0, 0, 0]);
    for (let i = 0; i < 3; i++) {
      t = i * 1000;
      hub.offer(frameResult(mat));
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(fast.writes.length, 3);
    assert.equal(slow.writes.length, 0);
    assert.equal(hub.skippedSlow, 3);
    assert.match(
      fast.writes[0]?.toString('latin1') ?? '',
      /^--fghvframe\r\nContent-Type: image\/jpeg\r\nContent-Length: 4\r\n\r\njpeg\r\n$/,
    );
    hub.remove(fast);
    t = 5000;
    hub.offer(frameResult(untouchable)); // only a stalled viewer: nothing to encode for
    await hub.close();
    mat.release();
  });
});
