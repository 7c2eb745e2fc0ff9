/**
 * Parsing and validating one command request, a pure function of the bytes, the topic's
 * command name and the policy. Every failure is an error code, never an exception: fuzzed
 * payloads (garbage, wrong types, huge strings, unknown commands) all end here.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { type ErrorCode, ErrorCodes, isKioskError } from '../../../core/errors.js';
import { parseStrictJson } from '../signing/strict-json.js';
import { verifySignature } from '../signing/verify.js';

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'lower-case hex sha256');
const envelope = {
  transaction: z.unknown().optional(),
  sig: z.string().max(200).optional(),
  ts: z.string().max(64).optional(),
  command: z.string().max(64).optional(),
  device_id: z.string().max(64).optional(),
};

/** Each command's arguments; unknown keys are refused. */
export const commandSchemas = {
  health_check: z.strictObject({ ...envelope }),
  get_config: z.strictObject({ ...envelope }),
  set_thresholds: z.strictObject({
    ...envelope,
    thresholds: z
      .record(z.string().regex(/^[a-z_]{1,32}$/), z.number().finite())
      .refine((t) => Object.keys(t).length > 0 && Object.keys(t).length <= 16, '1 to 16 thresholds'),
  }),
  reload_config: z.strictObject({ ...envelope }),
  model_update: z.strictObject({
    ...envelope,
    /** Model file and its manifest, in model_update.incoming_dir (copied there by the fleet's file transfer). */
    model: z.string().min(1).max(4096),
    manifest: z.string().min(1).max(4096),
    /** When given, must equal the manifest's sha256 (the install checks the file against the manifest). */
    sha256: sha256Hex.optional(),
    /** sha256 of the manifest file's bytes: required (with sha256) when no model key is configured. */
    manifest_sha256: sha256Hex.optional(),
    /** Base64 Ed25519 signature over model and manifest (modelSignedBytes), checked against model_update's key. */
    signature: z.string().max(200).optional(),
  }),
  restart: z.strictObject({ ...envelope }),
  /**
   * Fleet-signed: decide the person in front of camera `camera_id` again now (one decision per
   * presence holds a decided person; a re-verification is for a gate that timed out before the
   * person passed): answered with that camera's next decision payload, or a timeout. Unsigned:
   * answered with the camera's current state only (`{decision: null, signed: false, state}`),
   * no release, so no client on the broker can make a second live accept for one presence.
   */
  verify: z.strictObject({
    ...envelope,
    camera_id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/),
    timeout_ms: z.number().int().min(100).max(10_000).default(5000),
  }),
} as const;

export type CommandName = keyof typeof commandSchemas;
export const COMMAND_NAMES = Object.keys(commandSchemas) as CommandName[];
export type CommandArgs<C extends CommandName> = z.infer<(typeof commandSchemas)[C]>;

/**
 * Commands that change what the device decides or runs. They always need a request signed by
 * a fleet key (`commands.fleet_public_keys`), whatever `require_signature` says: with no key
 * configured they are refused, so a default install hands nothing to the broker's clients.
 */
export const MUTATING_COMMANDS: ReadonlySet<CommandName> = new Set([
  'set_thresholds',
  'model_update',
  'reload_config',
  'restart',
]);

/** Nesting depth of a request, at most: checked on the bytes, before anything is built from them. */
export const MAX_REQUEST_DEPTH = 16;

/** Remembers executed signed requests until their `ts` leaves the skew window (see replay-store.ts). */
export interface ReplayGuard {
  has(digest: string): boolean;
  add(digest: string, forgetAfterMs: number): void;
}

export interface RequestPolicy {
  deviceId: string;
  maxBytes: number;
  /** Read-only commands must be signed too. */
  requireSignature: boolean;
  fleetKeys: KeyObject[];
  maxSkewS: number;
  now: number;
  /** Signatures already used (replay guard); the parser adds to it. */
  seenSignatures?: ReplayGuard;
}

export type ParsedRequest =
  | {
      ok: true;
      command: CommandName;
      transaction: unknown;
      args: Record<string, unknown>;
      /** The request carried a valid fleet signature. */
      signed: boolean;
    }
  | { ok: false; command: string; transaction: unknown; code: ErrorCode; message: string };

export function parseCommandRequest(command: string, bytes: Buffer, policy: RequestPolicy): ParsedRequest {
  const fail = (code: ErrorCode, message: string, transaction: unknown = null): ParsedRequest => ({
    ok: false,
    command,
    transaction,
    code,
    message,
  });
  if (bytes.length > policy.maxBytes) {
    return fail(ErrorCodes.COMMAND_TOO_LARGE, `request of ${bytes.length} bytes exceeds ${policy.maxBytes}`);
  }
  const json = parseStrictJson(bytes, { maxDepth: MAX_REQUEST_DEPTH, rejectDuplicateKeys: true });
  if (!json.ok) {
    return fail(
      ErrorCodes.COMMAND_MALFORMED,
      json.reason === 'too_deep'
        ? `request nests deeper than ${MAX_REQUEST_DEPTH} levels`
        : json.reason === 'duplicate_key'
          ? 'request has a duplicate key'
          : 'request is not UTF-8 JSON',
    );
  }
  const body = json.value;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return fail(ErrorCodes.COMMAND_MALFORMED, 'request must be a JSON object');
  }
  const transaction = (body as { transaction?: unknown }).transaction ?? null;
  if (!Object.hasOwn(commandSchemas, command)) {
    return fail(
      ErrorCodes.COMMAND_UNKNOWN,
      `unknown command (known: ${COMMAND_NAMES.join(', ')})`,
      transaction,
    );
  }
  const name = command as CommandName;
  const parsed = commandSchemas[name].safeParse(body);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first?.path.length ? first.path.join('.') : '(request)';
    return fail(
      ErrorCodes.COMMAND_INVALID,
      `${where}: ${first?.message ?? 'invalid'}`.slice(0, 300),
      transaction,
    );
  }
  const mutating = MUTATING_COMMANDS.has(name);
  if (mutating && policy.fleetKeys.length === 0) {
    return fail(
      ErrorCodes.COMMAND_UNSIGNED,
      `${name} changes the device: it is off until commands.fleet_public_keys holds a fleet key, and then needs a signed request`,
      transaction,
    );
  }
  const signed = typeof (body as { sig?: unknown }).sig === 'string';
  if (policy.requireSignature || mutating || signed) {
    const refusal = checkSignature(name, body as Record<string, unknown>, policy);
    if (refusal) return fail(refusal.code, refusal.message, transaction);
  }
  return { ok: true, command: name, transaction, args: parsed.data as Record<string, unknown>, signed };
}

/**
 * A signed request names its command and device and carries a fresh `ts`, all under the
 * signature, so it cannot be replayed to another command, another device or later on.
 */
function checkSignature(
  command: CommandName,
  body: Record<string, unknown>,
  policy: RequestPolicy,
): { code: ErrorCode; message: string } | null {
  if (typeof body.sig !== 'string')
    return { code: ErrorCodes.COMMAND_UNSIGNED, message: 'request must be signed' };
  if (policy.fleetKeys.length === 0)
    return { code: ErrorCodes.COMMAND_SIGNATURE_INVALID, message: 'no fleet key is configured' };
  if (body.command !== command || body.device_id !== policy.deviceId) {
    return {
      code: ErrorCodes.COMMAND_SIGNATURE_INVALID,
      message: 'signed request must name this command and device',
    };
  }
  const ts = typeof body.ts === 'string' ? Date.parse(body.ts) : Number.NaN;
  if (!Number.isFinite(ts) || Math.abs(policy.now - ts) > policy.maxSkewS * 1000) {
    return {
      code: ErrorCodes.COMMAND_SIGNATURE_INVALID,
      message: 'request ts missing or outside the allowed clock skew',
    };
  }
  if (!policy.fleetKeys.some((k) => verifySignature(body, k))) {
    return {
      code: ErrorCodes.COMMAND_SIGNATURE_INVALID,
      message: 'signature does not verify with any fleet key',
    };
  }
  const digest = createHash('sha256').update(body.sig).digest('hex');
  if (policy.seenSignatures?.has(digest)) {
    return { code: ErrorCodes.COMMAND_SIGNATURE_INVALID, message: 'request already executed (replay)' };
  }
  try {
    policy.seenSignatures?.add(digest, ts + policy.maxSkewS * 1000);
  } catch (err) {
    // Not remembered, not run: a replay could not be detected later.
    return {
      code: isKioskError(err) ? err.code : ErrorCodes.COMMAND_FAILED,
      message: err instanceof Error ? err.message : String(err),
    };
  }
  return null;
}
