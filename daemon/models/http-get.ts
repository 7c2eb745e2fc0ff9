/**
 * One HTTP(S) GET for `model fetch`, on Node's own http/https: redirects followed (at most 5,
 * http and https only), a byte range to resume from, an idle timeout, and the usual proxy
 * variables (HTTPS_PROXY / HTTP_PROXY / NO_PROXY, lower case too): plain HTTP goes to the
 * proxy with the absolute URL, HTTPS through a CONNECT tunnel. Only `model fetch` downloads;
 * the daemon never does while it runs.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { ErrorCodes, KioskError } from '../../core/errors.js';

export interface GetOptions {
  /** Ask for the bytes from this offset on (Range); the server may answer 200 with all of them. */
  start?: number;
  /** No byte for this long: the request fails. */
  idleTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface GetResponse {
  status: number;
  /** The URL that answered (after redirects). */
  url: string;
  headers: IncomingMessage['headers'];
  body: IncomingMessage;
}

const MAX_REDIRECTS = 5;

const fail = (url: string, message: string, cause?: unknown) =>
  new KioskError(ErrorCodes.MODEL_DOWNLOAD_FAILED, `${url}: ${message}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { url },
  });

/** The proxy URL for a target, or null (NO_PROXY: host names, `.suffix`, `*`, optional ports). */
export function proxyFor(target: URL, env: NodeJS.ProcessEnv = process.env): URL | null {
  const pick = (...names: string[]) => names.map((n) => env[n]).find((v) => v !== undefined && v !== '');
  const raw =
    target.protocol === 'https:' ? pick('https_proxy', 'HTTPS_PROXY') : pick('http_proxy', 'HTTP_PROXY');
  if (!raw) return null;
  const host = target.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  for (const item of (pick('no_proxy', 'NO_PROXY') ?? '').split(/[\s,]+/).filter(Boolean)) {
    if (item === '*') return null;
    const [h = '', p] = item.toLowerCase().split(/:(?=\d+$)/);
    if (p && p !== port) continue;
    const bare = h.replace(/^\*?\./, '');
    if (host === bare || host.endsWith(`.${bare}`)) return null;
  }
  try {
    return new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch (cause) {
    throw fail(target.href, `proxy setting "${raw}" is not a URL`, cause);
  }
}

function proxyAuth(proxy: URL): Record<string, string> {
  if (!proxy.username) return {};
  const cred = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'proxy-authorization': `Basic ${Buffer.from(cred).toString('base64')}` };
}

/** A TLS socket to target through an HTTP CONNECT tunnel. */
function tunnel(proxy: URL, target: URL, timeoutMs: number): Promise<tls.TLSSocket> {
  const port = Number(target.port || 443);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: proxy.hostname,
      port: Number(proxy.port || 80),
      method: 'CONNECT',
      path: `${target.hostname}:${port}`,
      headers: { host: `${target.hostname}:${port}`, ...proxyAuth(proxy) },
      timeout: timeoutMs,
    });
    req.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(fail(target.href, `proxy ${proxy.host} refused CONNECT: HTTP ${res.statusCode}`));
        return;
      }
      // The handshake (certificate checked) completes here, so its failure is this call's error.
      const secure = tls.connect({ socket, servername: target.hostname });
      const onError = (e: Error) => {
        socket.destroy();
        reject(fail(target.href, e.message, e));
      };
      secure.once('error', onError);
      secure.once('secureConnect', () => {
        secure.off('error', onError);
        resolve(secure);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`proxy ${proxy.host} did not answer`)));
    req.on('error', (e) => reject(fail(target.href, `proxy ${proxy.host}: ${e.message}`, e)));
    req.end();
  });
}

async function once(target: URL, opts: GetOptions): Promise<IncomingMessage> {
  const timeoutMs = opts.idleTimeoutMs ?? 30_000;
  const headers: Record<string, string> = { 'user-agent': 'fghv-kiosk model fetch', accept: '*/*' };
  if (opts.start) headers.range = `bytes=${opts.start}-`;
  const proxy = proxyFor(target, opts.env);
  let request: http.ClientRequest;
  let tunnelled: tls.TLSSocket | null = null;
  if (proxy && target.protocol === 'https:') {
    const socket = await tunnel(proxy, target, timeoutMs);
    tunnelled = socket;
    request = https.request(target, { headers, agent: false, createConnection: () => socket });
  } else if (proxy) {
    request = http.request({
      host: proxy.hostname,
      port: Number(proxy.port || 80),
      path: target.href,
      headers: { ...headers, host: target.host, ...proxyAuth(proxy) },
    });
  } else {
    request = (target.protocol === 'https:' ? https : http).request(target, { headers });
  }
  return new Promise((resolve, reject) => {
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`no data for ${timeoutMs} ms`)));
    request.on('response', (res) => {
      // No agent owns a tunnel: close it once the response is read (or abandoned).
      if (tunnelled) res.once('close', () => tunnelled?.destroy());
      resolve(res);
    });
    request.on('error', (e) => reject(fail(target.href, e.message, e)));
    request.end();
  });
}

/** GET with redirects; the caller reads (and must consume or destroy) `body`. */
export async function httpGet(url: string, opts: GetOptions = {}): Promise<GetResponse> {
  let target: URL;
  try {
    target = new URL(url);
  } catch (cause) {
    throw fail(url, 'not a URL', cause);
  }
  for (let hop = 0; ; hop++) {
    if (target.protocol !== 'http:' && target.protocol !== 'https:')
      throw fail(target.href, `unsupported protocol ${target.protocol}`);
    const res = await once(target, opts);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (hop >= MAX_REDIRECTS) throw fail(url, `more than ${MAX_REDIRECTS} redirects`);
      target = new URL(res.headers.location, target);
      continue;
    }
    return { status, url: target.href, headers: res.headers, body: res };
  }
}
