/**
 * What the fleet console knows about each device, built only from the devices' own topics
 * (`<prefix>/<device_id>/availability|info|health|<camera>/decision`). Pure apart from the
 * Ed25519 checks: the console's MQTT side feeds `ingest()`, the HTTP side reads `snapshot()`.
 *
 * Trust: a decision is `verified` only when its signature checks against the device's key as
 * a live delivery of that device and camera, with a seq above the last one verified. The key
 * comes from the pinned fleet keys file when one is given (a different key in `info` is then
 * refused and flagged, and a device missing from the file has no key at all), otherwise from
 * the device's retained `info` (a change is followed, and flagged). Anyone who can publish on
 * the broker can write a device's topics; the console flags what does not verify rather than
 * showing it as that device's decision.
 */
import { ErrorCodes, KioskError } from '../../../core/errors.js';
import { checkDecision, type VerifyFailure } from '../../contract/signing/verify.js';

export type FleetFlag =
  /** info.model.purpose is not `production` (a demo or untrained model deciding). */
  | 'model_not_production'
  /** set_thresholds overrides are in force. */
  | 'thresholds_overridden'
  /** An override is looser than the model's own threshold (`_min` lowered, `_max` raised). */
  | 'thresholds_loosened'
  /**
   * A decision failed verification (unsigned, forged, wrong device/camera, replayed seq) since
   * the console started: kept after later genuine ones, so an attack does not scroll away.
   */
  | 'unverified_decision'
  /** info carries a key other than the pinned one (refused). */
  | 'key_not_pinned'
  /** A pinned keys file is in use and this device is not in it. */
  | 'unknown_device'
  /** info's key changed while the console watched (no pinned keys: the new key is used). */
  | 'key_changed'
  /** |health.ts - receive time| above the limit. */
  | 'clock_skew'
  /** A camera the device reports is not running. */
  | 'camera_down';

export interface FleetDecision {
  seq: number | null;
  camera_id: string | null;
  decision: string | null;
  reason: string | null;
  ts: string | null;
  received_at: string;
  verified: boolean;
  /** Why it did not verify (null when verified). */
  problem: VerifyFailure | 'no_key' | null;
}

export interface FleetDevice {
  device_id: string;
  online: boolean;
  /** When availability last changed, as received. */
  availability_at: string | null;
  broker: string | null;
  software: string | null;
  model: { name: string; version: string; purpose: string } | null;
  threshold_overrides: Record<string, number> | null;
  loosened_thresholds: string[];
  cameras: { id: string; kind: string | null; state: string | null; capture_fps: number | null }[];
  fps: { capture: number; processed: number; dropped: number } | null;
  /** Live decisions received in the last 60 s, by outcome (verified or not). */
  decisions_per_min: { accept: number; reject: number; retry: number };
  /** health.ts minus the time it was received, seconds (positive: the device clock is ahead). */
  clock_skew_s: number | null;
  key: { source: 'pinned' | 'info' | null; public_key: string | null };
  last_decision: FleetDecision | null;
  /** Decisions that did not verify since the console started. */
  unverified_total: number;
  flags: FleetFlag[];
  last_seen: string | null;
}

export interface FleetSnapshot {
  generated_at: string;
  totals: { devices: number; online: number; flagged: number; decisions_per_min: number };
  devices: FleetDevice[];
}

export interface FleetStateOptions {
  prefix: string;
  /** device_id -> base64 public key; null: keys come from each device's info. */
  pinnedKeys: ReadonlyMap<string, string> | null;
  /** Clock skew beyond this is flagged (seconds). Default 5. */
  maxSkewS?: number;
  now?: () => number;
}

interface DeviceState {
  id: string;
  online: boolean;
  availabilityAt: number | null;
  info: Record<string, unknown> | null;
  infoKey: string | null;
  keyChanged: boolean;
  health: Record<string, unknown> | null;
  skewS: number | null;
  lastSeen: number | null;
  /** The last live decision's bytes, re-verified when the key changes. */
  lastRaw: Buffer | null;
  lastCamera: string | null;
  lastReceived: number;
  last: FleetDecision | null;
  /** Highest seq verified: a lower or equal one again is a replay. */
  lastSeq: number | undefined;
  recent: { at: number; outcome: string }[];
  unverified: number;
}

const OUTCOMES = ['accept', 'reject', 'retry'] as const;

/** Keys that tighten upwards (`_min`) or downwards (`_max`), as the daemon's set_thresholds reads them. */
function looser(key: string, value: number, own: number | undefined): boolean {
  if (own === undefined) return false;
  if (key.endsWith('_min')) return value < own;
  if (key.endsWith('_max')) return value > own;
  return false;
}

const obj = (v: unknown): Record<string, unknown> | null =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export class FleetState {
  private readonly devices = new Map<string, DeviceState>();
  private readonly now: () => number;
  private readonly maxSkewS: number;
  /** Messages ingested, and those ignored (not a device topic, not JSON). */
  readonly counters = { messages: 0, ignored: 0 };

  constructor(private readonly opts: FleetStateOptions) {
    this.now = opts.now ?? Date.now;
    this.maxSkewS = opts.maxSkewS ?? 5;
  }

  /** The topic filters the console needs (retained ones first). */
  filters(): { retained: string[]; stream: string[] } {
    const p = this.opts.prefix;
    return {
      retained: [`${p}/+/availability`, `${p}/+/info`],
      stream: [`${p}/+/health`, `${p}/+/+/decision`],
    };
  }

  get size(): number {
    return this.devices.size;
  }

  ingest(topic: string, payload: Buffer): void {
    this.counters.messages++;
    const prefix = `${this.opts.prefix}/`;
    if (!topic.startsWith(prefix)) return void this.counters.ignored++;
    const levels = topic.slice(prefix.length).split('/');
    const id = levels[0] as string;
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(id)) return void this.counters.ignored++;
    const kind = levels.length === 2 ? levels[1] : levels.length === 3 ? `camera/${levels[2]}` : '';
    if (kind === 'availability') this.availability(this.device(id), payload.toString('utf8'));
    else if (kind === 'info') this.info(this.device(id), payload);
    else if (kind === 'health') this.health(this.device(id), payload);
    else if (kind === 'camera/decision') this.decision(this.device(id), levels[1] as string, payload);
    else this.counters.ignored++;
  }

  private device(id: string): DeviceState {
    let d = this.devices.get(id);
    if (!d) {
      d = {
        id,
        online: false,
        availabilityAt: null,
        info: null,
        infoKey: null,
        keyChanged: false,
        health: null,
        skewS: null,
        lastSeen: null,
        lastRaw: null,
        lastCamera: null,
        lastReceived: 0,
        last: null,
        lastSeq: undefined,
        recent: [],
        unverified: 0,
      };
      this.devices.set(id, d);
    }
    return d;
  }

  private parse(payload: Buffer): Record<string, unknown> | null {
    try {
      return obj(JSON.parse(payload.toString('utf8')));
    } catch {
      this.counters.ignored++;
      return null;
    }
  }

  private availability(d: DeviceState, text: string): void {
    d.online = text === 'online';
    d.availabilityAt = this.now();
    if (d.online) d.lastSeen = this.now();
  }

  private info(d: DeviceState, payload: Buffer): void {
    const info = this.parse(payload);
    if (!info || info.device_id !== d.id) return;
    const key = str(info.decision_public_key);
    if (d.infoKey !== null && key !== d.infoKey) d.keyChanged = true;
    const before = this.keyOf(d).public_key;
    d.info = info;
    d.infoKey = key;
    // A key that arrives (or changes) after the decision: check that decision again.
    if (d.lastRaw && d.lastCamera && this.keyOf(d).public_key !== before) {
      d.lastSeq = undefined;
      d.last = this.verify(d, d.lastCamera, d.lastRaw, d.lastReceived, false);
    }
  }

  private health(d: DeviceState, payload: Buffer): void {
    const h = this.parse(payload);
    if (!h || h.device_id !== d.id) return;
    d.health = h;
    d.lastSeen = this.now();
    const ts = Date.parse(str(h.ts) ?? '');
    d.skewS = Number.isFinite(ts) ? Math.round((ts - this.now()) / 100) / 10 : null;
  }

  /** The key decisions of this device are checked with, and where it came from. */
  private keyOf(d: DeviceState): FleetDevice['key'] {
    const pinned = this.opts.pinnedKeys;
    if (pinned) {
      const k = pinned.get(d.id);
      return k ? { source: 'pinned', public_key: k } : { source: null, public_key: null };
    }
    return d.infoKey ? { source: 'info', public_key: d.infoKey } : { source: null, public_key: null };
  }

  private decision(d: DeviceState, cameraId: string, payload: Buffer): void {
    const now = this.now();
    d.lastSeen = now;
    d.lastRaw = payload;
    d.lastCamera = cameraId;
    d.lastReceived = now;
    d.last = this.verify(d, cameraId, payload, now, true);
    const outcome = d.last.decision;
    if (outcome) d.recent.push({ at: now, outcome });
    this.prune(d, now);
  }

  private verify(
    d: DeviceState,
    cameraId: string,
    payload: Buffer,
    at: number,
    count: boolean,
  ): FleetDecision {
    let fields: Record<string, unknown> = {};
    try {
      fields = obj(JSON.parse(payload.toString('utf8'))) ?? {};
    } catch {
      // Reported below as not_json by the strict check.
    }
    const key = this.keyOf(d).public_key;
    let problem: FleetDecision['problem'] = null;
    if (key === null) problem = 'no_key';
    else {
      let r: ReturnType<typeof checkDecision>;
      try {
        r = checkDecision(payload, key, {
          live: true,
          deviceId: d.id,
          cameraId,
          ...(d.lastSeq !== undefined ? { lastSeq: d.lastSeq } : {}),
        });
      } catch {
        // A key that is not an Ed25519 public key: nothing verifies with it.
        r = { ok: false, reason: 'bad_signature' };
      }
      if (r.ok) d.lastSeq = r.seq;
      else problem = r.reason;
    }
    if (problem !== null && count) d.unverified++;
    return {
      seq: num(fields.seq),
      camera_id: cameraId,
      decision: str(fields.decision),
      reason: str(fields.reason),
      ts: str(fields.ts),
      received_at: new Date(at).toISOString(),
      verified: problem === null,
      problem,
    };
  }

  private prune(d: DeviceState, now: number): void {
    const from = now - 60_000;
    let i = 0;
    while (i < d.recent.length && (d.recent[i] as { at: number }).at < from) i++;
    if (i) d.recent.splice(0, i);
  }

  /** The console's view: every device, sorted by id, with its flags. */
  snapshot(): FleetSnapshot {
    const now = this.now();
    const devices: FleetDevice[] = [];
    let online = 0;
    let flagged = 0;
    let perMin = 0;
    for (const id of [...this.devices.keys()].sort()) {
      const dev = this.view(this.devices.get(id) as DeviceState, now);
      devices.push(dev);
      if (dev.online) online++;
      if (dev.flags.length) flagged++;
      perMin += dev.decisions_per_min.accept + dev.decisions_per_min.reject + dev.decisions_per_min.retry;
    }
    return {
      generated_at: new Date(now).toISOString(),
      totals: { devices: devices.length, online, flagged, decisions_per_min: perMin },
      devices,
    };
  }

  device_view(id: string): FleetDevice | null {
    const d = this.devices.get(id);
    return d ? this.view(d, this.now()) : null;
  }

  private view(d: DeviceState, now: number): FleetDevice {
    this.prune(d, now);
    const info = d.info;
    const model = obj(info?.model);
    const overrides = obj(info?.threshold_overrides) as Record<string, number> | null;
    const own = obj(info?.model_thresholds) as Record<string, number> | null;
    const loosened = Object.entries(overrides ?? {})
      .filter(([k, v]) => typeof v === 'number' && looser(k, v, own?.[k]))
      .map(([k]) => k);
    const healthCams = Array.isArray(d.health?.cameras) ? (d.health.cameras as unknown[]).map(obj) : [];
    const infoCams = Array.isArray(info?.cameras) ? (info.cameras as unknown[]).map(obj) : [];
    const ids = [...new Set([...infoCams, ...healthCams].map((c) => str(c?.id)).filter((x) => x !== null))];
    const cameras = ids.map((cid) => {
      const i = infoCams.find((c) => c?.id === cid);
      const h = healthCams.find((c) => c?.id === cid);
      return { id: cid, kind: str(i?.kind), state: str(h?.state), capture_fps: num(h?.capture_fps) };
    });
    const fps = obj(d.health?.fps);
    const counts = { accept: 0, reject: 0, retry: 0 };
    for (const r of d.recent)
      if ((OUTCOMES as readonly string[]).includes(r.outcome)) counts[r.outcome as 'accept']++;
    const key = this.keyOf(d);
    const flags: FleetFlag[] = [];
    if (model && model.purpose !== 'production') flags.push('model_not_production');
    if (overrides && Object.keys(overrides).length) flags.push('thresholds_overridden');
    if (loosened.length) flags.push('thresholds_loosened');
    if (d.unverified > 0) flags.push('unverified_decision');
    if (this.opts.pinnedKeys) {
      if (key.public_key === null) flags.push('unknown_device');
      else if (d.infoKey !== null && d.infoKey !== key.public_key) flags.push('key_not_pinned');
    } else if (d.keyChanged) flags.push('key_changed');
    if (d.skewS !== null && Math.abs(d.skewS) > this.maxSkewS) flags.push('clock_skew');
    if (d.online && cameras.some((c) => c.state !== null && c.state !== 'running')) flags.push('camera_down');
    return {
      device_id: d.id,
      online: d.online,
      availability_at: d.availabilityAt === null ? null : new Date(d.availabilityAt).toISOString(),
      broker: str(info?.broker),
      software: str(obj(info?.software)?.version),
      model: model
        ? {
            name: str(model.name) ?? '?',
            version: str(model.version) ?? '?',
            purpose: str(model.purpose) ?? 'unknown',
          }
        : null,
      threshold_overrides: overrides,
      loosened_thresholds: loosened,
      cameras,
      fps: fps
        ? {
            capture: num(fps.capture) ?? 0,
            processed: num(fps.processed) ?? 0,
            dropped: num(fps.dropped) ?? 0,
          }
        : null,
      decisions_per_min: counts,
      clock_skew_s: d.skewS,
      key,
      last_decision: d.last,
      unverified_total: d.unverified,
      flags,
      last_seen: d.lastSeen === null ? null : new Date(d.lastSeen).toISOString(),
    };
  }
}

/**
 * Pinned fleet keys: a JSON object `{ "<device_id>": "<base64 raw Ed25519 public key>" }`
 * (the `decision_public_key` of each device's info, recorded at installation).
 */
export function parsePinnedKeys(text: string, source: string): Map<string, string> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new KioskError(ErrorCodes.FLEET_KEYS_INVALID, `${source}: not JSON (${(e as Error).message})`);
  }
  const o = obj(doc);
  if (!o)
    throw new KioskError(
      ErrorCodes.FLEET_KEYS_INVALID,
      `${source}: expected an object { "device_id": "base64 public key" }`,
    );
  const keys = new Map<string, string>();
  for (const [id, key] of Object.entries(o)) {
    if (typeof key !== 'string' || !/^[A-Za-z0-9+/]{43}=$/.test(key))
      throw new KioskError(
        ErrorCodes.FLEET_KEYS_INVALID,
        `${source}: the key of ${id} is not base64 of a raw 32-byte Ed25519 key`,
      );
    keys.set(id, key);
  }
  return keys;
}
