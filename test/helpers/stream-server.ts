/**
 * A live network camera stand-in: ffmpeg serving a test pattern as MPEG-TS over HTTP
 * (`-listen 1`: one client). Tests kill it to simulate a camera or network loss and start it
 * again on the same port to see the daemon reconnect.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface HttpStream {
  url: string;
  /** What a FfmpegPipeCapture `source` should be to read it with little buffering. */
  source: string;
  /** SIGKILL (the camera vanishes, no goodbye) and wait for the exit. */
  kill(): Promise<void>;
  readonly child: ChildProcess;
}

export function startHttpStream(
  port: number,
  o: { width?: number; height?: number; rate?: number; input?: string } = {},
): HttpStream {
  const url = `http://127.0.0.1:${port}/live.ts`;
  const size = `${o.width ?? 320}x${o.height ?? 240}`;
  const child = spawn(
    'ffmpeg',
    [
      ...['-hide_banner', '-nostdin', '-loglevel', 'error', '-re'],
      ...(o.input ? ['-i', o.input] : ['-f', 'lavfi', '-i', `testsrc=size=${size}:rate=${o.rate ?? 25}`]),
      ...['-c:v', 'mpeg2video', '-q:v', '5', '-g', '5', '-f', 'mpegts', '-listen', '1', url],
    ],
    { stdio: 'ignore' },
  );
  return {
    url,
    source: `-fflags nobuffer -probesize 32768 -analyzeduration 200000 -i ${url}`,
    child,
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
    },
  };
}
