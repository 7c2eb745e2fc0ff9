/**
 * A live network camera stand-in: ffmpeg encoding a test pattern (or a video, looped) as MPEG-TS
 * at its frame rate, served over HTTP by a small Node server to any number of clients, like an IP
 * camera (clients join mid-stream at a TS packet boundary; the decoder waits for the next
 * keyframe, every 5 frames). Tests kill it to simulate a camera or network loss (the port
 * closes, connections are cut) and start it again on the same port to see the daemon
 * reconnect. Several clients matter: a reachability probe is a client too.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import { freePort } from './net.js';

export { freePort };

export interface HttpStream {
  url: string;
  /** What a FfmpegPipeCapture `source` should be to read it with little buffering. */
  source: string;
  /** SIGKILL (the camera vanishes, no goodbye) and wait for the exit. */
  kill(): Promise<void>;
  readonly child: ChildProcess;
  /** performance.now() when the encoder produced its first bytes (the camera streams again). */
  readonly firstByte: Promise<number>;
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
      ...(o.input
        ? ['-stream_loop', '-1', '-i', o.input]
        : ['-f', 'lavfi', '-i', `testsrc=size=${size}:rate=${o.rate ?? 25}`]),
      ...['-c:v', 'mpeg2video', '-q:v', '5', '-g', '5', '-f', 'mpegts', 'pipe:1'],
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const TS_PACKET = 188;
  let offset = 0; // bytes of TS written so far, to start new clients on a packet boundary
  const clients = new Set<http.ServerResponse>();
  const firstByte = new Promise<number>((resolve) =>
    child.stdout?.once('data', () => resolve(performance.now())),
  );
  child.stdout?.on('data', (chunk: Buffer) => {
    const skip = (TS_PACKET - (offset % TS_PACKET)) % TS_PACKET;
    offset += chunk.length;
    for (const res of clients) {
      if (res.writableLength > 4 * 2 ** 20) continue; // a stuck client loses data, not memory
      if (!res.headersSent) {
        res.writeHead(200, { 'content-type': 'video/mp2t' });
        if (skip < chunk.length) res.write(chunk.subarray(skip));
      } else res.write(chunk);
    }
  });
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    if (req.url !== '/live.ts') {
      res.writeHead(404).end();
      return;
    }
    clients.add(res);
    res.on('close', () => clients.delete(res));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(port, '127.0.0.1');
  const stopServer = () => {
    server.close();
    for (const s of sockets) s.destroy();
  };
  child.once('exit', stopServer);
  return {
    url,
    source: `-fflags nobuffer -probesize 32768 -analyzeduration 200000 -i ${url}`,
    child,
    firstByte,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGKILL');
        await exited;
      }
      stopServer();
      await new Promise<void>((resolve) => (server.listening ? server.once('close', resolve) : resolve()));
    },
  };
}
