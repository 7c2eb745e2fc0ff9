/**
 * A real broker for tests: Debian's mosquitto on a free loopback port, configured in a temp
 * dir, started and stopped by pid. Every process started here is also killed when the test
 * process exits, so a failing test never leaves a broker behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { freePort } from './net.js';

export { freePort };

import os from 'node:os';
import path from 'node:path';
import type { ContractLinkOptions } from '../../daemon/contract/contract-link.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';

/** For node:test's `skip`: false when mosquitto is installed, otherwise why not. */
export function needsMosquitto(): false | string {
  return existsSync(MOSQUITTO) ? false : `needs ${MOSQUITTO} (apt-get install mosquitto), which is absent`;
}

export interface Mosquitto {
  readonly url: string;
  readonly port: number;
  readonly running: boolean;
  /** The broker process (memory figures in benchmarks); null while stopped. */
  readonly pid: number | null;
  /** SIGTERM, wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL (a crash), wait for exit. */
  kill(): Promise<void>;
  /** Stop if running, then start again on the same port (retained state is lost: persistence is off). */
  restart(): Promise<void>;
  /** Start again after stop/kill. */
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT: a broker that hangs (accepts nothing, answers nothing) and comes back. */
  pause(): void;
  resume(): void;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** True once something accepts TCP connections on 127.0.0.1:port. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts mosquitto; `port` defaults to a free one. `autostart: false` only reserves the config. */
export async function startMosquitto(
  opts: {
    port?: number;
    autostart?: boolean /** Appended to mosquitto.conf (a bridge, say). */;
    extraConfig?: string;
  } = {},
): Promise<Mosquitto> {
  const port = opts.port ?? (await freePort());
  let child: ChildProcess | null = null;

  const waitExit = (signal: NodeJS.Signals) => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise<void>((resolve) => {
      c.once('exit', () => {
        live.delete(c);
        resolve();
      });
      c.kill(signal);
    });
  };

  const start = async () => {
    if (child) return;
    let stderr = '';
    // Read as root before mosquitto drops to user `mosquitto`, and never again (no SIGHUP
    // here): the dir goes as soon as the broker listens, so a killed test leaves nothing.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fghv-mosquitto-'));
    const conf = path.join(dir, 'mosquitto.conf');
    writeFileSync(
      conf,
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n${opts.extraConfig ?? ''}`,
    );
    const c = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    c.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    live.add(c);
    c.once('exit', () => live.delete(c));
    child = c;
    const deadline = Date.now() + 5000;
    try {
      while (!(await canConnect(port))) {
        if (c.exitCode !== null || Date.now() > deadline) {
          await waitExit('SIGKILL');
          throw new Error(`mosquitto did not start on port ${port}: ${stderr.trim()}`);
        }
        await new Promise((r) => setTimeout(r, 30));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  const broker: Mosquitto = {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    get running() {
      return child !== null;
    },
    get pid() {
      return child?.pid ?? null;
    },
    stop: async () => {
      child?.kill('SIGCONT');
      await waitExit('SIGTERM');
    },
    pause: () => {
      child?.kill('SIGSTOP');
    },
    resume: () => {
      child?.kill('SIGCONT');
    },
    kill: () => waitExit('SIGKILL'),
    restart: async () => {
      await waitExit('SIGTERM');
      await start();
    },
    start,
  };
  if (opts.autostart !== false) await start();
  return broker;
}

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
  messageExpiryInterval: number | undefined;
}

export interface Collector {
  readonly messages: Received[];
  /** Resolves with the first message (already received or coming) that matches; rejects after timeoutMs. */
  waitFor(match: (m: Received) => boolean, timeoutMs?: number): Promise<Received>;
  close(): Promise<void>;
}

/** A test subscriber that records everything on `topics` (MQTT 5 unless asked otherwise). */
export async function collect(url: string, topics: string[], protocolVersion: 4 | 5 = 5): Promise<Collector> {
  const { connectAsync } = await import('mqtt');
  const client = await connectAsync(url, {
    protocolVersion,
    reconnectPeriod: 0,
    clientId: `test-${process.pid}-${Math.random()}`,
  });
  const messages: Received[] = [];
  const listeners = new Set<() => void>();
  client.on('message', (topic, payload, packet) => {
    messages.push({
      topic,
      payload: payload.toString(),
      retain: packet.retain,
      messageExpiryInterval: packet.properties?.messageExpiryInterval,
    });
    for (const l of listeners) l();
  });
  await client.subscribeAsync(topics, { qos: 1 });
  return {
    messages,
    waitFor(match, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(match);
          if (!found) return false;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`));
        }, timeoutMs);
        if (!check()) listeners.add(check);
      });
    },
    close: () => client.endAsync(true),
  };
}

/** ContractLink options for tests: MQTT 5, prefix fghv, fast reconnects; `extra` overrides any of them. */
export function testLinkOptions(
  url: string | readonly string[],
  deviceId: string,
  extra: Partial<ContractLinkOptions> = {},
): ContractLinkOptions {
  return {
    url,
    deviceId,
    prefix: 'fghv',
    clientId: null,
    username: null,
    password: null,
    protocolVersion: 5,
    keepaliveS: 5,
    reconnectMinMs: 50,
    reconnectMaxMs: 400,
    ...extra,
  };
}
