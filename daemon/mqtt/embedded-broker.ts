/**
 * The broker of a kiosk without a site broker (`mqtt.url: null`), on embedded_host:embedded_port.
 *
 * `mqtt.embedded_broker`:
 *  - `mosquitto`: Debian's mosquitto as a child process. It speaks MQTT 5, so the decision's
 *    message expiry (mqtt.decision_expiry_s) holds: a subscriber that was away gets no expired
 *    accept when it reconnects (measured in test/integration/mqtt-embedded.test.ts).
 *  - `aedes`: in-process. aedes 1.x speaks MQTT 3.1.1 only (it refuses a v5 CONNECT with
 *    return code 1): the link falls back to protocol 4 and messages carry no expiry, so an
 *    offline QoS 1 subscriber can be handed an old decision; only `expires_at` in the payload
 *    protects it. The daemon logs this.
 *  - `auto` (default): mosquitto when /usr/sbin/mosquitto exists, else aedes.
 * mosquitto is started through `setpriv --pdeathsig SIGTERM`, so it ends with the daemon even
 * when the daemon is killed, and never holds the port for the next start.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ErrorCodes, KioskError } from '../../core/errors.js';

export const MOSQUITTO_BIN = '/usr/sbin/mosquitto';
const SETPRIV_BIN = '/usr/bin/setpriv';

export type EmbeddedBrokerKind = 'auto' | 'mosquitto' | 'aedes';

export interface EmbeddedBroker {
  readonly kind: 'mosquitto' | 'aedes';
  /** The newest MQTT protocol the broker speaks (5: message expiry holds). */
  readonly protocolVersion: 4 | 5;
  readonly host: string;
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

function brokerUrl(host: string, port: number): string {
  return `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Listen on host:port (0: any free port) with a plain server; the error of a taken port is explained. */
async function listen(server: net.Server, host: string, port: number): Promise<number> {
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE'
        ? `${host}:${port} is already in use (is another MQTT broker, e.g. mosquitto, running there?); ` +
          `set mqtt.url to use that broker (e.g. mqtt://${host}:${port}) or choose another mqtt.embedded_port`
        : `cannot listen on ${host}:${port} (${code ?? String(cause)})`;
    throw new KioskError(ErrorCodes.MQTT_BROKER_START, `embedded MQTT broker not started: ${why}`, {
      cause,
      details: { host, port, code },
    });
  }
  return (server.address() as net.AddressInfo).port;
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startEmbeddedBroker(
  host: string,
  port: number,
  kind: EmbeddedBrokerKind = 'auto',
): Promise<EmbeddedBroker> {
  const useMosquitto = kind === 'mosquitto' || (kind === 'auto' && existsSync(MOSQUITTO_BIN));
  return useMosquitto ? startMosquitto(host, port) : startAedes(host, port);
}

async function startAedes(host: string, port: number): Promise<EmbeddedBroker> {
  // aedes 1.x is ESM-only and heavy: load it only when the embedded broker is used.
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  const server = net.createServer(broker.handle);
  let bound: number;
  try {
    bound = await listen(server, host, port);
  } catch (e) {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw e;
  }
  let closing: Promise<void> | null = null;
  return {
    kind: 'aedes',
    protocolVersion: 4,
    host,
    port: bound,
    url: brokerUrl(host, bound),
    close() {
      closing ??= (async () => {
        // broker.close() ends every client connection; server.close() then completes.
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closing;
    },
  };
}

async function startMosquitto(host: string, port: number): Promise<EmbeddedBroker> {
  if (!existsSync(MOSQUITTO_BIN))
    throw new KioskError(
      ErrorCodes.MQTT_BROKER_START,
      `embedded MQTT broker not started: mqtt.embedded_broker is mosquitto but ${MOSQUITTO_BIN} is missing (apt install mosquitto)`,
    );
  // The port is checked (and, for 0, chosen) by binding it first: a taken port gets the same
  // explanation as with aedes. It is released just before mosquitto binds it.
  const probe = net.createServer();
  const bound = await listen(probe, host, port);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fghv-broker-'));
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    `listener ${bound} ${host}\nallow_anonymous true\npersistence false\nlog_dest stderr\n`,
  );
  const [cmd, args] = existsSync(SETPRIV_BIN)
    ? [SETPRIV_BIN, ['--pdeathsig', 'SIGTERM', MOSQUITTO_BIN, '-c', conf]]
    : [MOSQUITTO_BIN, ['-c', conf]];
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const deadline = Date.now() + 10_000;
    while (!(await canConnect(host, bound))) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new KioskError(
          ErrorCodes.MQTT_BROKER_START,
          `embedded MQTT broker (mosquitto) did not start on ${host}:${bound}: ${stderr.trim() || 'no output'}`,
          { details: { host, port: bound } },
        );
      }
      await new Promise((r) => setTimeout(r, 30));
    }
  } finally {
    // mosquitto has read its configuration; nothing is left behind.
    rmSync(dir, { recursive: true, force: true });
  }
  let closing: Promise<void> | null = null;
  return {
    kind: 'mosquitto',
    protocolVersion: 5,
    host,
    port: bound,
    url: brokerUrl(host, bound),
    close() {
      closing ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
      })();
      return closing;
    },
  };
}
