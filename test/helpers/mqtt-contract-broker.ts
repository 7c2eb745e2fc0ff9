/**
 * Test fixtures for the contract tests: a mosquitto with optional persistence (so a
 * subscriber's persistent session survives broker restarts), TLS and ACL listeners, the CA
 * and certificates made with openssl in a temp dir, and the simulated kiosk as a child process.
 * Every child is killed when the test process exits.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { canConnect, freePort, MOSQUITTO } from './mosquitto.js';
import { repoRoot } from './paths.js';
import { tempDir } from './temp.js';

export const OPENSSL = '/usr/bin/openssl';
export const needsOpenssl = (): false | string =>
  existsSync(OPENSSL) ? false : `needs ${OPENSSL} (apt-get install openssl), which is absent`;

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

function track(c: ChildProcess): ChildProcess {
  live.add(c);
  c.once('exit', () => live.delete(c));
  return c;
}

/** mosquitto drops to user `mosquitto` when started as root: let it read and write `dir`. */
function giveToMosquitto(dir: string): void {
  if (process.getuid?.() !== 0) return;
  const uid = Number(execFileSync('id', ['-u', 'mosquitto']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'mosquitto']).toString().trim());
  chownSync(dir, uid, gid);
  for (const f of readdirSync(dir)) chownSync(path.join(dir, f), uid, gid);
}

export interface TestBroker {
  port: number;
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/** `conf` gets the port and a dir owned by mosquitto; returns the config body. */
export async function startBroker(conf: (port: number, dir: string) => string): Promise<TestBroker> {
  const port = await freePort();
  const dir = tempDir('broker');
  writeFileSync(path.join(dir, 'mosquitto.conf'), `${conf(port, dir)}\nlog_dest stderr\n`);
  giveToMosquitto(dir);
  let child: ChildProcess | null = null;
  let stderr = '';
  const waitExit = (sig: NodeJS.Signals) => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(sig);
    });
  };
  const broker: TestBroker = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    async start() {
      if (child) return;
      const c = track(
        spawn(MOSQUITTO, ['-c', path.join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] }),
      );
      c.stderr?.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-3000);
      });
      child = c;
      const deadline = Date.now() + 5000;
      while (!(await canConnect(port))) {
        if (c.exitCode !== null || Date.now() > deadline) {
          await waitExit('SIGKILL');
          throw new Error(`mosquitto did not start on ${port}: ${stderr}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop: () => waitExit('SIGTERM'),
    kill: () => waitExit('SIGKILL'),
  };
  await broker.start();
  return broker;
}

export interface Certs {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  client(cn: string): { cert: string; key: string };
  otherCa: string;
}

/** A CA, a server certificate for 127.0.0.1, and client certificates on demand (openssl). */
export function makeCerts(): Certs {
  const dir = tempDir('certs');
  const run = (...args: string[]) => execFileSync(OPENSSL, args, { cwd: dir, stdio: 'pipe' });
  const ca = (name: string) => {
    run(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
    );
  };
  const leaf = (name: string, cn: string, ext: string | null) => {
    run(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
    );
    const extArgs: string[] = [];
    if (ext) {
      writeFileSync(path.join(dir, `${name}.ext`), ext);
      extArgs.push('-extfile', `${name}.ext`);
    }
    run(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      `${name}.crt`,
      ...extArgs,
    );
  };
  ca('ca');
  ca('other-ca');
  leaf('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  const p = (f: string) => path.join(dir, f);
  return {
    dir,
    ca: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    otherCa: p('other-ca.crt'),
    client(cn: string) {
      leaf(`client-${cn}`, cn, null);
      return { cert: p(`client-${cn}.crt`), key: p(`client-${cn}.key`) };
    },
  };
}

export interface Sim {
  child: ChildProcess;
  /** Decisions the sim reported as durable, in order. */
  decided: { seq: number; id: string; connected: boolean }[];
  stderr(): string;
  exited: Promise<number | null>;
}

/** Starts the simulated kiosk with a config YAML (written to `dir/config.yaml`). */
export function startSim(dir: string, yaml: string, decisionMs = 50): Sim {
  const cfg = path.join(dir, 'config.yaml');
  writeFileSync(cfg, yaml);
  const child = track(
    spawn(process.execPath, [path.join(repoRoot, 'dist/test/helpers/mqtt-contract-sim.js'), cfg], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SIM_DECISION_MS: String(decisionMs) },
    }),
  );
  const decided: Sim['decided'] = [];
  let buf = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let i = buf.indexOf('\n');
    while (i >= 0) {
      decided.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
      i = buf.indexOf('\n');
    }
  });
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-5000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, decided, stderr: () => err, exited };
}

/** SIGTERM the simulated kiosk (SIGKILL after 5 s) and wait for its exit; no-op once it exited. */
export async function stopSim(sim: Sim): Promise<void> {
  if (sim.child.exitCode !== null || sim.child.signalCode !== null) return;
  sim.child.kill('SIGTERM');
  const t = setTimeout(() => sim.child.kill('SIGKILL'), 5000);
  await sim.exited;
  clearTimeout(t);
}

export function simYaml(o: { deviceId: string; stateDir: string; url: string; extra?: string }): string {
  return [
    'device:',
    `  id: ${o.deviceId}`,
    `  state_dir: ${o.stateDir}`,
    'mqtt:',
    `  url: ${o.url}`,
    '  keepalive_s: 2',
    '  reconnect_min_ms: 50',
    '  reconnect_max_ms: 300',
    '  health_interval_s: 0.5',
    ...(o.extra ? [o.extra] : []),
    '',
  ].join('\n');
}
