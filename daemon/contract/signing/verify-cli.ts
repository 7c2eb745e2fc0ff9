/**
 * `fghv-kiosk verify`: checks decisions (one JSON per line, from files or stdin) against a
 * device public key, for gate integrators and auditors. Exit 0 when every line verifies.
 * Audit copies verify by default; `--live` (with `--device`, `--camera`, `--check-expiry`)
 * applies a gate's checks.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ErrorCodes, KioskError } from '../../../core/errors.js';
import { publicKeyFrom } from './keys.js';
import { checkDecision } from './verify.js';

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
    const info = JSON.parse(readFileSync(values.info, 'utf8')) as { decision_public_key?: unknown };
    if (typeof info.decision_public_key === 'string') keyText = info.decision_public_key;
  }
  if (!keyText)
    throw new KioskError(
      ErrorCodes.USAGE,
      'verify: give --key BASE64 or --info FILE with decision_public_key',
    );
  const key = publicKeyFrom(keyText);
  const texts = positionals.length ? positionals.map((f) => readFileSync(f, 'utf8')) : [stdinText()];
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
