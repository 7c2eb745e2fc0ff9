/**
 * The real `fghv-kiosk` CLI as a child process, for supervision tests: a config file in a
 * temp dir (fake or file camera, MiniFASNetV2 installed from the shared data, CPU), output captured,
 * waits bounded, and every child killed when the test process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { testModel } from './models.js';
import { repoRoot } from './paths.js';

export const KIOSK_BIN = path.join(repoRoot, 'bin/fghv-kiosk.js');
/** MiniFASNetV2 installed by `model fetch` from ../shared/data/models (test/helpers/models.ts). */
export const MINIFASNET_MANIFEST = await testModel('minifasnet-v2');
/** What the daemon tests need from ../shared/data (for needsSharedData). */
export const MODEL_DATA = 'models/MiniFASNetV2.onnx';
/** The installed MiniFASNetV2 file (the one MINIFASNET_MANIFEST names). */
export const modelFile = () => path.join(path.dirname(MINIFASNET_MANIFEST), 'MiniFASNetV2.onnx');

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export interface KioskConfigOptions {
  deviceId?: string;
  brokerUrl?: string | null;
  /** Fake camera frame rate; a tiny rate means no frame arrives (a stalled pipeline). */
  fakeFps?: number;
  extra?: Record<string, unknown>;
}

/** Writes config.yaml into a fresh temp dir; returns { dir, file, stateDir }. */
export function writeKioskConfig(opts: KioskConfigOptions = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'fghv-kiosk-'));
  const stateDir = path.join(dir, 'state');
  const cfg = {
    device: { id: opts.deviceId ?? 'sup-kiosk', state_dir: stateDir },
    mqtt: { url: opts.brokerUrl ?? null, embedded_port: 0, health_interval_s: 1 },
    cameras: [{ id: 'front', kind: 'fake', source: 'fake', fps: opts.fakeFps ?? 10 }],
    liveness: { manifest: MINIFASNET_MANIFEST, providers: ['cpu'], intra_op_threads: 1 },
    status: { enabled: false },
    log: { format: 'json', level: 'info' },
    ...opts.extra,
  };
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, YAML.stringify(cfg));
  return { dir, file, stateDir };
}

export interface KioskChild {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  waitForOutput(re: RegExp, timeoutMs: number): Promise<void>;
  waitExit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  kill(): void;
}

export function spawnKiosk(args: string[], env: NodeJS.ProcessEnv = {}, cwd = repoRoot): KioskChild {
  const child = spawn(process.execPath, [KIOSK_BIN, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal, at: Date.now() });
    }),
  );
  return {
    child,
    output: () => out,
    waitForOutput(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!re.test(out)) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no ${re} in the daemon output within ${timeoutMs} ms:\n${out.slice(-3000)}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    async waitExit(timeoutMs) {
      const t0 = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`daemon did not exit within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        const r = await Promise.race([exited, timeout]);
        return { code: r.code, signal: r.signal, ms: r.at - t0 };
      } finally {
        clearTimeout(timer);
      }
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
