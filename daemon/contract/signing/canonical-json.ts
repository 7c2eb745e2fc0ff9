/**
 * Canonical JSON for signatures (the JSON Canonicalization Scheme of RFC 8785 for the values a
 * payload holds): object keys sorted by UTF-16 code units, no whitespace, numbers and strings
 * as ECMAScript's JSON.stringify writes them. Signer and verifier must produce identical
 * bytes, whatever order the fields arrived in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('canonical JSON: non-finite number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value))
    return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  throw new TypeError(`canonical JSON: cannot encode a ${typeof value}`);
}

/**
 * The bytes a decision (or signed command request) signature covers: every field except
 * `sig` itself and `replayed` (transport metadata the audit outbox adds on re-delivery).
 */
export function signedBytes(payload: Record<string, unknown>): Buffer {
  const { sig: _sig, replayed: _replayed, ...rest } = payload;
  return Buffer.from(canonicalJson(rest), 'utf8');
}
