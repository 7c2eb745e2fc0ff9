/**
 * The fleet console against a real mosquitto and a simulated fleet (test/helpers/fleet-sim.ts:
 * one MQTT connection per device, signed decisions, health, availability with a last will),
 * rendered in headless Debian Chromium. FLEET_TEST_DEVICES sets the fleet size (default 1000).
 * An attacker on the broker publishes a forged and an unsigned decision on two devices' topics.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectAsync } from 'mqtt';
import { type BrowserContext, chromium } from 'playwright-core';
import type { FleetSnapshot } from '../../daemon/cli/fleet/state.js';
import { FleetConsole } from '../../daemon/cli/fleet.js';
import { buildDecisionPayload } from '../../daemon/contract/payloads.js';
import { DecisionSigner } from '../../daemon/contract/signing/keys.js';
import { DECIDED_BY, sessionDecision } from '../helpers/decision-input.js';
import { type SimFleet, startSimFleet } from '../helpers/fleet-sim.js';
import { type Mosquitto, needsMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { until } from '../helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const N = Number(process.env.FLEET_TEST_DEVICES ?? 1000);
const skip =
  needsMosquitto() || (existsSync(CHROMIUM) ? false : `needs ${CHROMIUM} (apt-get install chromium)`);

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe(`fleet console with ${N} simulated devices`, { skip, timeout: 300_000 }, () => {
  let broker: Mosquitto;
  let fleet: SimFleet;
  let console_: FleetConsole;
  let context: BrowserContext | null = null;
  const api = async (): Promise<FleetSnapshot> => JSON.parse((await get(`${console_.url}api/fleet`)).body);
  const dev = (snap: FleetSnapshot, i: number) =>
    snap.devices.find((d) => d.device_id === `sim-${String(i).padStart(5, '0')}`);

  before(async () => {
    broker = await startMosquitto();
    console_ = await FleetConsole.start({
      brokerUrl: broker.url,
      prefix: 'fghv',
      host: '127.0.0.1',
      port: 0,
      tokenFile: null,
      pinnedKeysFile: null,
      connections: 2,
    });
    const t0 = Date.now();
    fleet = await startSimFleet({
      urls: [broker.url],
      n: N,
      decisionEveryMs: 5000,
      healthEveryMs: 5000,
      // Devices 0 and 1 decide nothing themselves: an attacker writes their decision topics.
      quiet: (i) => i < 2,
      infoOf: (i, info) =>
        i === 2
          ? { ...info, model: info.model ? { ...info.model, purpose: 'demo' } : null }
          : i === 3
            ? { ...info, threshold_overrides: { p_real_min: 0.3 } }
            : info,
    });
    process.stdout.write(`fleet: ${N} simulated devices connected in ${Date.now() - t0} ms\n`);
  });

  after(async () => {
    await context?.close();
    await fleet?.close();
    await console_?.close();
    await broker?.stop();
  });

  it('lists every device online with its last decision verified, and flags what is wrong', async () => {
    await until(() => fleet.sent.decisions >= N - 2, 30_000, 'one decision per device');
    // Forged (signed with another key) and unsigned decisions published by an attacker.
    const attacker = await connectAsync(broker.url, { protocolVersion: 5, clientId: 'attacker' });
    const forger = DecisionSigner.fromKey(generateKeyPairSync('ed25519').privateKey);
    const forged = (id: string) =>
      buildDecisionPayload(sessionDecision(), DECIDED_BY, {
        deviceId: id,
        seq: { next: () => 1_000_000 },
        expiryS: 10,
      });
    await until(() => fleet.sent.decisions >= 2 * (N - 2), 30_000, 'two decisions per device');
    await attacker.publishAsync(
      'fghv/sim-00000/front/decision',
      JSON.stringify(forger.sign(forged('sim-00000'))),
      {
        qos: 1,
      },
    );
    await attacker.publishAsync('fghv/sim-00001/front/decision', JSON.stringify(forged('sim-00001')), {
      qos: 1,
    });
    await attacker.endAsync();

    let snap = await api();
    const t1 = Date.now();
    while (Date.now() - t1 < 30_000 && !(dev(snap, 1)?.last_decision?.problem === 'missing_signature')) {
      await new Promise((r) => setTimeout(r, 200));
      snap = await api();
    }
    assert.equal(snap.totals.devices, N);
    assert.equal(snap.totals.online, N);
    assert.deepEqual(
      [dev(snap, 0)?.last_decision?.verified, dev(snap, 0)?.last_decision?.problem],
      [false, 'bad_signature'],
    );
    assert.equal(dev(snap, 1)?.last_decision?.problem, 'missing_signature', JSON.stringify(dev(snap, 1)));
    for (const i of [0, 1]) {
      assert.equal(dev(snap, i)?.unverified_total, 1);
      assert.ok(dev(snap, i)?.flags.includes('unverified_decision'));
    }
    assert.ok(dev(snap, 2)?.flags.includes('model_not_production'));
    assert.deepEqual(dev(snap, 3)?.loosened_thresholds, ['p_real_min']);
    const genuine = snap.devices.slice(4);
    assert.deepEqual(
      genuine.filter((d) => !d.last_decision?.verified).map((d) => d.device_id),
      [],
      'every genuine device: last decision verified',
    );
    assert.deepEqual(
      genuine.filter((d) => d.flags.length).map((d) => [d.device_id, d.flags]),
      [],
    );
    assert.equal(snap.totals.flagged, 4);
    assert.ok(genuine.every((d) => d.cameras[0]?.state === 'running' && d.fps?.capture === 15));

    // Update latency: a decision published now, until /api/fleet shows it.
    const t0 = Date.now();
    const seq = fleet.decide(10);
    while ((dev(await api(), 10)?.last_decision?.seq ?? 0) < seq) {
      assert.ok(Date.now() - t0 < 10_000, 'the console shows a new decision within 10 s');
    }
    process.stdout.write(
      `fleet: /api/fleet showed a new decision ${Date.now() - t0} ms after it was published\n`,
    );
  });

  it('a device that dies is shown offline (its last will)', async () => {
    const d = fleet.devices[5];
    assert.ok(d);
    d.client.stream.destroy(); // no DISCONNECT: the broker publishes the will
    const t0 = Date.now();
    let offline = false;
    while (!offline && Date.now() - t0 < 10_000) offline = dev(await api(), 5)?.online === false;
    assert.ok(offline, 'offline within 10 s');
  });

  it('renders in headless Chromium (screenshot in the test output)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fghv-fleet-'));
    context = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
      ],
    });
    const page = await context.newPage();
    await page.goto(console_.url);
    await page.waitForFunction((n) => document.getElementById('devices')?.textContent === String(n), N, {
      timeout: 30_000,
    });
    assert.equal(await page.locator('#rows tr').count(), N);
    const forgedRow = page.locator('tr[data-device="sim-00000"]');
    assert.match((await forgedRow.locator('td.sig').textContent()) ?? '', /bad_signature/);
    assert.match((await forgedRow.textContent()) ?? '', /unverified_decision/);
    assert.equal(await forgedRow.getAttribute('class'), 'flagged');
    assert.match((await page.locator('tr[data-device="sim-00004"] td.sig').textContent()) ?? '', /verified/);
    await page.check('#only-flagged');
    await page.waitForFunction(() => document.querySelectorAll('#rows tr').length < 10, null, {
      timeout: 10_000,
    });
    await page.uncheck('#only-flagged');
    await page.waitForFunction((n) => document.querySelectorAll('#rows tr').length === n, N, {
      timeout: 10_000,
    });
    const shot = path.join(dir, 'fleet-console.png');
    writeFileSync(shot, await page.screenshot());
    process.stdout.write(`fleet: screenshot ${shot}\n`);
  });

  it('answers only to a loopback Host, and refuses to listen beyond loopback without a token', async () => {
    assert.equal((await get(`${console_.url}api/fleet`, { host: 'evil.example' })).status, 421);
    await assert.rejects(
      FleetConsole.start({
        brokerUrl: broker.url,
        prefix: 'fghv',
        host: '0.0.0.0',
        port: 0,
        tokenFile: null,
        pinnedKeysFile: null,
      }),
      /KIOSK_E_STATUS_AUTH_CONFIG|not a loopback address/,
    );
    const tokenFile = path.join(mkdtempSync(path.join(tmpdir(), 'fghv-fleet-token-')), 'token');
    writeFileSync(tokenFile, 'a-long-enough-fleet-token\n');
    const guarded = await FleetConsole.start({
      brokerUrl: broker.url,
      prefix: 'fghv',
      host: '127.0.0.1',
      port: 0,
      tokenFile,
      pinnedKeysFile: null,
      connections: 1,
    });
    try {
      assert.equal((await get(`${guarded.url}api/fleet`)).status, 401);
      const ok = await get(`${guarded.url}api/fleet`, { authorization: 'Bearer a-long-enough-fleet-token' });
      assert.equal(ok.status, 200);
    } finally {
      await guarded.close();
    }
  });
});
