import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { envOverrides, loadConfig, packageRoot, parseConfigText, validateConfig } from '../../config/load.js';
import { isKioskError } from '../../core/errors.js';

function tmpFile(name: string, text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'fghv-config-'));
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('config', () => {
  it('the embedded defaults are the demo: sample video, demo model, embedded broker', () => {
    const { config, file } = loadConfig(null, {});
    assert.equal(file, null);
    assert.equal(config.mqtt.url, null);
    assert.equal(config.mqtt.embedded_port, 1883);
    assert.equal(config.cameras.length, 1);
    assert.equal(config.cameras[0]?.kind, 'file');
    assert.equal(config.cameras[0]?.source, path.join(packageRoot, 'media/demo-kiosk.mp4'));
    assert.equal(config.liveness.manifest, path.join(packageRoot, 'models/fghv-demo/manifest.json'));
    assert.deepEqual(config.liveness.providers, ['tensorrt', 'cuda', 'cpu']);
  });

  it('lists every error with its path, including unknown keys and wrong types', () => {
    const file = path.join(packageRoot, 'config/examples/invalid.yaml');
    assert.throws(
      () => loadConfig(file, {}),
      (e: unknown) => {
        assert.ok(isKioskError(e, 'KIOSK_E_CONFIG_INVALID'));
        const issues = ((e.details?.issues ?? []) as string[]).join('\n');
        for (const p of [
          'mqtt: ',
          'mqtt.decision_expiry_s',
          'cameras[0].id',
          'cameras[0].kind',
          'decision.frames',
        ]) {
          assert.ok(issues.includes(p), `missing ${p} in:\n${issues}`);
        }
        assert.match(issues, /prefx/);
        return true;
      },
    );
  });

  it('relative paths in a file are relative to the file; absolute ones are kept', () => {
    const file = tmpFile(
      'c.yaml',
      'mqtt:\n  tls:\n    ca_file: certs/ca.pem\nliveness:\n  manifest: m/x.json\ncameras:\n  - source: v.mp4\n  - id: b\n    kind: v4l2\n    source: /dev/video0\n',
    );
    const { config } = loadConfig(file, {});
    assert.equal(config.liveness.manifest, path.join(path.dirname(file), 'm/x.json'));
    assert.equal(config.cameras[0]?.source, path.join(path.dirname(file), 'v.mp4'));
    assert.equal(config.cameras[1]?.source, '/dev/video0');
    assert.equal(config.mqtt.tls.ca_file, path.join(path.dirname(file), 'certs/ca.pem'));
    assert.equal(config.device.state_dir, path.join(packageRoot, '.state'), 'defaults stay package-relative');
  });

  it('environment overrides win over the file, JSON-typed', () => {
    const file = tmpFile('c.yaml', 'mqtt:\n  prefix: site\n');
    const env = {
      FGHV_MQTT__PREFIX: 'other',
      FGHV_MQTT__KEEPALIVE_S: '15',
      FGHV_LOG__LEVEL: 'debug',
      FGHV_MQTT_PASSWORD: 's3cret',
    };
    const { config, envKeys } = loadConfig(file, env);
    assert.equal(config.mqtt.prefix, 'other');
    assert.equal(config.mqtt.keepalive_s, 15);
    assert.equal(config.log.level, 'debug');
    assert.deepEqual(envKeys.sort(), ['FGHV_LOG__LEVEL', 'FGHV_MQTT__KEEPALIVE_S', 'FGHV_MQTT__PREFIX']);
    assert.deepEqual(envOverrides({ FGHV_MQTT_PASSWORD: 'x' }).keys, []);
  });

  it('a bad environment override is reported as such', () => {
    assert.throws(
      () => loadConfig(null, { FGHV_DECISION__FRAMES: '-3' }),
      (e: unknown) =>
        isKioskError(e, 'KIOSK_E_CONFIG_INVALID') &&
        /environment/.test(e.message) &&
        /decision\.frames/.test(e.message),
    );
  });

  it('malformed YAML, a non-mapping document and a missing file have their own codes', () => {
    assert.throws(
      () => parseConfigText('mqtt: [unclosed', 'x'),
      (e: unknown) => isKioskError(e, 'KIOSK_E_CONFIG_PARSE'),
    );
    assert.throws(
      () => parseConfigText('- a\n- b\n', 'x'),
      (e: unknown) => isKioskError(e, 'KIOSK_E_CONFIG_PARSE'),
    );
    assert.throws(
      () => parseConfigText('a: 1\na: 2\n', 'x'),
      (e: unknown) => isKioskError(e, 'KIOSK_E_CONFIG_PARSE'),
    );
    assert.throws(
      () => loadConfig('/nonexistent/fghv.yaml', {}),
      (e: unknown) => isKioskError(e, 'KIOSK_E_CONFIG_NOT_FOUND'),
    );
  });

  it('duplicate camera ids are refused', () => {
    assert.throws(
      () => validateConfig({ cameras: [{ id: 'a' }, { id: 'a' }] }, 'x'),
      (e: unknown) => isKioskError(e, 'KIOSK_E_CONFIG_INVALID') && /duplicate camera id "a"/.test(e.message),
    );
  });

  it('rules across keys are checked: min_live above frames could never accept', () => {
    assert.throws(
      () => validateConfig({ decision: { frames: 3, min_live: 4 } }, 'x'),
      (e: unknown) => isKioskError(e, 'KIOSK_E_CONFIG_INVALID') && /decision\.min_live/.test(e.message),
    );
    assert.throws(
      () => validateConfig({ quality: { min_brightness: 0.8, max_brightness: 0.5 } }, 'x'),
      (e: unknown) => isKioskError(e, 'KIOSK_E_CONFIG_INVALID') && /min_brightness/.test(e.message),
    );
  });

  it('mqtt.url takes one broker or a failover list; a list never mixes TLS and plain brokers', () => {
    assert.equal(validateConfig({ mqtt: { url: 'mqtt://a:1883' } }, 'x').mqtt.url, 'mqtt://a:1883');
    assert.deepEqual(validateConfig({ mqtt: { url: ['mqtts://a:8883', 'mqtts://b:8883'] } }, 'x').mqtt.url, [
      'mqtts://a:8883',
      'mqtts://b:8883',
    ]);
    assert.throws(
      () => validateConfig({ mqtt: { url: [] } }, 'x'),
      (e: unknown) => isKioskError(e, 'KIOSK_E_CONFIG_INVALID') && /mqtt\.url/.test(e.message),
    );
    assert.throws(
      () => validateConfig({ mqtt: { url: ['mqtts://a:8883', 'mqtt://b:1883'] } }, 'x'),
      (e: unknown) => isKioskError(e, 'KIOSK_E_CONFIG_INVALID') && /mixes TLS/.test(e.message),
    );
  });

  it('every shipped example except invalid.yaml validates', async () => {
    const { readdirSync } = await import('node:fs');
    const dir = path.join(packageRoot, 'config/examples');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml') && n !== 'invalid.yaml')) {
      assert.doesNotThrow(() => loadConfig(path.join(dir, f), {}), f);
    }
  });
});
