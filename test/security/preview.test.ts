/**
 * Issue 24, finding 6: four preview connections that never read held all preview slots, and
 * every later viewer got 503 for as long as they stayed open. A viewer that has not drained
 * for PREVIEW_STALL_TIMEOUT_MS is now disconnected, and since a stall shows only once the
 * kernel's socket buffers are full (minutes), a full hub gives a new viewer the slot of the
 * viewer stalled longest, else connected longest, once that one had PREVIEW_FAIR_SHARE_MS. On
 * the hub with a fake clock (at each limit and just under it), then on the real daemon's
 * status page with four raw sockets that send the request and never read.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { cv } from '../../core/cv.js';
import type { FrameResult } from '../../daemon/pipeline/pipeline.js';
import {
  PREVIEW_FAIR_SHARE_MS,
  PREVIEW_STALL_TIMEOUT_MS,
  type PreviewClient,
  PreviewHub,
} from '../../daemon/status/preview.js';
import { skipDaemon, startDaemon } from '../helpers/attack-kit.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { sleep } from '../helpers/wait.js';

function fakeClient(stalled: boolean) {
  const c = {
    writes: 0,
    writableNeedDrain: stalled,
    destroyed: false,
    write: () => {
      c.writes++;
      return true;
    },
    end: () => undefined,
    destroy: () => {
      c.destroyed = true;
    },
  };
  return c;
}

describe('finding 6: preview viewers that do not read are dropped', () => {
  test('on the hub: dropped at the timeout, kept just under it, and a viewer that drains in time stays', async () => {
    let t = 0;
    const dropped: PreviewClient[] = [];
    const hub = new PreviewHub({
      fps: 5,
      maxClients: 4,
      now: () => t,
      render: async () => Buffer.from('jpeg'),
      onStalled: (c) => dropped.push(c),
    });
    const stalled = [0, 1, 2, 3].map(() => fakeClient(true));
    for (const c of stalled) assert.equal(hub.add(c), true);
    assert.equal(hub.add(fakeClient(false)), false, 'all four slots held');
    const mat = new cv.Mat(4, 4, cv.CV_8UC3, [0, 0, 0]);
    const frame = { frame: { mat }, faces: [] } as unknown as FrameResult;
    hub.offer(frame); // first seen stalled at t=0
    // One of them drains just before the limit: it stays.
    t = PREVIEW_STALL_TIMEOUT_MS - 1;
    hub.offer(frame);
    (stalled[0] as { writableNeedDrain: boolean }).writableNeedDrain = false;
    t = PREVIEW_STALL_TIMEOUT_MS;
    hub.offer(frame);
    await new Promise((r) => setImmediate(r));
    assert.equal(dropped.length, 3);
    assert.ok(stalled.slice(1).every((c) => c.destroyed));
    assert.equal(stalled[0]?.destroyed, false);
    assert.equal(hub.clientCount, 1);
    assert.equal(hub.droppedStalled, 3);
    const fresh = fakeClient(false);
    assert.equal(hub.add(fresh), true, 'a new viewer gets a slot');
    await hub.close();
    mat.release();
  });

  test('on the hub: with every slot taken, a new viewer gets the slot of the oldest once it had its fair share', async () => {
    let t = 0;
    const hub = new PreviewHub({ fps: 5, maxClients: 2, now: () => t, render: async () => Buffer.from('j') });
    const first = fakeClient(false);
    const second = fakeClient(false);
    hub.add(first);
    t = 1000;
    hub.add(second);
    t = PREVIEW_FAIR_SHARE_MS - 1;
    assert.equal(hub.add(fakeClient(false)), false, 'nobody has had a fair share yet');
    t = PREVIEW_FAIR_SHARE_MS;
    const third = fakeClient(false);
    assert.equal(hub.add(third), true);
    assert.equal(first.destroyed, true, 'the oldest left');
    assert.equal(second.destroyed, false);
    assert.equal(hub.clientCount, 2);
    await hub.close();
  });
});

describe('finding 6 on the real status page', { skip: skipDaemon, timeout: 300_000 }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  test('four connections that never read are dropped; a fifth viewer then gets the stream', async (t) => {
    const id = 'sec-preview';
    const d = await startDaemon(id, broker.url, { status: { enabled: true, port: 0 } });
    t.after(() => d.kiosk.kill());
    const url = /status page listening on (http:\/\/[^\s"]+)/.exec(d.kiosk.output())?.[1];
    assert.ok(url, 'status URL in the log');
    const { port } = new URL(url);
    const hogs: net.Socket[] = [];
    t.after(() => {
      for (const s of hogs) s.destroy();
    });
    for (let i = 0; i < 4; i++) {
      const s = net.connect(Number(port), '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      s.write('GET /preview.mjpeg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      s.pause(); // never reads
      hogs.push(s);
    }
    await sleep(1000);
    const status = async () => {
      const ac = new AbortController();
      const r = await fetch(`${url.replace(/\/$/, '')}/preview.mjpeg`, { signal: ac.signal });
      ac.abort();
      return r.status;
    };
    assert.equal(await status(), 503, 'the four hogs hold every slot');
    let got = 503;
    const t0 = Date.now();
    while (got === 503 && Date.now() - t0 < PREVIEW_FAIR_SHARE_MS + 60_000) {
      await sleep(2000);
      got = await status().catch(() => 0);
    }
    assert.equal(got, 200, 'a viewer gets the preview once the hogs are dropped');
    assert.match(d.kiosk.output(), /preview viewer disconnected/);
  });
});
