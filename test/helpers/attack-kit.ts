/**
 * What the security tests share: the real daemon (CLI child process, fake camera, MiniFASNet
 * on CPU) on a real mosquitto, an attacker's MQTT client that sends requests and waits for
 * their responses, and a fleet key that signs requests the way a fleet manager does.
 */
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { connectAsync, type MqttClient } from 'mqtt';
import { canonicalJson } from '../../daemon/contract/signing/canonical-json.js';
import { rawPublicKey } from '../../daemon/contract/signing/keys.js';
import { MODEL_DATA, spawnKiosk, writeKioskConfig } from './kiosk-child.js';
import { collect, needsMosquitto } from './mosquitto.js';
import { needsSharedData } from './paths.js';

export const skipDaemon = needsMosquitto() || needsSharedData(MODEL_DATA);

export interface Fleet {
  publicKey: string;
  privateKey: KeyObject;
}

export function fleetKey(): Fleet {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { publicKey: rawPublicKey(publicKey), privateKey };
}

/** A request body signed as the fleet signs it: command, device and ts under the signature. */
export function signedBody(
  fleet: Fleet,
  deviceId: string,
  command: string,
  body: Record<string, unknown>,
  ts = new Date(),
): Record<string, unknown> {
  const full = { ...body, command, device_id: deviceId, ts: ts.toISOString() };
  return { ...full, sig: sign(null, Buffer.from(canonicalJson(full)), fleet.privateKey).toString('base64') };
}

export interface Response {
  status: 'ok' | 'error';
  data: unknown;
  error?: { code: string; message: string };
  transaction: unknown;
}

/** An MQTT 5 client on the site broker: no credentials, no key, any client id it likes. */
export async function attacker(url: string, clientId = `attacker-${process.pid}-${Math.random()}`) {
  const c: MqttClient = await connectAsync(url, { protocolVersion: 5, clientId, reconnectPeriod: 0 });
  let n = 0;
  const waiting = new Map<string, (r: Response) => void>();
  c.on('message', (_topic, payload, packet) => {
    const corr = packet.properties?.correlationData?.toString();
    const done = corr ? waiting.get(corr) : undefined;
    if (!done) return;
    waiting.delete(corr as string);
    done(JSON.parse(payload.toString()) as Response);
  });
  const subscribed = new Set<string>();
  return {
    client: c,
    /** Publishes a request (raw bytes or an object) and waits for the response to it. */
    async request(deviceId: string, command: string, body: unknown, timeoutMs = 30_000): Promise<Response> {
      const responses = `fghv/${deviceId}/response/#`;
      if (!subscribed.has(responses)) {
        await c.subscribeAsync(responses, { qos: 1 });
        subscribed.add(responses);
      }
      const corr = `c${++n}`;
      const reply = new Promise<Response>((resolve, reject) => {
        const t = setTimeout(() => {
          waiting.delete(corr);
          reject(new Error(`no response to ${command} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(corr, (r) => {
          clearTimeout(t);
          resolve(r);
        });
      });
      await c.publishAsync(
        `fghv/${deviceId}/request/${command}`,
        Buffer.isBuffer(body) ? body : JSON.stringify(body),
        {
          qos: 1,
          properties: {
            responseTopic: `fghv/${deviceId}/response/${corr}`,
            correlationData: Buffer.from(corr),
          },
        },
      );
      return reply;
    },
    close: () => c.endAsync(true),
  };
}

/** Starts the real daemon on the broker and waits until it announced itself online. */
export async function startDaemon(deviceId: string, brokerUrl: string, extra: Record<string, unknown> = {}) {
  const cfg = writeKioskConfig({ deviceId, brokerUrl, extra });
  return { ...cfg, ...(await runDaemon(deviceId, brokerUrl, cfg.file)) };
}

/** Runs the daemon on an existing config file (a restart on the same state dir). */
export async function runDaemon(deviceId: string, brokerUrl: string, file: string) {
  const sub = await collect(brokerUrl, [`fghv/${deviceId}/availability`]);
  const kiosk = spawnKiosk(['run', '--config', file]);
  try {
    await sub.waitFor((m) => m.payload === 'online' && !m.retain, 120_000);
    // Start opens every camera first; unreachable network cameras can take a while to fail.
    await kiosk.waitForOutput(/"msg":"ready"/, 120_000);
  } catch (e) {
    kiosk.kill();
    throw e;
  } finally {
    await sub.close();
  }
  return { kiosk };
}
