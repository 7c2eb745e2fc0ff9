/**
 * Parsing and validating one command request, a pure function of the bytes, the topic's
 * command name and the policy. Every failure is an error code, never an exception: fuzzed
 * payloads (garbage, wrong types, huge strings, unknown commands) all end here.
 */
import { createHash, type KeyObject } from 'node:crypto';
import type { z } from 'zod';
import { type ErrorCode, ErrorCodes, isKioskError } from '../../../core/errors.js';
import { parseStrictJson } from '../signing/strict-json.js';
import { verifySignature } from '../signing/verify.js';
import { COMMANDS, type CommandTable, commandSpec } from './registry.js';

/** Each command's arguments (the schemas of the command table, registry.ts); unknown keys are refused. */
export const commandSchemas = Object.fromEntries(
  Object.entries(COMMANDS).map(([name, spec]) => [name, spec.schema]),
) as { readonly [C in CommandName]: (typeof COMMANDS)[C]['schema'] };

export type CommandName = keyof typeof COMMANDS;
export const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[];
export type CommandArgs<C extends CommandName> = z.infer<(typeof commandSchemas)[C]>;

/**
 * Commands that change what the device decides or runs (`mutates` in the command table). They
 * always need a request signed by a fleet key (`commands.fleet_public_keys`), whatever
 * `require_signature` says: with no key configured they are refused, so a default install
 * hands nothing to the broker's clients.
 */
export const MUTATING_COMMANDS: ReadonlySet<CommandName> = new Set(
  COMMAND_NAMES.filter((name) => COMMANDS[name].mutates),
);

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
  /** The commands known (default: the device's table, COMMANDS in registry.ts). */
  commands?: CommandTable;
}

export type ParsedRequest =
  | {
      ok: true;
      /** A name of the policy's command table (a CommandName with the default table). */
      command: string;
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
  const table = policy.commands ?? COMMANDS;
  const spec = commandSpec(table, command);
  if (!spec) {
    return fail(
      ErrorCodes.COMMAND_UNKNOWN,
      `unknown command (known: ${Object.keys(table).join(', ')})`,
      transaction,
    );
  }
  const name = command;
  const parsed = spec.schema.safeParse(body);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first?.path.length ? first.path.join('.') : '(request)';
    return fail(
      ErrorCodes.COMMAND_INVALID,
      `${where}: ${first?.message ?? 'invalid'}`.slice(0, 300),
      transaction,
    );
  }
  const mutating = spec.mutates;
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
  command: string,
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
