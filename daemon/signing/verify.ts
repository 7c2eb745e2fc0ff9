/**
 * The gate integrator's check of a decision: signature, device, expiry and replay. Pure apart
 * from the Ed25519 verification; the caller keeps `lastSeq` per device between calls.
 */
import { type KeyObject, verify } from 'node:crypto';
import { signedBytes } from './canonical-json.js';
import { publicKeyFrom } from './keys.js';

export type VerifyFailure =
  | 'not_an_object'
  | 'missing_signature'
  | 'bad_signature'
  | 'wrong_device'
  | 'expired'
  | 'replayed_seq';

export type VerifyResult = { ok: true; seq: number } | { ok: false; reason: VerifyFailure };

export interface VerifyOptions {
  /** When set, the decision must come from this device. */
  deviceId?: string;
  /** Wall clock in ms; when set, a decision past `expires_at` fails. Omit to check the signature only (audit). */
  now?: number;
  /** The highest seq already accepted from this device; a seq at or below it is a replay. */
  lastSeq?: number;
}

/** Signature only: true when `sig` is a valid Ed25519 signature by `publicKey` over the other fields. */
export function verifySignature(payload: unknown, publicKey: string | KeyObject): boolean {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return false;
  const sig = (payload as { sig?: unknown }).sig;
  if (typeof sig !== 'string') return false;
  const key = typeof publicKey === 'string' ? publicKeyFrom(publicKey) : publicKey;
  try {
    return verify(null, signedBytes(payload as Record<string, unknown>), key, Buffer.from(sig, 'base64'));
  } catch {
    return false;
  }
}

/** Everything a gate must check before acting on a decision. */
export function verifyDecision(
  payload: unknown,
  publicKey: string | KeyObject,
  opts: VerifyOptions = {},
): VerifyResult {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    return { ok: false, reason: 'not_an_object' };
  }
  const p = payload as { sig?: unknown; device_id?: unknown; expires_at?: unknown; seq?: unknown };
  if (typeof p.sig !== 'string') return { ok: false, reason: 'missing_signature' };
  if (!verifySignature(payload, publicKey)) return { ok: false, reason: 'bad_signature' };
  if (opts.deviceId !== undefined && p.device_id !== opts.deviceId)
    return { ok: false, reason: 'wrong_device' };
  if (opts.now !== undefined) {
    const expires = typeof p.expires_at === 'string' ? Date.parse(p.expires_at) : Number.NaN;
    if (!Number.isFinite(expires) || opts.now >= expires) return { ok: false, reason: 'expired' };
  }
  const seq = typeof p.seq === 'number' ? p.seq : Number.NaN;
  if (opts.lastSeq !== undefined && !(seq > opts.lastSeq)) return { ok: false, reason: 'replayed_seq' };
  return { ok: true, seq };
}
