/**
 * The command table: one entry per command, with everything the device knows of it: the
 * request schema (unknown keys refused), whether it changes the device (then it needs a fleet
 * signature, see request.ts) and the handler that runs it against the daemon (CommandTarget).
 * The parser (request.ts), the command server (command-server.ts) and the advertised command
 * list (contract-services.ts) all read this table; adding a command is one entry here, plus
 * its JSON Schema in contract/schemas/ and a line in the README (docs/architecture.md).
 */
import { z } from 'zod';
import { ErrorCodes, KioskError } from '../../../core/errors.js';

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'lower-case hex sha256');

/** The fields every request may carry (transaction echo and the signature's envelope). */
export const envelope = {
  transaction: z.unknown().optional(),
  sig: z.string().max(200).optional(),
  ts: z.string().max(64).optional(),
  command: z.string().max(64).optional(),
  device_id: z.string().max(64).optional(),
};

/** What the commands reach inside the daemon (daemon-target.ts builds it). */
export interface CommandTarget {
  healthCheck(): Promise<unknown>;
  getConfig(): unknown;
  setThresholds(thresholds: Record<string, number>): Promise<unknown>;
  reloadConfig(): Promise<unknown>;
  /** Absent until the model install/switch logic exists: model_update then answers NOT_IMPLEMENTED. */
  updateModel?: (req: {
    model: string;
    manifest: string;
    sha256?: string;
    manifest_sha256?: string;
    signature?: string;
  }) => Promise<unknown>;
  /** Called after the `restart` response was sent. */
  restart(): void;
  /**
   * request/verify. `signed` (a fleet signature): the camera's held person is released and its
   * next decision returned, or a timeout. Unsigned: the camera's current state only, no release
   * and no decision (issue 24, finding 2).
   */
  verify?: (cameraId: string, timeoutMs: number, signed: boolean) => Promise<unknown>;
}

/** One command: its schema, whether it changes the device, and how it runs. */
export interface CommandSpec<S extends z.ZodType = z.ZodType> {
  readonly schema: S;
  /**
   * Changes what the device decides or runs. Such a command always needs a request signed by
   * a fleet key (`commands.fleet_public_keys`), whatever `require_signature` says: with no key
   * configured it is refused, so a default install hands nothing to the broker's clients.
   */
  readonly mutates: boolean;
  /** Runs beside the one-at-a-time queue (it waits on something else, such as a camera). */
  readonly concurrent?: boolean;
  /** The answer's `data`; a throw is answered with its KioskError code. */
  run(target: CommandTarget, args: z.output<S>, ctx: { signed: boolean }): unknown;
  /** Called once the response was sent (a restart must answer before it stops). */
  afterResponse?(target: CommandTarget): void;
}

/** Typed entry: the handler sees the arguments its schema parses. */
export function command<S extends z.ZodType>(spec: CommandSpec<S>): CommandSpec<S> {
  return spec;
}

/** A table of commands by name (the topic's last level). */
export type CommandTable = Readonly<Record<string, CommandSpec>>;

export const COMMANDS = {
  health_check: command({
    schema: z.strictObject({ ...envelope }),
    mutates: false,
    run: (t) => t.healthCheck(),
  }),
  get_config: command({
    schema: z.strictObject({ ...envelope }),
    mutates: false,
    run: (t) => t.getConfig(),
  }),
  set_thresholds: command({
    schema: z.strictObject({
      ...envelope,
      thresholds: z
        .record(z.string().regex(/^[a-z_]{1,32}$/), z.number().finite())
        .refine((t) => Object.keys(t).length > 0 && Object.keys(t).length <= 16, '1 to 16 thresholds'),
    }),
    mutates: true,
    run: (t, a) => t.setThresholds(a.thresholds),
  }),
  reload_config: command({
    schema: z.strictObject({ ...envelope }),
    mutates: true,
    run: (t) => t.reloadConfig(),
  }),
  model_update: command({
    schema: z.strictObject({
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
    mutates: true,
    run: (t, { model, manifest, sha256, manifest_sha256, signature }) => {
      if (!t.updateModel) {
        throw new KioskError(
          ErrorCodes.NOT_IMPLEMENTED,
          'model_update: model install/switch is not in this build yet',
        );
      }
      return t.updateModel({
        model,
        manifest,
        ...(sha256 ? { sha256 } : {}),
        ...(manifest_sha256 ? { manifest_sha256 } : {}),
        ...(signature ? { signature } : {}),
      });
    },
  }),
  restart: command({
    schema: z.strictObject({ ...envelope }),
    mutates: true,
    run: () => ({ restarting: true }),
    afterResponse: (t) => t.restart(),
  }),
  /**
   * Fleet-signed: decide the person in front of camera `camera_id` again now (one decision per
   * presence holds a decided person; a re-verification is for a gate that timed out before the
   * person passed): answered with that camera's next decision payload, or a timeout. Unsigned:
   * answered with the camera's current state only (`{decision: null, signed: false, state}`),
   * no release, so no client on the broker can make a second live accept for one presence.
   * It waits for the camera (up to its timeout_ms): it runs beside the queue, never holding up
   * other commands.
   */
  verify: command({
    schema: z.strictObject({
      ...envelope,
      camera_id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/),
      timeout_ms: z.number().int().min(100).max(10_000).default(5000),
    }),
    mutates: false,
    concurrent: true,
    run: (t, a, { signed }) => {
      if (!t.verify) throw new KioskError(ErrorCodes.NOT_IMPLEMENTED, 'verify: not in this build');
      return t.verify(a.camera_id, a.timeout_ms, signed);
    },
  }),
} as const satisfies CommandTable;

/** The entry for a topic's command name, or undefined (never an inherited property such as `__proto__`). */
export function commandSpec(table: CommandTable, name: string): CommandSpec | undefined {
  return Object.hasOwn(table, name) ? table[name] : undefined;
}
