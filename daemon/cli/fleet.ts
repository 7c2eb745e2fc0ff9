/**
 * `fghv-kiosk fleet`: a console for many devices, built on their own topics. MQTT side: one
 * connection takes the retained `availability` and `info` of every device; the stream topics
 * (`health`, `<camera>/decision`) are spread over `connections` connections with a shared
 * subscription (`$share/<group>/...`, one group per console process), so the broker hands each
 * message to one of them. HTTP side: the page (`/`) and `/api/fleet` (JSON), with the status
 * page's access rule: loopback only (Host header checked against DNS rebinding) unless a token
 * protects it.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connectAsync, type MqttClient } from 'mqtt';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { redactSecrets } from '../../core/log.js';
import { checkAccess, resolveStatusToken } from '../status/auth.js';
import { COMMON_HEADERS, PAGE_CSP } from '../status/status-server.js';
import { FLEET_PAGE_HTML } from './fleet/page.js';
import { FleetState, parsePinnedKeys } from './fleet/state.js';

export interface FleetConsoleOptions {
  brokerUrl: string;
  prefix: string;
  host: string;
  port: number;
  /** Required beyond loopback (bearer token, or basic-auth password). */
  tokenFile: string | null;
  /** `{ "<device_id>": "<base64 key>" }`; null: keys from each device's info. */
  pinnedKeysFile: string | null;
  /** Connections sharing the stream topics (shared subscription). Default 2. */
  connections?: number;
  username?: string | null;
  password?: string | null;
  /** PEM CA for mqtts:// brokers. */
  ca?: Buffer;
  log?: (line: string) => void;
}

export class FleetConsole {
  readonly state: FleetState;
  private readonly clients: MqttClient[] = [];
  private server: Server | null = null;
  private boundUrl = '';
  private readonly token: string | null;

  private constructor(private readonly opts: FleetConsoleOptions) {
    this.token = resolveStatusToken({ host: opts.host, token_file: opts.tokenFile });
    let pinned: Map<string, string> | null = null;
    if (opts.pinnedKeysFile !== null) {
      let text: string;
      try {
        text = readFileSync(opts.pinnedKeysFile, 'utf8');
      } catch (cause) {
        throw new KioskError(
          ErrorCodes.FLEET_KEYS_INVALID,
          `cannot read the fleet keys file ${opts.pinnedKeysFile}`,
          {
            cause,
          },
        );
      }
      pinned = parsePinnedKeys(text, opts.pinnedKeysFile);
    }
    this.state = new FleetState({ prefix: opts.prefix, pinnedKeys: pinned });
  }

  /** Connects (KIOSK_E_MQTT_CONNECT when the broker does not answer), subscribes, listens. */
  static async start(opts: FleetConsoleOptions): Promise<FleetConsole> {
    const c = new FleetConsole(opts);
    try {
      await c.connect();
      await c.listen();
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  get url(): string {
    return this.boundUrl;
  }

  private async connect(): Promise<void> {
    const o = this.opts;
    const n = Math.max(1, o.connections ?? 2);
    const group = `fghv-fleet-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const { retained, stream } = this.state.filters();
    for (let i = 0; i < n; i++) {
      let client: MqttClient;
      try {
        client = await connectAsync(o.brokerUrl, {
          protocolVersion: 5,
          clientId: `${group}-${i}`,
          reconnectPeriod: 2000,
          connectTimeout: 10_000,
          ...(o.username ? { username: o.username } : {}),
          ...(o.password ? { password: o.password } : {}),
          ...(o.ca ? { ca: o.ca } : {}),
        });
      } catch (cause) {
        throw new KioskError(
          ErrorCodes.MQTT_CONNECT,
          `fleet: cannot connect to ${redactSecrets(o.brokerUrl)}: ${(cause as Error).message}`,
          { cause },
        );
      }
      client.on('error', (err) => o.log?.(`fleet: MQTT error on connection ${i}: ${err.message}`));
      client.on('message', (topic, payload) => this.state.ingest(topic, payload));
      this.clients.push(client);
      const filters = [
        ...(i === 0 ? retained : []),
        ...stream.map((f) => (n > 1 ? `$share/${group}/${f}` : f)),
      ];
      await client.subscribeAsync(filters, { qos: 1 });
    }
  }

  private listen(): Promise<void> {
    const { host, port } = this.opts;
    const server = createServer((req, res) => {
      const access = checkAccess(this.token, req.headers);
      if (access === 'unauthorized') {
        res.writeHead(401, {
          ...COMMON_HEADERS,
          'www-authenticate': 'Basic realm="fghv-fleet", charset="UTF-8"',
        });
        return void res.end('authentication required\n');
      }
      if (access === 'bad_host') {
        res.writeHead(421, COMMON_HEADERS);
        return void res.end('this page answers only to a loopback Host name\n');
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { ...COMMON_HEADERS, allow: 'GET, HEAD' });
        return void res.end();
      }
      const path = new URL(req.url ?? '/', 'http://local').pathname;
      if (path === '/' || path === '/index.html') {
        res.writeHead(200, {
          ...COMMON_HEADERS,
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': PAGE_CSP,
        });
        return void res.end(req.method === 'HEAD' ? undefined : FLEET_PAGE_HTML);
      }
      if (path === '/api/fleet') {
        const body = JSON.stringify({
          broker: redactSecrets(this.opts.brokerUrl),
          connections: this.clients.map((c) => c.connected),
          messages: this.state.counters.messages,
          ...this.state.snapshot(),
        });
        res.writeHead(200, { ...COMMON_HEADERS, 'content-type': 'application/json' });
        return void res.end(req.method === 'HEAD' ? undefined : body);
      }
      res.writeHead(404, { ...COMMON_HEADERS, 'content-type': 'text/plain' });
      res.end('not found\n');
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (cause) =>
        reject(
          new KioskError(
            ErrorCodes.STATUS_LISTEN,
            `fleet console cannot listen on ${host}:${port}: ${cause.message}`,
            {
              cause,
            },
          ),
        ),
      );
      server.listen(port, host, () => {
        const a = server.address() as AddressInfo;
        this.boundUrl = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/`;
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.endAsync(true).catch(() => undefined)));
    this.clients.length = 0;
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
