/**
 * Finding 7 of issue 12: a marker secret planted in every secret-bearing field (RTSP URL
 * credentials, a GStreamer pipeline's location and password, the broker URL's user info) must
 * appear in no output channel of the real daemon: its log, every MQTT message it publishes
 * (info, health, audit, responses of get_config and health_check), the status API, the
 * status page, /metrics and the audit database on disk.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../core/log.js';
import { attacker, skipDaemon, startDaemon } from '../helpers/attack-kit.js';
import { collect, freePort, type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

const MARK = 'MarkerSecret7x';

/** Every file under dir, recursively. */
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

describe('security: secrets never leave the daemon', { skip: skipDaemon, timeout: 300_000 }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  test('finding 7: a marker secret in every secret-bearing field appears in no output channel', async (t) => {
    const id = 'sec-redact';
    const closed = await freePort();
    const everything = await collect(broker.url, [`fghv/${id}/#`]);
    t.after(() => everything.close());
    const port = new URL(broker.url).port;
    const d = await startDaemon(id, broker.url, {
      mqtt: {
        url: `mqtt://broker-user:${MARK}1@127.0.0.1:${port}`,
        embedded_port: 0,
        health_interval_s: 1,
      },
      cameras: [
        { id: 'front', kind: 'fake', source: 'fake', fps: 5 },
        { id: 'door', kind: 'rtsp', source: `rtsp://cam-user:${MARK}2@127.0.0.1:${closed}/stream` },
        {
          id: 'gate',
          kind: 'gstreamer',
          source: `rtspsrc location=rtsp://u:${MARK}3@127.0.0.1:${closed}/x user-id=admin user-pw=${MARK}4 ! decodebin ! videoconvert ! appsink`,
        },
        {
          id: 'lobby',
          kind: 'ffmpeg',
          source: `-headers "Authorization: Basic ${MARK}5" -i http://127.0.0.1:${closed}/cam.mjpg?token=${MARK}6`,
        },
      ],
      status: { enabled: true, port: 0 },
    });
    t.after(() => d.kiosk.kill());
    const a = await attacker(broker.url);
    t.after(() => a.close());
    // Let the network cameras fail and retry (their errors quote their sources).
    await everything.waitFor((m) => m.topic.endsWith('/audit') && m.payload.includes('camera_lost'), 60_000);
    const cfg = await a.request(id, 'get_config', {});
    assert.equal(cfg.status, 'ok');
    const health = await a.request(id, 'health_check', {});
    assert.equal(health.status, 'ok');
    const url = /status page listening on (http:\/\/[^\s"]+)/.exec(d.kiosk.output())?.[1]?.replace(/\/$/, '');
    assert.ok(url, 'status URL in the log');
    const web: Record<string, string> = {};
    for (const route of ['/', '/api/status', '/metrics'])
      web[route] = await (await fetch(`${url}${route}`)).text();
    assert.match(web['/api/status'] ?? '', /"door"/, 'the status API lists the cameras');
    await everything.waitFor((m) => m.topic.endsWith('/health'), 60_000);
    d.kiosk.child.kill('SIGTERM');
    await d.kiosk.waitExit(30_000);

    const channels: Record<string, string> = {
      log: d.kiosk.output(),
      mqtt: everything.messages.map((m) => `${m.topic} ${m.payload}`).join('\n'),
      get_config: JSON.stringify(cfg),
      health_check: JSON.stringify(health),
      ...web,
    };
    for (const f of files(d.stateDir)) channels[path.relative(d.stateDir, f)] = readFileSync(f, 'latin1');
    assert.ok(
      Object.keys(channels).some((k) => k.startsWith('audit.sqlite')),
      'the audit database was read',
    );
    assert.match(
      channels.mqtt ?? '',
      /rtsp:\/\/\[redacted\]@127\.0\.0\.1/,
      'the sources are shown, redacted',
    );
    assert.match(channels.mqtt ?? '', /user-pw=\[redacted\]/);
    assert.match(channels.mqtt ?? '', /Authorization: \[redacted\]/);
    assert.match(channels.get_config ?? '', /mqtt:\/\/\[redacted\]@127\.0\.0\.1/);
    for (const [name, text] of Object.entries(channels)) {
      const at = text.indexOf(MARK);
      assert.equal(at, -1, `${name} leaks a secret: ...${text.slice(Math.max(0, at - 120), at + 40)}...`);
    }
  });

  test('the terminal (pretty) log redacts the same way as the JSON log', () => {
    let out = '';
    const sink = new Writable({
      write(chunk, _enc, done) {
        out += chunk.toString();
        done();
      },
    });
    const log = createLogger({ level: 'info', format: 'pretty' }, sink);
    log.info({ source: `rtsp://u:${MARK}8@cam/x` }, `camera gate: rtspsrc user-pw=${MARK}9 ! appsink`);
    log.flush();
    assert.match(out, /rtsp:\/\/\[redacted\]@cam\/x/);
    assert.equal(out.indexOf(MARK), -1, out);
  });
});
