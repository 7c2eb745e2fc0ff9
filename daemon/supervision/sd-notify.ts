/**
 * sd_notify(3) over the unix datagram socket systemd names in NOTIFY_SOCKET, with
 * `unix-dgram` (Node has no AF_UNIX datagram sockets). Without NOTIFY_SOCKET (a terminal, pm2,
 * a test) every call does nothing, so the same build runs under any supervisor.
 */
import { createRequire } from 'node:module';

interface UnixDgramSocket {
  on(event: 'error', listener: (err: Error) => void): void;
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void;
  close(): void;
}
interface UnixDgram {
  createSocket(type: 'unix_dgram'): UnixDgramSocket;
}

/** Fields of one notification, in order: `{ READY: '1', STATUS: 'running' }` -> "READY=1\nSTATUS=running". */
export function formatNotification(fields: Record<string, string | number>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`)
    .join('\n');
}

/**
 * The ping interval systemd asks for: half of WATCHDOG_USEC (as sd_watchdog_enabled(3)
 * advises), or null when there is no watchdog or it is meant for another process.
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid = process.pid): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isFinite(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}

/** An abstract socket name (leading '@') becomes a leading NUL byte, as in sd_notify. */
export function socketAddress(notifySocket: string): string {
  return notifySocket.startsWith('@') ? `\0${notifySocket.slice(1)}` : notifySocket;
}

export class SdNotifier {
  private socket: UnixDgramSocket | null = null;
  private readonly address: string | null;
  /** Failed sends (socket gone, buffer full); never thrown: supervision must not crash the daemon. */
  failures = 0;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.address = env.NOTIFY_SOCKET ? socketAddress(env.NOTIFY_SOCKET) : null;
  }

  get enabled(): boolean {
    return this.address !== null;
  }

  send(fields: Record<string, string | number>): void {
    if (this.address === null) return;
    if (!this.socket) {
      const dgram = createRequire(import.meta.url)('unix-dgram') as UnixDgram;
      this.socket = dgram.createSocket('unix_dgram');
      this.socket.on('error', () => {
        this.failures++;
      });
    }
    const buf = Buffer.from(formatNotification(fields));
    this.socket.send(buf, 0, buf.length, this.address, (err) => {
      if (err) this.failures++;
    });
  }

  close(): void {
    this.socket?.close();
    this.socket = null;
  }
}
