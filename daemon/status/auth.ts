/**
 * Who may see the status page. On loopback with no token the page is open to local users
 * only, and the Host header must name loopback too: otherwise any web site the operator
 * visits could DNS-rebind its name to 127.0.0.1 and read the preview. Beyond loopback a
 * token is required (start refuses otherwise); it is accepted as a bearer token (scrapers)
 * or as the basic-auth password with any user name (browsers).
 */
import { timingSafeEqual } from 'node:crypto';
import type { Config } from '../../config/schema.js';
import { ErrorCodes, isKioskError, KioskError } from '../../core/errors.js';
import { MAX_SMALL_FILE_BYTES, readCheckedText } from '../../core/file-rule.js';
import { isLoopbackHost, statusBindProblem } from '../../core/net.js';

/** Shorter tokens are refused: the page shows camera images. */
export const MIN_TOKEN_LENGTH = 16;

/**
 * The Host header check against DNS rebinding, applied when no token protects the page:
 * the host part must be a loopback name or address (any port; a reverse proxy may remap it).
 */
export function hostHeaderIsLoopback(hostHeader: string | undefined): boolean {
  if (!hostHeader) return false;
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(hostHeader.trim());
  return m !== null && isLoopbackHost(m[1] as string);
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  // Compare in constant time; the length check leaks only the length.
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Does this Authorization header carry the token (bearer, or basic-auth password)? */
export function authorizationMatches(header: string | undefined, token: string): boolean {
  if (!header) return false;
  const m = /^(\S+)\s+(\S+)\s*$/.exec(header);
  if (!m) return false;
  const scheme = (m[1] as string).toLowerCase();
  const value = m[2] as string;
  if (scheme === 'bearer') return sameSecret(value, token);
  if (scheme !== 'basic') return false;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 && sameSecret(decoded.slice(colon + 1), token);
}

export type AccessVerdict = 'ok' | 'unauthorized' | 'bad_host';

/** The per-request decision: token when one is configured, loopback Host otherwise. */
export function checkAccess(
  token: string | null,
  headers: { authorization?: string | undefined; host?: string | undefined },
): AccessVerdict {
  if (token !== null) return authorizationMatches(headers.authorization, token) ? 'ok' : 'unauthorized';
  return hostHeaderIsLoopback(headers.host) ? 'ok' : 'bad_host';
}

/**
 * The token the page requires, or null (loopback without token_file). Throws
 * KIOSK_E_STATUS_AUTH_CONFIG when binding beyond loopback without a token, or when the token
 * file is unreadable, empty or too short.
 */
export function resolveStatusToken(
  status: Pick<Config['status'], 'host' | 'token_file'>,
  read: (file: string) => string = (f) =>
    // A regular file of at most 1 MiB, checked before reading: /dev/zero or a FIFO is refused at once.
    readCheckedText(f, {
      what: 'status.token_file',
      maxBytes: MAX_SMALL_FILE_BYTES,
      code: ErrorCodes.STATUS_AUTH_CONFIG,
    }),
): string | null {
  const problem = statusBindProblem(status);
  if (problem)
    throw new KioskError(ErrorCodes.STATUS_AUTH_CONFIG, problem, { details: { host: status.host } });
  if (status.token_file === null) return null;
  let text: string;
  try {
    text = read(status.token_file);
  } catch (cause) {
    if (isKioskError(cause)) throw cause;
    throw new KioskError(
      ErrorCodes.STATUS_AUTH_CONFIG,
      `cannot read status.token_file ${status.token_file}`,
      {
        cause,
        details: { token_file: status.token_file },
      },
    );
  }
  const token = (text.split(/\r?\n/)[0] ?? '').trim();
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new KioskError(
      ErrorCodes.STATUS_AUTH_CONFIG,
      `status.token_file ${status.token_file}: the token's first line must hold at least ${MIN_TOKEN_LENGTH} characters (it has ${token.length})`,
      { details: { token_file: status.token_file } },
    );
  }
  return token;
}
