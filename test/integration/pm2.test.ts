/**
 * The daemon under pm2 with ecosystem.config.cjs (fork mode), in a private PM2_HOME:
 * starts, publishes `online`, stops with `offline`; pm2's own daemon is always killed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { MODEL_DATA, writeKioskConfig } from '../helpers/kiosk-child.js';
import { collect, type Mosquitto, needsMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { needsSharedData, repoRoot } from '../helpers/paths.js';

const PM2 = path.join(repoRoot, 'node_modules/pm2/bin/pm2');
const ECOSYSTEM = path.join(repoRoot, 'ecosystem.config.cjs');

describe('pm2', { skip: needsMosquitto() || needsSharedData(MODEL_DATA) }, () => {
  const pm2Home = mkdtempSync(path.join(tmpdir(), 'fghv-pm2-'));
  let broker: Mosquitto | undefined;
  const pm2 = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [PM2, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, PM2_HOME: pm2Home, ...env },
    });

  after(async () => {
    pm2(['kill']);
    rmSync(pm2Home, { recursive: true, force: true });
    await broker?.stop();
  });

  it('starts the daemon from the ecosystem file and stops it cleanly', async () => {
    broker = await startMosquitto();
    const deviceId = 'pm2-kiosk';
    const { file } = writeKioskConfig({ deviceId, brokerUrl: broker.url });
    const sub = await collect(broker.url, [`fghv/${deviceId}/availability`]);
    try {
      const start = pm2(['start', ECOSYSTEM], { FGHV_CONFIG: file });
      assert.equal(start.status, 0, start.stderr + start.stdout);
      await sub.waitFor((m) => m.payload === 'online', 90_000);
      const list = JSON.parse(pm2(['jlist']).stdout) as {
        name: string;
        pm2_env: { status: string; exec_mode: string };
      }[];
      const app = list.find((a) => a.name === 'fghv-kiosk');
      assert.equal(app?.pm2_env.status, 'online');
      assert.equal(app?.pm2_env.exec_mode, 'fork_mode');
      const stop = pm2(['stop', 'fghv-kiosk']);
      assert.equal(stop.status, 0, stop.stderr);
      await sub.waitFor((m) => m.payload === 'offline', 20_000);
    } finally {
      await sub.close();
    }
  });
});
