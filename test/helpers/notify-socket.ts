/**
 * A NOTIFY_SOCKET listener for tests: a real AF_UNIX datagram socket (unix-dgram) bound in a
 * temp dir that records every notification the way systemd receives it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

interface DgramServer {
  on(event: 'message', listener: (buf: Buffer) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
  bind(path: string): void;
  close(): void;
}

export interface Notification {
  at: number;
  fields: Record<string, string>;
}

export interface NotifyListener {
  readonly path: string;
  readonly received: Notification[];
  waitFor(match: (n: Notification) => boolean, timeoutMs: number): Promise<Notification>;
  close(): void;
}

export function parseNotification(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) fields[line.slice(0, i)] = line.slice(i + 1);
  }
  return fields;
}

export function listenNotify(): NotifyListener {
  const dgram = createRequire(import.meta.url)('unix-dgram') as {
    createSocket(type: 'unix_dgram'): DgramServer;
  };
  const dir = mkdtempSync(path.join(tmpdir(), 'fghv-notify-'));
  const sockPath = path.join(dir, 'notify.sock');
  const received: Notification[] = [];
  const listeners = new Set<() => void>();
  const server = dgram.createSocket('unix_dgram');
  server.on('error', () => undefined);
  server.on('message', (buf) => {
    received.push({ at: Date.now(), fields: parseNotification(buf.toString()) });
    for (const l of listeners) l();
  });
  server.bind(sockPath);
  return {
    path: sockPath,
    received,
    waitFor(match, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const n = received.find(match);
          if (!n) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(n);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(
            new Error(
              `no matching notification within ${timeoutMs} ms; got ${JSON.stringify(received.slice(-10))}`,
            ),
          );
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    close() {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
