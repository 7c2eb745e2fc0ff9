/**
 * The one rule for every file the daemon or a CLI reads because a configuration, a manifest,
 * a command or a command line named it (issue 24, finding 3): a regular file (symlinks are
 * followed; cameras may also name a character device, `/dev/video0`) of at most a stated size,
 * checked before a byte is read. `/dev/zero`, `/dev/urandom` or a FIFO named as a password
 * file, a model or an image is refused at once with a stable code, instead of growing the
 * process past its memory or blocking it forever.
 *
 * - `checkFile`: for a path handed to something that reads it itself (ONNX Runtime, OpenCV,
 *   ffmpeg); it stats the path.
 * - `readCheckedFile` / `readCheckedFileAsync`: open without blocking (a FIFO opens at once
 *   and is then refused), check the open descriptor (no race between check and read), read at
 *   most `maxBytes` (a file that grows meanwhile is refused, not read on).
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats, statSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { type ErrorCode, KioskError } from './errors.js';

/** Passwords, tokens, keys, certificates: a few kilobytes; anything larger is not one. */
export const MAX_SMALL_FILE_BYTES = 1 << 20;
/** Model files where no limit is configured: `model_update.max_model_mb`'s default (512). */
export const DEFAULT_MAX_MODEL_BYTES = 512 * 2 ** 20;

export interface FileRule {
  /** What the file is, as the user knows it (`mqtt.password_file`, `image`, `--labels`). */
  what: string;
  maxBytes: number;
  /** The code of every refusal (wrong kind, too large, unreadable). */
  code: ErrorCode;
  /** The code when the file does not exist (default: `code`). */
  missingCode?: ErrorCode;
  /** A character device is accepted too (cameras: V4L2 devices). Never for anything else. */
  allowCharDevice?: boolean;
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Why `st` breaks the rule, or null. */
function refusal(st: Stats, rule: FileRule): string | null {
  if (st.isFile()) {
    return st.size > rule.maxBytes ? `is ${st.size} bytes, more than the ${rule.maxBytes} allowed` : null;
  }
  if (rule.allowCharDevice && st.isCharacterDevice()) return null;
  return `is ${kindOf(st)}, not a regular file`;
}

function refuse(file: string, rule: FileRule, why: string, cause?: unknown): KioskError {
  const missing = (cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
  return new KioskError(
    missing ? (rule.missingCode ?? rule.code) : rule.code,
    `${rule.what} ${file} ${why}`,
    { ...(cause === undefined ? {} : { cause }), details: { path: file, max_bytes: rule.maxBytes } },
  );
}

/** A read filled the one byte past the size fstat gave: the file grew while it was read. */
function grew(got: number, rule: FileRule): string {
  return got > rule.maxBytes ? `grew past the ${rule.maxBytes} bytes allowed` : 'grew while it was read';
}

function cannotRead(e: unknown): string {
  return `cannot be read: ${(e as Error).message}`;
}

/** Checks `file` by the rule without reading it; returns its stats. Throws KioskError(rule.code). */
export function checkFile(file: string, rule: FileRule): Stats {
  let st: Stats;
  try {
    st = statSync(file);
  } catch (e) {
    throw refuse(file, rule, cannotRead(e), e);
  }
  const why = refusal(st, rule);
  if (why) throw refuse(file, rule, why);
  return st;
}

/**
 * Why `file` breaks the rule, in a few words (`does not exist`, `is a character device, not a
 * regular file`), or null; for reports such as `config check` and `doctor`.
 */
export function fileProblem(file: string, rule: FileRule): string | null {
  let st: Stats;
  try {
    st = statSync(file);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : cannotRead(e);
  }
  return refusal(st, rule);
}

// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/**
 * The one read procedure, written once for both callers: it yields each file operation it needs
 * and is handed its result, so `readCheckedFile` runs the operations synchronously and
 * `readCheckedFileAsync` awaits them (the same checks, in the same order, either way).
 */
type FileOp =
  | { op: 'open'; file: string }
  | { op: 'stat'; fd: FileRef }
  | { op: 'read'; fd: FileRef; buf: Buffer; at: number }
  | { op: 'close'; fd: FileRef };
type FileRef = number | FileHandle;

function* readProcedure(file: string, rule: FileRule): Generator<FileOp, Buffer, unknown> {
  let fd: FileRef;
  try {
    fd = (yield { op: 'open', file }) as FileRef;
  } catch (e) {
    throw refuse(file, rule, cannotRead(e), e);
  }
  try {
    const st = (yield { op: 'stat', fd }) as Stats;
    const why = refusal(st, { ...rule, allowCharDevice: false });
    if (why) throw refuse(file, rule, why);
    // One byte more than fstat said: a file that grew since is refused, not read on.
    const buf = Buffer.alloc(Math.min(st.size, rule.maxBytes) + 1);
    let got = 0;
    for (;;) {
      const n = (yield { op: 'read', fd, buf, at: got }) as number;
      if (n === 0) break;
      got += n;
      if (got === buf.length) break;
    }
    if (got === buf.length) throw refuse(file, rule, grew(got, rule));
    return buf.subarray(0, got);
  } catch (e) {
    if (e instanceof KioskError) throw e;
    throw refuse(file, rule, cannotRead(e), e);
  } finally {
    yield { op: 'close', fd };
  }
}

function runSync(o: FileOp): unknown {
  switch (o.op) {
    case 'open':
      return openSync(o.file, OPEN_FLAGS);
    case 'stat':
      return fstatSync(o.fd as number);
    case 'read':
      return readSync(o.fd as number, o.buf, o.at, o.buf.length - o.at, null);
    case 'close':
      return closeSync(o.fd as number);
  }
}

async function runAsync(o: FileOp): Promise<unknown> {
  switch (o.op) {
    case 'open':
      return open(o.file, OPEN_FLAGS);
    case 'stat':
      return (o.fd as FileHandle).stat();
    case 'read':
      return (await (o.fd as FileHandle).read(o.buf, o.at, o.buf.length - o.at, null)).bytesRead;
    case 'close':
      return (o.fd as FileHandle).close();
  }
}

/** Reads a regular file of at most rule.maxBytes (see the header). Throws KioskError(rule.code). */
export function readCheckedFile(file: string, rule: FileRule): Buffer {
  const steps = readProcedure(file, rule);
  let next = steps.next();
  while (!next.done) {
    let result: unknown;
    try {
      result = runSync(next.value);
    } catch (e) {
      next = steps.throw(e);
      continue;
    }
    next = steps.next(result);
  }
  return next.value;
}

/** readCheckedFile, off the event loop. */
export async function readCheckedFileAsync(file: string, rule: FileRule): Promise<Buffer> {
  const steps = readProcedure(file, rule);
  let next = steps.next();
  while (!next.done) {
    let result: unknown;
    try {
      result = await runAsync(next.value);
    } catch (e) {
      next = steps.throw(e);
      continue;
    }
    next = steps.next(result);
  }
  return next.value;
}

/** The text of readCheckedFile, as UTF-8. */
export function readCheckedText(file: string, rule: FileRule): string {
  return readCheckedFile(file, rule).toString('utf8');
}
