/**
 * The gate integrator's check of a decision: signature (strict base64), delivery kind, device,
 * camera, expiry and replay. Pure apart from the Ed25519 verification; the caller keeps
 * `lastSeq` per device between calls. Give it the message bytes as received, so duplicate keys
 * and absurd nesting are refused before anything is read from them.
 */
import { type KeyObject, verify } from 'node:crypto';
import { MAX_DECISION_EXPIRY_S } from '../../../config/schema.js';
import { signedBytes } from './canonical-json.js';
import { publicKeyFrom } from './keys.js';
import { parseStrictJson } from './strict-json.js';

export type VerifyFailure =
  | 'not_an_object'
  | 'not_json'
  | 'too_deep'
  | 'duplicate_key'
  | 'missing_signature'
  | 'bad_signature'
  | 'not_live'
  | 'wrong_device'
  | 'wrong_camera'
  | 'expired'
  | 'replayed_seq'
  /** `seq` absent, not an integer, negative or beyond 2^53 - 1. */
  | 'bad_seq'
  /** `ts` or `expires_at` absent, or `expires_at` not within MAX_DECISION_EXPIRY_S after `ts`. */
  | 'bad_expiry';

export type VerifyResult = { ok: true; seq: number } | { ok: false; reason: VerifyFailure };

/** What a gate must state before it may act on a decision: whose, which camera, and when. */
export interface VerifyOptions {
  /** The device the gate trusts (its `device_id`). */
  deviceId: string;
  /** The camera in front of this gate: a decision of another camera never opens it. */
  cameraId: string;
  /** Wall clock in ms: a decision at or past `expires_at` fails. */
  now: number;
  /** The highest seq already accepted from this device; a seq at or below it is a replay. */
  lastSeq?: number;
}

/** Audit and tooling checks: each given field is checked; `live` requires a live delivery. */
export interface CheckOptions extends Partial<VerifyOptions> {
  live?: boolean;
}

/** Ed25519 signatures are 64 bytes: exactly 88 base64 characters, no junk, padding required. */
const SIGNATURE_B64 = /^[A-Za-z0-9+/]{86}==$/;
/** A decision is a flat record of small objects: nothing legitimate nests deeper. */
const MAX_DEPTH = 8;

/** Signature only: true when `sig` is a valid Ed25519 signature by `publicKey` over the other fields. */
export function verifySignature(payload: unknown, publicKey: string | KeyObject): boolean {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return false;
  const sig = (payload as { sig?: unknown }).sig;
  if (typeof sig !== 'string' || !SIGNATURE_B64.test(sig)) return false;
  const key = typeof publicKey === 'string' ? publicKeyFrom(publicKey) : publicKey;
  try {
    return verify(null, signedBytes(payload as Record<string, unknown>), key, Buffer.from(sig, 'base64'));
  } catch {
    return false;
  }
}

/** The payload as an object: parsed strictly from text or bytes, or taken as given. */
function asPayload(input: unknown): { ok: true; value: unknown } | { ok: false; reason: VerifyFailure } {
  if (typeof input !== 'string' && !Buffer.isBuffer(input)) return { ok: true, value: input };
  const parsed = parseStrictJson(input, { maxDepth: MAX_DEPTH, rejectDuplicateKeys: true });
  if (parsed.ok) return parsed;
  return { ok: false, reason: parsed.reason === 'not_utf8' ? 'not_json' : parsed.reason };
}

/** The checks the options ask for, in order; `verifyDecision` is the gate's complete form. */
export function checkDecision(
  input: unknown,
  publicKey: string | KeyObject,
  opts: CheckOptions = {},
): VerifyResult {
  const parsed = asPayload(input);
  if (!parsed.ok) return parsed;
  const payload = parsed.value;
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    return { ok: false, reason: 'not_an_object' };
  }
  const p = payload as {
    sig?: unknown;
    device_id?: unknown;
    camera_id?: unknown;
    expires_at?: unknown;
    seq?: unknown;
    delivery?: unknown;
    ts?: unknown;
  };
  if (typeof p.sig !== 'string') return { ok: false, reason: 'missing_signature' };
  if (!verifySignature(payload, publicKey)) return { ok: false, reason: 'bad_signature' };
  // Only a signed `delivery: live` counts: audit copies (and decisions signed before the
  // delivery kind existed) can never be presented to a gate as live.
  if (opts.live && p.delivery !== 'live') return { ok: false, reason: 'not_live' };
  // Bounds a correctly signed payload must still keep (issue 24, finding 9): a seq of 1e300 or
  // none would end a gate's replay check for good, an expiry in 2099 its expiry check.
  const seq = p.seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0)
    return { ok: false, reason: 'bad_seq' };
  const ts = typeof p.ts === 'string' ? Date.parse(p.ts) : Number.NaN;
  const until = typeof p.expires_at === 'string' ? Date.parse(p.expires_at) : Number.NaN;
  if (!(until - ts > 0 && until - ts <= MAX_DECISION_EXPIRY_S * 1000))
    return { ok: false, reason: 'bad_expiry' };
  if (opts.deviceId !== undefined && p.device_id !== opts.deviceId)
    return { ok: false, reason: 'wrong_device' };
  if (opts.cameraId !== undefined && p.camera_id !== opts.cameraId)
    return { ok: false, reason: 'wrong_camera' };
  if (opts.now !== undefined) {
    const expires = typeof p.expires_at === 'string' ? Date.parse(p.expires_at) : Number.NaN;
    if (!Number.isFinite(expires) || opts.now >= expires) return { ok: false, reason: 'expired' };
  }
  if (opts.lastSeq !== undefined && !(seq > opts.lastSeq)) return { ok: false, reason: 'replayed_seq' };
  return { ok: true, seq };
}

/**
 * Everything a gate must check before acting on a decision: pass the message as received
 * (string or bytes), the device key from `info` pinned at installation, and the device and
 * camera this gate belongs to.
 */
export function verifyDecision(
  input: unknown,
  publicKey: string | KeyObject,
  opts: VerifyOptions,
): VerifyResult {
  return checkDecision(input, publicKey, { ...opts, live: true });
}
