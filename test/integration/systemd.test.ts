/**
 * The systemd unit passes `systemd-analyze verify`, and the real daemon speaks sd_notify to a
 * datagram socket bound here: STATUS while loading, READY after warm-up, WATCHDOG at
 * WATCHDOG_USEC/2 while frames flow, no WATCHDOG when the pipeline stalls, STOPPING on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { MODEL_DATA, spawnKiosk, writeKioskConfig } from '../helpers/kiosk-child.js';
import { listenNotify } from '../helpers/notify-socket.js';
import { needsSharedData, repoRoot } from '../helpers/paths.js';

const ANALYZE = '/usr/bin/systemd-analyze';
const UNIT = path.join(repoRoot, 'systemd/fghv-kiosk.service');

function verify(unitText: string) {
  const dir = mkdtempSync(path.join(tmpdir(), 'fghv-unit-'));
  const file = path.join(dir, 'fghv-kiosk.service');
  writeFileSync(file, unitText);
  return spawnSync(ANALYZE, ['verify', file], { encoding: 'utf8', timeout: 30_000 });
}

describe('systemd unit', {
  skip: existsSync(ANALYZE) ? false : `needs ${ANALYZE} (apt-get install systemd), which is absent`,
}, () => {
  const text = readFileSync(UNIT, 'utf8').replaceAll('/opt/fghv-kiosk', repoRoot);

  it('passes systemd-analyze verify without a warning', () => {
    const r = verify(text);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', r.stderr);
  });

  it('verify is a real check: a typo and a missing program are reported', () => {
    const typo = verify(text.replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
    assert.match(typo.stderr, /Unknown key/);
    const missing = verify(text.replace('ExecStart=/usr/bin/node', 'ExecStart=/nonexistent/node'));
    assert.notEqual(missing.status, 0);
  });

  it('has the supervision and hardening the issue asks for', () => {
    for (const line of [
      'Type=notify',
      'WatchdogSec=30s',
      'Restart=on-failure',
      'User=fghv-kiosk',
      'StateDirectory=fghv-kiosk',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'PrivateTmp=yes',
      'DevicePolicy=closed',
      'DeviceAllow=char-video4linux rw',
      'CapabilityBoundingSet=',
    ])
      assert.ok(text.split('\n').includes(line), `missing ${line}`);
  });

  it('install.sh --dry-run prints what it would do and changes nothing', () => {
    const r = spawnSync(
      path.join(repoRoot, 'systemd/install.sh'),
      ['--dry-run', '--prefix', '/opt/fghv-kiosk-test'],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    // The prefix has no build: the script refuses before acting.
    assert.equal(r.status, 1);
    assert.match(r.stderr, /dist is missing/);
    const ok = spawnSync(path.join(repoRoot, 'systemd/install.sh'), ['--dry-run'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /install: .*\/etc\/systemd\/system\/fghv-kiosk\.service/);
    assert.match(ok.stdout, /useradd --system .*fghv-kiosk|user fghv-kiosk exists/);
  });
});

describe('sd_notify from the running daemon', { skip: needsSharedData(MODEL_DATA) }, () => {
  it('READY after warm-up, WATCHDOG while frames flow, STOPPING on SIGTERM', async () => {
    const sock = listenNotify();
    const { file } = writeKioskConfig({ fakeFps: 10 });
    const kiosk = spawnKiosk(['run', '--config', file], {
      NOTIFY_SOCKET: sock.path,
      WATCHDOG_USEC: '400000',
    });
    try {
      const status = await sock.waitFor((m) => /^starting/.test(m.fields.STATUS ?? ''), 60_000);
      const ready = await sock.waitFor((m) => m.fields.READY === '1', 90_000);
      assert.ok(status.at <= ready.at);
      assert.match(kiosk.output(), /models loaded and warmed up/);
      assert.match(ready.fields.STATUS ?? '', /^running: minifasnet-v2 on cpu/);
      await new Promise((r) => setTimeout(r, 1500));
      const pings = sock.received.filter((m) => m.fields.WATCHDOG === '1' && m.at > ready.at).length;
      // 200 ms interval over 1.5 s: about 7; allow for a slow CI machine.
      assert.ok(pings >= 3, `expected WATCHDOG pings, got ${pings}`);
      kiosk.child.kill('SIGTERM');
      await sock.waitFor((m) => m.fields.STOPPING === '1', 10_000);
      const { code } = await kiosk.waitExit(15_000);
      assert.equal(code, 0, kiosk.output().slice(-2000));
    } finally {
      kiosk.kill();
      sock.close();
    }
  });

  it('a stalled pipeline stops the WATCHDOG pings', async () => {
    const sock = listenNotify();
    // One frame every 1000 s: the camera is open, the pipeline is running and never progresses.
    const { file } = writeKioskConfig({
      fakeFps: 0.001,
      extra: { supervision: { stall_ms: 1000, stop_deadline_ms: 5000 } },
    });
    const kiosk = spawnKiosk(['run', '--config', file], {
      NOTIFY_SOCKET: sock.path,
      WATCHDOG_USEC: '400000',
    });
    try {
      await sock.waitFor((m) => m.fields.READY === '1', 90_000);
      const stalled = await sock.waitFor((m) => /^stalled/.test(m.fields.STATUS ?? ''), 10_000);
      await new Promise((r) => setTimeout(r, 1500));
      const after = sock.received.filter((m) => m.fields.WATCHDOG === '1' && m.at > stalled.at).length;
      assert.equal(after, 0, 'WATCHDOG sent while the pipeline was stalled');
      assert.match(kiosk.output(), /watchdog pings stop/);
      kiosk.child.kill('SIGTERM');
      assert.equal((await kiosk.waitExit(15_000)).code, 0);
    } finally {
      kiosk.kill();
      sock.close();
    }
  });
});
