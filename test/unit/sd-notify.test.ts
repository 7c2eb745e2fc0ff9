import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../core/log.js';
import {
  formatNotification,
  SdNotifier,
  socketAddress,
  watchdogIntervalMs,
} from '../../daemon/supervision/sd-notify.js';
import { Supervisor } from '../../daemon/supervision/supervisor.js';
import { listenNotify } from '../helpers/notify-socket.js';

const config = {
  supervision: { stall_ms: 1000, stop_deadline_ms: 10_000 },
  liveness: { providers: ['cpu'] as ('cpu' | 'cuda' | 'tensorrt')[] },
} as const;

describe('sd_notify pure parts', () => {
  it('formats fields as KEY=value lines, newlines in values flattened', () => {
    assert.equal(formatNotification({ READY: 1, STATUS: 'running' }), 'READY=1\nSTATUS=running');
    assert.equal(formatNotification({ STATUS: 'a\nb' }), 'STATUS=a b');
  });

  it('pings at half of WATCHDOG_USEC, only for this pid', () => {
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42), 15_000);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42), 15_000);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, 42), null);
    assert.equal(watchdogIntervalMs({}, 42), null);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: 'zero' }, 42), null);
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 42), null);
  });

  it('maps an abstract socket name to a leading NUL', () => {
    assert.equal(socketAddress('@/org/systemd/notify'), '\0/org/systemd/notify');
    assert.equal(socketAddress('/run/systemd/notify'), '/run/systemd/notify');
  });

  it('does nothing without NOTIFY_SOCKET', () => {
    const n = new SdNotifier({});
    assert.equal(n.enabled, false);
    n.send({ READY: 1 });
    n.close();
    assert.equal(n.failures, 0);
  });
});

describe('sd_notify over a real unix datagram socket', () => {
  it('delivers READY, WATCHDOG and STOPPING datagrams', async () => {
    const sock = listenNotify();
    const n = new SdNotifier({ NOTIFY_SOCKET: sock.path });
    try {
      n.send({ READY: 1, STATUS: 'running' });
      n.send({ WATCHDOG: 1 });
      n.send({ STOPPING: 1 });
      await sock.waitFor((m) => m.fields.STOPPING === '1', 2000);
      assert.deepEqual(
        sock.received.map((m) => m.fields),
        [{ READY: '1', STATUS: 'running' }, { WATCHDOG: '1' }, { STOPPING: '1' }],
      );
      assert.equal(n.failures, 0);
    } finally {
      n.close();
      sock.close();
    }
  });

  it('the supervisor pings only while the daemon is alive, and stops at STOPPING', async () => {
    const sock = listenNotify();
    let alive = true;
    const env = { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '100000' }; // ping every 50 ms
    const sup = new Supervisor({ isAlive: () => alive }, config, silentLogger(), new SdNotifier(env), env);
    try {
      sup.markReady('running');
      await sock.waitFor((m) => m.fields.READY === '1', 2000);
      await new Promise((r) => setTimeout(r, 300));
      const pingsAlive = sock.received.filter((m) => m.fields.WATCHDOG === '1').length;
      assert.ok(pingsAlive >= 3, `expected pings while alive, got ${pingsAlive}`);
      alive = false;
      await sock.waitFor((m) => /^stalled/.test(m.fields.STATUS ?? ''), 2000);
      const atStall = sock.received.filter((m) => m.fields.WATCHDOG === '1').length;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(
        sock.received.filter((m) => m.fields.WATCHDOG === '1').length,
        atStall,
        'pings while stalled',
      );
      alive = true;
      await new Promise((r) => setTimeout(r, 300));
      const resumed = sock.received.filter((m) => m.fields.WATCHDOG === '1').length;
      assert.ok(resumed > atStall, 'pings resume after progress');
      sup.markStopping('SIGTERM');
      await sock.waitFor((m) => m.fields.STOPPING === '1', 2000);
      const atStop = sock.received.filter((m) => m.fields.WATCHDOG === '1').length;
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(sock.received.filter((m) => m.fields.WATCHDOG === '1').length, atStop);
    } finally {
      sup.close();
      sock.close();
    }
  });
});
