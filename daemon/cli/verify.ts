/**
 * `fghv-kiosk verify`: checks decisions (one JSON per line, from files or stdin) against a
 * device public key, for gate integrators and auditors. Exit 0 when every line verifies.
 * Audit copies verify by default; `--live` (with `--device`, `--camera`, `--check-expiry`)
 * applies a gate's checks.
 */
import { parseArgs } from 'node:util';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { MAX_SMALL_FILE_BYTES, readCheckedText } from '../../core/file-rule.js';
import { publicKeyFrom } from '../contract/signing/keys.js';
import { checkDecision } from '../contract/signing/verify.js';

/** Decision logs given as files: one JSON line per decision, at most this many bytes a file. */
export const MAX_DECISION_LOG_BYTES = 256 * 2 ** 20;

export function runVerify(args: string[], stdinText: () => string, out: (line: string) => void): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      key: { type: 'string' },
      info: { type: 'string' },
      device: { type: 'string' },
      camera: { type: 'string' },
      /** Gate mode: the decision must be a live delivery (not an audit copy). */
      live: { type: 'boolean', default: false },
      'check-expiry': { type: 'boolean', default: false },
    },
  });
  let keyText = values.key;
  if (!keyText && values.info) {
    // Files by the file rule (core/file-rule.ts): regular files of a bounded size.
    const infoText = readCheckedText(values.info, {
      what: '--info',
      maxBytes: MAX_SMALL_FILE_BYTES,
      code: ErrorCodes.USAGE,
    });
    const info = JSON.parse(infoText) as { decision_public_key?: unknown };
    if (typeof info.decision_public_key === 'string') keyText = info.decision_public_key;
  }
  if (!keyText)
    throw new KioskError(
      ErrorCodes.USAGE,
      'verify: give --key BASE64 or --info FILE with decision_public_key',
    );
  const key = publicKeyFrom(keyText);
  const texts = positionals.length
    ? positionals.map((f) =>
        readCheckedText(f, {
          what: 'decision file',
          maxBytes: MAX_DECISION_LOG_BYTES,
          code: ErrorCodes.USAGE,
        }),
      )
    : [stdinText()];
  let lastSeq: number | undefined;
  let failed = 0;
  for (const line of texts.join('\n').split('\n')) {
    if (!line.trim()) continue;
    const r = checkDecision(line, key, {
      live: values.live,
      ...(values.device ? { deviceId: values.device } : {}),
      ...(values.camera ? { cameraId: values.camera } : {}),
      ...(values['check-expiry'] ? { now: Date.now() } : {}),
      ...(lastSeq !== undefined ? { lastSeq } : {}),
    });
    if (r.ok) {
      lastSeq = r.seq;
      const { id, delivery } = JSON.parse(line) as { id?: unknown; delivery?: unknown };
      out(`ok seq=${r.seq} id=${String(id)} delivery=${String(delivery ?? 'unknown')}`);
    } else {
      out(`FAIL ${r.reason}`);
      failed++;
    }
  }
  return failed ? 1 : 0;
}
