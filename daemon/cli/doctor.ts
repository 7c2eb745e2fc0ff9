/**
 * `fghv-kiosk doctor`: checks what the daemon needs on this machine and explains each
 * failure: state directory (writable, free space), clock, model files and manifests, the
 * execution providers that really load the model, cameras, the broker (and TLS when the URL
 * says so). Every check is bounded in time; none changes anything except a probe file in
 * the state directory.
 */
import { accessSync, constants, existsSync, statfsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Config } from '../../config/schema.js';
import { cv } from '../../core/cv.js';
import { asError, isKioskError } from '../../core/errors.js';
import { fileProblem } from '../../core/file-rule.js';
import { openCvHasGStreamer } from '../../drivers/camera/opencv-capture.js';
import { orientMat, type Rotation, uprightRotation } from '../../drivers/camera/orient.js';
import { detectorOptions } from '../detect/index.js';
import type { FaceDetector } from '../detect/types.js';
import { type LoadedModel, loadManifest } from '../liveness/manifest.js';
import { openInferenceStack } from '../models/inference-stack.js';
import { activeManifest } from '../models/model-install.js';
import { readMqttPassword, redactUrl } from '../mqtt/mqtt-link.js';
import { missingHint, referencedFiles } from './config-files.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  message: string;
  details?: Record<string, unknown>;
}

export interface DoctorReport {
  ok: boolean;
  checks: CheckResult[];
}

const MiB = 1024 * 1024;
/** A clock before this date is certainly wrong (TLS validity and decision expiry depend on it). */
const CLOCK_FLOOR = Date.UTC(2025, 0, 1);

/** Free-space verdict for the state directory (pure). */
export function judgeFreeSpace(freeBytes: number): { status: CheckStatus; message: string } {
  const mib = Math.floor(freeBytes / MiB);
  if (freeBytes < 100 * MiB)
    return {
      status: 'fail',
      message: `${mib} MiB free: the seq counter, audit store and models need at least 100 MiB`,
    };
  if (freeBytes < 1024 * MiB)
    return { status: 'warn', message: `${mib} MiB free: below 1 GiB, model updates may not fit` };
  return { status: 'ok', message: `${mib} MiB free` };
}

/** Clock verdict (pure). */
export function judgeClock(nowMs: number): { status: CheckStatus; message: string } {
  const iso = new Date(nowMs).toISOString();
  if (nowMs < CLOCK_FLOOR)
    return {
      status: 'fail',
      message: `the clock says ${iso}: not set (no RTC or NTP?); TLS and decision expiry will fail`,
    };
  return { status: 'ok', message: `${iso} (check NTP with \`timedatectl\`)` };
}

function errMessage(e: unknown): string {
  return isKioskError(e) ? `${e.code}: ${e.message}` : asError(e).message;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function checkStateDir(dir: string): CheckResult[] {
  // The daemon creates the directory at start; doctor only checks that it could (the
  // nearest existing ancestor is writable), so running it changes nothing on disk.
  let existing = path.resolve(dir);
  while (!existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  const created = existing !== path.resolve(dir);
  try {
    accessSync(existing, constants.W_OK | constants.X_OK);
  } catch (e) {
    return [
      {
        name: 'state_dir',
        status: 'fail',
        message: created
          ? `${dir} does not exist and cannot be created: ${existing} is not writable (${errMessage(e)})`
          : `${dir} is not writable: ${errMessage(e)}`,
        details: { dir },
      },
    ];
  }
  const fs = statfsSync(existing);
  const free = fs.bavail * fs.bsize;
  const verdict = judgeFreeSpace(free);
  return [
    {
      name: 'state_dir',
      status: 'ok',
      message: created ? `${dir} does not exist yet; the daemon can create it` : `${dir} is writable`,
      details: { dir },
    },
    { name: 'disk_space', ...verdict, details: { dir, free_bytes: free } },
  ];
}

/** Every file the config names: the detector model, the manifest, password, TLS and key files. */
function checkFiles(config: Config, configFile: string | null): CheckResult[] {
  // By the rule each file is read by (core/file-rule.ts): missing, not a regular file, too large.
  return referencedFiles(config).map((f) => {
    const { key, path: p, rule } = f;
    const problem = fileProblem(p, rule);
    return problem === null
      ? { name: `file:${key}`, status: 'ok' as const, message: p, details: { key, path: p } }
      : {
          name: `file:${key}`,
          status: 'fail' as const,
          message: `${p} ${problem}${problem === 'does not exist' ? missingHint(f, configFile) || (key === 'detector.model' ? ' (run would fail with KIOSK_E_MODEL_NOT_FOUND)' : '') : ''}`,
          details: { key, path: p, ...(f.model ? { model: f.model } : {}) },
        };
  });
}

function firstModelPath(loaded: LoadedModel): string {
  return 'members' in loaded ? firstModelPath(loaded.members[0] as LoadedModel) : loaded.modelPath;
}

async function checkModelAndProviders(config: Config): Promise<CheckResult[]> {
  const manifest = activeManifest(config.device.state_dir, config.liveness.manifest);
  let loaded: LoadedModel;
  try {
    loaded = await loadManifest(manifest);
  } catch (e) {
    return [
      { name: 'model', status: 'fail', message: `${manifest}: ${errMessage(e)}`, details: { manifest } },
    ];
  }
  const m = loaded.manifest;
  const results: CheckResult[] = [
    {
      name: 'model',
      status: m.purpose === 'production' ? 'ok' : 'warn',
      message: `${m.name} ${m.version} (${m.family}), sha256 verified${m.purpose === 'production' ? '' : `; purpose ${m.purpose}: not for securing a door`}`,
      details: { manifest, purpose: m.purpose },
    },
  ];
  // A provider counts only if it really creates a session for this model.
  const { worker, close } = await openInferenceStack({});
  const available: string[] = [];
  const problems: Record<string, string> = {};
  try {
    for (const p of config.liveness.providers) {
      try {
        const s = await withTimeout(worker.load(firstModelPath(loaded), { providers: [p] }), 120_000, p);
        await s.release();
        available.push(p);
      } catch (e) {
        problems[p] = errMessage(e);
      }
    }
  } finally {
    await close();
  }
  const status: CheckStatus =
    available.length === 0 ? 'fail' : available[0] === config.liveness.providers[0] ? 'ok' : 'warn';
  results.push({
    name: 'execution_providers',
    status,
    message: available.length
      ? `the model runs on: ${available.join(', ')}${Object.keys(problems).length ? `; unavailable: ${Object.keys(problems).join(', ')}` : ''}`
      : 'no configured execution provider can load the model',
    details: { configured: config.liveness.providers, available, unavailable: problems },
  });
  return results;
}

function checkCamera(cam: Config['cameras'][number]): CheckResult {
  const name = `camera:${cam.id}`;
  try {
    switch (cam.kind) {
      case 'file': {
        if (!existsSync(cam.source))
          return { name, status: 'fail', message: `video file ${cam.source} does not exist` };
        const cap = new cv.VideoCapture(cam.source);
        const frame = cap.read();
        cap.release();
        if (frame.empty)
          return {
            name,
            status: 'fail',
            message: `${cam.source} opens but yields no frame (codec missing?)`,
          };
        return { name, status: 'ok', message: `${cam.source}: ${frame.cols}x${frame.rows}` };
      }
      case 'v4l2':
      case 'fswebcam':
      case 'node-webcam': {
        if (cam.kind === 'node-webcam' && !cam.source.startsWith('/dev/') && !/^\d+$/.test(cam.source))
          return { name, status: 'ok', message: `node-webcam device ${cam.source}: opened at start` };
        const dev = /^\d+$/.test(cam.source) ? `/dev/video${cam.source}` : cam.source;
        if (!existsSync(dev))
          return {
            name,
            status: 'fail',
            message: `${dev} does not exist (camera unplugged? driver not loaded?)`,
          };
        try {
          accessSync(dev, constants.R_OK | constants.W_OK);
        } catch {
          return {
            name,
            status: 'fail',
            message: `${dev} exists but this user cannot open it: add the user to group video`,
          };
        }
        return { name, status: 'ok', message: `${dev} is accessible` };
      }
      case 'gstreamer': {
        return openCvHasGStreamer()
          ? { name, status: 'ok', message: 'OpenCV has GStreamer; the pipeline is opened at start' }
          : { name, status: 'fail', message: 'this OpenCV build has no GStreamer support' };
      }
      case 'fake':
        return { name, status: 'warn', message: 'fake camera: test frames only' };
      default:
        return { name, status: 'ok', message: `${cam.kind} source ${cam.source}: not probed by doctor` };
    }
  } catch (e) {
    return { name, status: 'fail', message: errMessage(e) };
  }
}

/** Every broker of `mqtt.url` (a failover list is checked broker by broker, `broker`, `broker 2`, ...). */
async function checkBrokers(config: Config): Promise<CheckResult[]> {
  const urls = config.mqtt.url === null ? [null] : [config.mqtt.url].flat();
  const results = await Promise.all(urls.map((url) => checkBroker(config, url)));
  return results.map((r, i) => (i === 0 ? r : { ...r, name: `broker ${i + 1}` }));
}

async function checkBroker(config: Config, brokerUrl: string | null): Promise<CheckResult> {
  const { mqtt } = config;
  if (brokerUrl === null) {
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(mqtt.embedded_port, mqtt.embedded_host, () => srv.close(() => resolve(true)));
    });
    const where = `${mqtt.embedded_host}:${mqtt.embedded_port}`;
    return free
      ? { name: 'broker', status: 'ok', message: `embedded broker: ${where} is free` }
      : {
          name: 'broker',
          status: 'fail',
          message: `embedded broker: ${where} is in use (another kiosk or broker running?)`,
        };
  }
  const url = redactUrl(brokerUrl);
  const tls = /^(mqtts|wss):/.test(brokerUrl);
  try {
    const { connectAsync } = await import('mqtt');
    const client = await withTimeout(
      connectAsync(brokerUrl, {
        protocolVersion: mqtt.protocol_version,
        reconnectPeriod: 0,
        connectTimeout: 5000,
        clientId: `fghv-doctor-${process.pid}`,
        username: mqtt.username ?? undefined,
        password: readMqttPassword(mqtt) ?? undefined,
      }),
      8000,
      'broker',
    );
    await client.endAsync(true);
    return {
      name: 'broker',
      status: 'ok',
      message: `${url} accepts the connection${tls ? ' (TLS handshake ok)' : ''}`,
      details: { tls },
    };
  } catch (e) {
    return {
      name: 'broker',
      status: 'fail',
      message: `${url}: ${errMessage(e)}${tls ? ' (check the CA, client certificate and host name)' : ''}`,
      details: { tls },
    };
  }
}

/** Test frames doctor reads from a camera for the orientation check: every 15th of the first 150. */
const ORIENTATION_FRAMES = 10;

/**
 * Orientation: a camera mounted sideways makes faces hard to detect and spoof-looking. Doctor
 * reads a few frames (file and v4l2 cameras), applies the configured rotate/flip, and looks
 * where each detected face's head points: from the mouth to the eyes (landmarks). A face whose
 * head points sideways or down votes for the rotate that would stand it upright; when the
 * detector finds no face as configured, the frame is tried turned by 90, 180 and 270 degrees
 * (some detectors miss sideways faces altogether).
 */
async function checkOrientation(config: Config): Promise<CheckResult[]> {
  const cams = config.cameras.filter((c) => c.kind === 'file' || c.kind === 'v4l2');
  if (!cams.length) return [];
  const results: CheckResult[] = [];
  try {
    const stack = await openInferenceStack({
      detector: detectorOptions(config, { providers: ['cpu'], intraOpThreads: 1, allowSpinning: false }),
    });
    try {
      for (const cam of cams) results.push(await orientationOf(cam, stack.detector));
    } finally {
      await stack.close();
    }
  } catch (e) {
    results.push({ name: 'orientation', status: 'warn', message: `not checked: ${errMessage(e)}` });
  }
  return results;
}

async function orientationOf(cam: Config['cameras'][number], detector: FaceDetector): Promise<CheckResult> {
  const name = `orientation:${cam.id}`;
  const source = cam.kind === 'v4l2' && /^\d+$/.test(cam.source) ? Number(cam.source) : cam.source;
  if (typeof source === 'string' && !existsSync(source))
    return { name, status: 'warn', message: 'not checked: the source does not exist' };
  const votes: Record<Rotation, number> = { 0: 0, 90: 0, 180: 0, 270: 0 };
  let frames = 0;
  const cap = new cv.VideoCapture(source as string);
  try {
    for (let i = 0; i < ORIENTATION_FRAMES * 15 && frames < ORIENTATION_FRAMES; i++) {
      const raw = cap.read();
      if (raw.empty) break;
      if (i % 15 !== 0) continue;
      frames++;
      const upright = orientMat(raw, { rotate: cam.rotate, flip: cam.flip });
      for (const extra of [0, 90, 180, 270] as const) {
        const m = extra === 0 ? upright : orientMat(upright, { rotate: extra, flip: 'none' });
        const faces = await detector.detect(m);
        if (m !== upright) m.release();
        for (const f of faces) votes[((extra + uprightRotation(f.landmarks)) % 360) as Rotation]++;
        if (faces.length) break;
      }
      upright.release();
    }
  } finally {
    cap.release();
  }
  const faces = votes[0] + votes[90] + votes[180] + votes[270];
  const details = { frames, faces, votes, rotate: cam.rotate, flip: cam.flip };
  if (!frames) return { name, status: 'warn', message: 'not checked: no frame could be read', details };
  if (!faces)
    return {
      name,
      status: 'ok',
      message: `no face in ${frames} test frames: stand in front of the camera and run doctor again to check its orientation`,
      details,
    };
  const best = ([0, 90, 180, 270] as const).reduce((a, b) => (votes[b] > votes[a] ? b : a));
  if (best !== 0)
    return {
      name,
      status: 'warn',
      message: `${votes[best]} of ${faces} faces in ${frames} test frames stand upright only after turning the image ${best} degrees clockwise: the camera looks mounted ${best === 180 ? 'upside down' : 'sideways'}; set cameras[].rotate: ${(cam.rotate + best) % 360}`,
      details,
    };
  return {
    name,
    status: 'ok',
    message: `faces upright (${votes[0]} of ${faces} faces in ${frames} test frames)`,
    details,
  };
}

export async function runDoctor(
  config: Config,
  now = Date.now(),
  configFile: string | null = null,
): Promise<DoctorReport> {
  const checks: CheckResult[] = [];
  checks.push(...checkStateDir(config.device.state_dir));
  checks.push({ name: 'clock', ...judgeClock(now) });
  checks.push(...checkFiles(config, configFile));
  checks.push(...(await checkModelAndProviders(config)));
  for (const cam of config.cameras) checks.push(checkCamera(cam));
  checks.push(...(await checkOrientation(config)));
  checks.push(...(await checkBrokers(config)));
  return { ok: checks.every((c) => c.status !== 'fail'), checks };
}

export function formatReport(report: DoctorReport): string {
  const lines = report.checks.map((c) => `${c.status.padEnd(4)}  ${c.name}: ${c.message}`);
  lines.push(report.ok ? 'doctor: no failures' : 'doctor: FAILED (see the lines marked fail)');
  return `${lines.join('\n')}\n`;
}
