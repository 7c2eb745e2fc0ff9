/**
 * TLS, client certificates, passwords and ACLs against a real mosquitto: the CA and the
 * certificates are made here with openssl. The link connects with CA + client certificate,
 * is refused without a certificate or with the wrong CA, and the ACL keeps a device inside
 * its own topic tree; a password file works on the plain listener and a wrong one is refused.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connectAsync } from 'mqtt';
import { ContractLink, type ContractLinkOptions } from '../../daemon/contract/contract-link.js';
import { needsMosquitto, testLinkOptions } from '../helpers/mosquitto.js';
import {
  type Certs,
  makeCerts,
  needsOpenssl,
  startBroker,
  type TestBroker,
} from '../helpers/mqtt-contract-broker.js';
import { tempDir } from '../helpers/temp.js';
import { sleep, until } from '../helpers/wait.js';

const skip = needsMosquitto() || needsOpenssl();

const linkOptions = (
  url: string,
  deviceId: string,
  extra: Partial<ContractLinkOptions>,
): ContractLinkOptions =>
  testLinkOptions(url, deviceId, { reconnectMinMs: 100, connectTimeoutMs: 2000, ...extra });

describe('MQTT over TLS with client certificates, passwords and an ACL', { skip, timeout: 60_000 }, () => {
  let broker: TestBroker;
  let certs: Certs;
  let tlsPort: number;
  let observer: { cert: string; key: string };
  let device: { cert: string; key: string };
  before(async () => {
    certs = makeCerts();
    observer = certs.client('observer');
    device = certs.client('kiosk-tls');
    const dir = tempDir('tls-conf');
    // Identity = certificate CN on the TLS listener, username on the plain one.
    writeFileSync(path.join(dir, 'acl'), 'user observer\ntopic read fghv/#\n\npattern readwrite fghv/%u/#\n');
    const pw = path.join(dir, 'passwd');
    writeFileSync(pw, '');
    execFileSync('/usr/bin/mosquitto_passwd', ['-b', pw, 'kiosk-pw', 's3cret']);
    execFileSync('chmod', ['-R', 'a+rX', dir, certs.dir]);
    const { freePort } = await import('../helpers/mosquitto.js');
    tlsPort = await freePort();
    broker = await startBroker((port) =>
      [
        'per_listener_settings true',
        `listener ${port} 127.0.0.1`,
        'allow_anonymous false',
        `password_file ${pw}`,
        `acl_file ${path.join(dir, 'acl')}`,
        `listener ${tlsPort} 127.0.0.1`,
        `cafile ${certs.ca}`,
        `certfile ${certs.serverCert}`,
        `keyfile ${certs.serverKey}`,
        'require_certificate true',
        'use_identity_as_username true',
        `acl_file ${path.join(dir, 'acl')}`,
        'persistence false',
      ].join('\n'),
    );
  });
  after(async () => {
    await broker?.stop();
  });

  const tlsUrl = () => `mqtts://127.0.0.1:${tlsPort}`;
  const observe = async () => {
    const c = await connectAsync(tlsUrl(), {
      ca: readFileSync(certs.ca),
      cert: readFileSync(observer.cert),
      key: readFileSync(observer.key),
      protocolVersion: 5,
      reconnectPeriod: 0,
      clientId: `obs-${Math.random()}`,
    });
    const msgs: { topic: string; payload: string }[] = [];
    c.on('message', (topic, payload) => msgs.push({ topic, payload: payload.toString() }));
    await c.subscribeAsync('fghv/#', { qos: 1 });
    return { c, msgs };
  };

  test('CA + client certificate: connects, publishes availability and decisions; ACL confines it to its device', async (t) => {
    const obs = await observe();
    t.after(() => obs.c.endAsync(true));
    const tls = {
      ca: readFileSync(certs.ca),
      cert: readFileSync(device.cert),
      key: readFileSync(device.key),
      rejectUnauthorized: true,
    };
    const link = new ContractLink(linkOptions(tlsUrl(), 'kiosk-tls', { tls }));
    t.after(() => link.close());
    link.start();
    assert.equal(await link.waitConnected(5000), true);
    await link.publish({ topic: 'fghv/kiosk-tls/audit', payload: '{"x":1}', qos: 1, retain: false });
    await until(() => obs.msgs.some((m) => m.topic === 'fghv/kiosk-tls/audit'), 3000, 'own topic delivered');
    assert.ok(obs.msgs.some((m) => m.topic === 'fghv/kiosk-tls/availability' && m.payload === 'online'));

    // The same certificate may not speak for another device: mosquitto drops the publish (MQTT 5: not authorised).
    const other = new ContractLink(linkOptions(tlsUrl(), 'other-kiosk', { tls, clientId: 'kiosk-tls-2' }));
    t.after(() => other.close());
    other.start();
    assert.equal(await other.waitConnected(5000), true);
    await other.publish({ topic: 'fghv/other-kiosk/audit', payload: '{"forged":1}', qos: 1, retain: false });
    await sleep(300);
    assert.equal(obs.msgs.filter((m) => m.topic.startsWith('fghv/other-kiosk/')).length, 0);
  });

  test('refused without a client certificate and with the wrong CA', async (t) => {
    const noCert = new ContractLink(
      linkOptions(tlsUrl(), 'kiosk-tls', { tls: { ca: readFileSync(certs.ca), rejectUnauthorized: true } }),
    );
    t.after(() => noCert.close());
    noCert.start();
    const wrongCa = new ContractLink(
      linkOptions(tlsUrl(), 'kiosk-tls', {
        clientId: 'wrong-ca',
        tls: {
          ca: readFileSync(certs.otherCa),
          cert: readFileSync(device.cert),
          key: readFileSync(device.key),
          rejectUnauthorized: true,
        },
      }),
    );
    t.after(() => wrongCa.close());
    wrongCa.start();
    assert.equal(await noCert.waitConnected(1500), false);
    assert.equal(await wrongCa.waitConnected(100), false);
  });

  test('username + password on the plain listener; a wrong password is refused', async (t) => {
    const ok = new ContractLink(
      linkOptions(broker.url, 'kiosk-pw', { username: 'kiosk-pw', password: 's3cret' }),
    );
    t.after(() => ok.close());
    ok.start();
    assert.equal(await ok.waitConnected(3000), true);
    const bad = new ContractLink(
      linkOptions(broker.url, 'kiosk-pw', { clientId: 'bad', username: 'kiosk-pw', password: 'nope' }),
    );
    t.after(() => bad.close());
    bad.start();
    assert.equal(await bad.waitConnected(1000), false);
  });
});
