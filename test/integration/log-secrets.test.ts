/**
 * No secret reaches the log: the daemon runs at debug level (JSON, as under systemd) with a
 * broker password from password_file and from FGHV_MQTT_PASSWORD, TLS key material (when the
 * schema has mqtt.tls) and a signing key in the state dir; none of them appears in its output.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { MODEL_DATA, spawnKiosk, writeKioskConfig } from '../helpers/kiosk-child.js';
import { collect, type Mosquitto, needsMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { needsSharedData } from '../helpers/paths.js';

const hasTls = 'tls' in (configSchema.parse({}).mqtt as Record<string, unknown>);

function pemBody(pem: string): string[] {
  // Each base64 line of the PEM body is a secret fragment on its own.
  return pem.split('\n').filter((l) => l && !l.startsWith('-----'));
}

describe('secrets never reach the log', { skip: needsMosquitto() || needsSharedData(MODEL_DATA) }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  async function runAndCollect(
    deviceId: string,
    extra: Record<string, unknown>,
    env: NodeJS.ProcessEnv,
    prepare?: (dir: string, stateDir: string) => void,
  ) {
    const { file, dir, stateDir } = writeKioskConfig({ deviceId, brokerUrl: broker.url, extra });
    prepare?.(dir, stateDir);
    const sub = await collect(broker.url, [`fghv/${deviceId}/#`]);
    const kiosk = spawnKiosk(['run', '--config', file], { FGHV_LOG__LEVEL: 'debug', ...env });
    try {
      await sub.waitFor((m) => m.payload === 'online', 90_000);
      await sub.waitFor((m) => m.topic.endsWith('/health'), 10_000);
      kiosk.child.kill('SIGTERM');
      assert.equal((await kiosk.waitExit(15_000)).code, 0, kiosk.output().slice(-2000));
      return kiosk.output();
    } finally {
      kiosk.kill();
      await sub.close();
    }
  }

  it('password_file, TLS key and signing key', async () => {
    const password = 'pw-file-S3cr3t-7f1c9a';
    const tlsKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    }) as string;
    const signingKey = generateKeyPairSync('ed25519').privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    }) as string;
    let keyPath = '';
    const extra = (dir: string) => ({
      mqtt: {
        url: broker.url,
        embedded_port: 0,
        health_interval_s: 1,
        username: 'kiosk',
        password_file: path.join(dir, 'mqtt-password'),
      },
    });
    // The config needs the temp dir, so write it in two steps.
    const { dir } = writeKioskConfig();
    keyPath = path.join(dir, 'client-key-secret-path.pem');
    writeFileSync(path.join(dir, 'mqtt-password'), `${password}\n`);
    writeFileSync(keyPath, tlsKey);
    const mqtt = extra(dir).mqtt as Record<string, unknown>;
    if (hasTls) mqtt.tls = { key_file: keyPath };
    const out = await runAndCollect('secrets-file', { mqtt }, {}, (_d, stateDir) => {
      mkdirSync(stateDir, { recursive: true });
      writeFileSync(path.join(stateDir, 'decision-key.pem'), signingKey, { mode: 0o600 });
    });
    assert.match(out, /"env":\["FGHV_LOG__LEVEL"\]/, 'the run must be at debug level');
    assert.ok(!out.includes(password), 'the broker password from password_file was logged');
    for (const frag of [...pemBody(tlsKey), ...pemBody(signingKey)])
      assert.ok(!out.includes(frag), 'key material was logged');
    assert.ok(!out.includes('PRIVATE KEY'), 'a PEM private key was logged');
    if (hasTls) assert.ok(!out.includes(keyPath), 'the TLS key path was logged');
  });

  it('FGHV_MQTT_PASSWORD', async () => {
    const password = 'pw-env-S3cr3t-0b2d4e';
    const out = await runAndCollect(
      'secrets-env',
      { mqtt: { url: broker.url, embedded_port: 0, health_interval_s: 1, username: 'kiosk' } },
      { FGHV_MQTT_PASSWORD: password },
    );
    assert.match(out, /"env":\["FGHV_LOG__LEVEL"\]/);
    assert.ok(!out.includes(password), 'the broker password from FGHV_MQTT_PASSWORD was logged');
  });
});
