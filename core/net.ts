/**
 * Address rules shared by the config check and the servers that bind or accept connections.
 */
import { isIP } from 'node:net';

/** True for addresses only this machine can reach: localhost, 127.0.0.0/8, ::1 (and v4-mapped 127/8). */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/**
 * The status page's bind rule as a message, or null when acceptable: beyond loopback a token
 * file is required (the page shows camera images). Used by the config schema and by the
 * status server's token resolution.
 */
export function statusBindProblem(status: { host: string; token_file: string | null }): string | null {
  if (isLoopbackHost(status.host) || status.token_file !== null) return null;
  return `status.host ${status.host} is not a loopback address: set status.token_file (bearer token or basic-auth password), or bind to 127.0.0.1`;
}
