/**
 * The daemon's one connection to the broker (mqtt.js 5.x).
 *
 * - One mqtt.js client per connection attempt, with mqtt.js' own reconnect off
 *   (`reconnectPeriod: 0`): its fixed period cannot back off, and its in-memory store is
 *   replaced by `reconnect()` anyway. The link owns the backoff, the offline queue and the
 *   protocol fallback (MQTT 5, then 3.1.1 when the broker refuses 5).
 * - `publish()` never throws and never rejects; it resolves with what became of the message,
 *   so the durable outbox of a later issue can sit in front of it and delete on `delivered`.
 * - While offline, QoS 1 messages wait in a bounded in-memory queue (oldest dropped beyond
 *   `maxQueued`, counted); QoS 0 (health) is dropped. A queued message that expires before the
 *   connection returns is dropped: a late `accept` must never open a gate.
 * - In-flight QoS 1 messages whose connection dies before PUBACK go back to the queue front:
 *   at least once; receivers deduplicate on the decision `id`.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import {
  connect,
  type IClientOptions,
  type IClientPublishOptions,
  type IPublishPacket,
  type MqttClient,
} from 'mqtt';
import type { Config } from '../../config/schema.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { redactSecrets } from '../../core/log.js';
import {
  type DecisionPayload,
  type HealthPayload,
  type InfoPayload,
  type MqttCounters,
  Topics,
} from './topics.js';

export interface LinkLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const silentLogger: LinkLogger = { debug() {}, info() {}, warn() {} };

export interface MqttLinkOptions {
  url: string;
  deviceId: string;
  prefix: string;
  /** null: `fghv-<device_id>` (device ids that already start with `fghv-` are used as they are). */
  clientId: string | null;
  username: string | null;
  password: string | null;
  protocolVersion: 4 | 5;
  keepaliveS: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  decisionExpiryS: number;
  /** QoS 1 messages kept while offline; the oldest are dropped beyond this. Default 100. */
  maxQueued?: number;
  /** Time allowed for the CONNACK of one attempt. Default 10 s. */
  connectTimeoutMs?: number;
  log?: LinkLogger;
  /** Jitter source (tests fix it). */
  random?: () => number;
  /** TLS material (PEM contents, not paths) for mqtts:// URLs. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean };
}

export interface OutgoingMessage {
  topic: string;
  payload: string;
  qos: 0 | 1;
  retain: boolean;
  /** ms since the epoch: not sent after this; with MQTT 5 the broker gets the time left as message expiry. */
  expiresAt?: number;
  /**
   * The caller keeps the message durably (the audit outbox): never queued in memory, resolved
   * `offline` when not connected or when its connection dies before the PUBACK; the caller
   * re-sends it after the next connect.
   */
  durable?: boolean;
  /** MQTT 5 properties (correlation data of command responses); ignored on 3.1.1. */
  properties?: { correlationData?: Buffer };
}

export interface LinkEvents {
  /** After every CONNACK, once online and info were sent. */
  connect: [];
  message: [topic: string, payload: Buffer, packet: IPublishPacket];
}

export type PublishOutcome =
  | { delivered: true }
  | { delivered: false; reason: 'overflow' | 'expired' | 'offline' | 'closed' | 'refused' };

/** Password from `password_file` (first line) or FGHV_MQTT_PASSWORD; never logged. */
export function readMqttPassword(
  mqtt: Pick<Config['mqtt'], 'password_file'>,
  env: NodeJS.ProcessEnv = process.env,
): string | null {
  if (mqtt.password_file !== null) {
    try {
      return readFileSync(mqtt.password_file, 'utf8').split(/\r?\n/)[0] ?? '';
    } catch (cause) {
      throw new KioskError(ErrorCodes.MQTT_CONNECT, `cannot read mqtt.password_file ${mqtt.password_file}`, {
        cause,
      });
    }
  }
  return env.FGHV_MQTT_PASSWORD ?? null;
}

export function linkOptionsFromConfig(
  mqtt: Config['mqtt'],
  deviceId: string,
  url: string,
  extra: Pick<MqttLinkOptions, 'log' | 'maxQueued'> = {},
  env: NodeJS.ProcessEnv = process.env,
): MqttLinkOptions {
  return {
    url,
    deviceId,
    prefix: mqtt.prefix,
    clientId: mqtt.client_id,
    username: mqtt.username,
    password: readMqttPassword(mqtt, env),
    protocolVersion: mqtt.protocol_version,
    keepaliveS: mqtt.keepalive_s,
    reconnectMinMs: mqtt.reconnect_min_ms,
    reconnectMaxMs: mqtt.reconnect_max_ms,
    decisionExpiryS: mqtt.decision_expiry_s,
    tls: readTlsFiles(mqtt.tls),
    ...extra,
  };
}

/** Reads the TLS files named in the config; a missing file is a connect error at start. */
export function readTlsFiles(tls: Config['mqtt']['tls']): MqttLinkOptions['tls'] {
  const read = (what: string, file: string | null): Buffer | undefined => {
    if (file === null) return undefined;
    try {
      return readFileSync(file);
    } catch (cause) {
      throw new KioskError(ErrorCodes.MQTT_CONNECT, `cannot read mqtt.tls.${what} ${file}`, { cause });
    }
  };
  const ca = read('ca_file', tls.ca_file);
  const cert = read('cert_file', tls.cert_file);
  const key = read('key_file', tls.key_file);
  return {
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    rejectUnauthorized: tls.reject_unauthorized,
  };
}

/**
 * Exponential backoff with "equal jitter": the ceiling doubles per failed attempt (min..max),
 * the delay is uniform in [ceiling/2, ceiling], never below min. The jitter spreads a fleet's
 * reconnects after a broker restart.
 */
export function backoffDelayMs(attempt: number, minMs: number, maxMs: number, random: number): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(Math.max(Math.min(minMs, maxMs), ceiling / 2 + (random * ceiling) / 2));
}

/** Strips credentials from a broker URL for logs (core/log.ts's redactSecrets). */
export function redactUrl(url: string): string {
  return redactSecrets(url);
}

interface Pending {
  msg: OutgoingMessage;
  resolve: (outcome: PublishOutcome) => void;
  /** The client it was written to and awaits a PUBACK from; null while queued. */
  sentOn: MqttClient | null;
}

/** CONNACK codes that mean "I do not speak this protocol version" (3.1.1 and 5 encodings). */
const UNSUPPORTED_PROTOCOL = new Set([1, 132]);

export class MqttLink extends EventEmitter<LinkEvents> {
  readonly topics: Topics;
  readonly clientId: string;
  private readonly opts: Required<Omit<MqttLinkOptions, 'password' | 'username' | 'tls'>> &
    Pick<MqttLinkOptions, 'password' | 'username' | 'tls'>;
  private readonly log: LinkLogger;
  private version: 4 | 5;
  private client: MqttClient | null = null;
  private connected = false;
  private started = false;
  private closing: Promise<void> | null = null;
  private failedAttempts = 0;
  private retryNow = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private info: InfoPayload | null = null;
  private publishedInfo: string | null = null;
  private readonly queue: Pending[] = [];
  private readonly inflight = new Set<Pending>();
  private waiters: (() => void)[] = [];
  private readonly subscriptions = new Set<string>();
  private readonly stats = {
    connects: 0,
    disconnects: 0,
    published: 0,
    dropped: 0,
    protocol: null as number | null,
  };

  constructor(options: MqttLinkOptions) {
    super();
    this.opts = {
      maxQueued: 100,
      connectTimeoutMs: 10_000,
      log: silentLogger,
      random: Math.random,
      ...options,
    };
    this.log = this.opts.log;
    this.version = options.protocolVersion;
    this.topics = new Topics(options.prefix, options.deviceId);
    this.clientId =
      options.clientId ??
      (options.deviceId.startsWith('fghv-') ? options.deviceId : `fghv-${options.deviceId}`);
  }

  /** Starts connecting in the background; a broker that is down is retried with backoff. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.attempt();
  }

  /** Resolves true once connected, false after `timeoutMs`. */
  waitConnected(timeoutMs: number): Promise<boolean> {
    if (this.connected) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.waiters.push(done);
    });
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** The protocol of the current or last connection (5, or 4 after a fallback); null before. */
  get protocolVersion(): number | null {
    return this.stats.protocol;
  }

  counters(): MqttCounters {
    const { connects, disconnects, published, dropped, protocol } = this.stats;
    return {
      connected: this.connected,
      protocol_version: protocol,
      connects,
      disconnects,
      published,
      dropped,
      queued: this.queue.length,
    };
  }

  /** Retained `info`; published now if connected and changed, and again on every connect. */
  setInfo(info: InfoPayload): void {
    this.info = info;
    if (this.connected) this.publishInfo();
  }

  /**
   * `liveOnly`: never queued, never re-sent after a reconnect (the durable audit outbox holds
   * the decision instead), so a decision made while the broker was unreachable never reaches
   * a gate late, even within its expiry.
   */
  publishDecision(cameraId: string, payload: DecisionPayload, liveOnly = false): Promise<PublishOutcome> {
    const expiresAt = Date.parse(payload.expires_at);
    return this.publish({
      topic: this.topics.decision(cameraId),
      payload: JSON.stringify(payload),
      qos: 1,
      retain: false,
      ...(liveOnly ? { durable: true } : {}),
      ...(Number.isFinite(expiresAt) ? { expiresAt } : {}),
    });
  }

  publishHealth(payload: HealthPayload): Promise<PublishOutcome> {
    return this.publish({
      topic: this.topics.health,
      payload: JSON.stringify(payload),
      qos: 0,
      retain: false,
    });
  }

  /** Subscribes now if connected and again after every reconnect (QoS 1); messages come as 'message' events. */
  subscribe(filter: string): void {
    this.subscriptions.add(filter);
    if (this.connected && this.client) this.client.subscribe(filter, { qos: 1 });
  }

  /** The generic publish the durable outbox sits behind. Never throws or rejects. */
  publish(msg: OutgoingMessage): Promise<PublishOutcome> {
    return new Promise((resolve) => {
      const pending: Pending = { msg, resolve, sentOn: null };
      if (this.closing !== null) return this.drop(pending, 'closed');
      if (this.connected) return this.send(pending);
      if (msg.qos === 0 || msg.durable) return this.drop(pending, 'offline');
      this.queue.push(pending);
      while (this.queue.length > this.opts.maxQueued) this.drop(this.queue.shift() as Pending, 'overflow');
    });
  }

  /** Publishes `offline` (retained), then disconnects cleanly, so the broker does not fire the will. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    for (const p of this.queue.splice(0)) this.drop(p, 'closed');
    const client = this.client;
    if (!client) return;
    if (this.connected) {
      await withTimeout(this.sendRetained(client, this.topics.availability, 'offline'), 2000);
      await withTimeout(client.endAsync(false), 2000);
    }
    await client.endAsync(true).catch(() => undefined);
    this.connected = false;
    for (const p of this.inflight) this.drop(p, 'closed');
    this.inflight.clear();
  }

  private attempt(): void {
    this.reconnectTimer = null;
    if (this.closing !== null) return;
    const version = this.version;
    const tls: Partial<IClientOptions> = this.opts.tls ? { ...this.opts.tls } : {};
    const client = connect(this.opts.url, {
      ...tls,
      clientId: this.clientId,
      protocolVersion: version,
      keepalive: this.opts.keepaliveS,
      connectTimeout: this.opts.connectTimeoutMs,
      reconnectPeriod: 0,
      clean: true,
      ...(this.opts.username !== null ? { username: this.opts.username } : {}),
      ...(this.opts.password !== null ? { password: this.opts.password } : {}),
      will: { topic: this.topics.availability, payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    this.client = client;
    client.on('connect', () => this.onConnect(client, version));
    client.on('close', () => this.onClose(client));
    client.on('message', (topic, payload, packet) => {
      if (client !== this.client) return;
      if (topic === this.topics.info) {
        this.guardInfo(payload);
        return;
      }
      this.emit('message', topic, payload, packet);
    });
    // Always listened to: an 'error' event without a listener would crash the daemon.
    client.on('error', (err: Error & { code?: unknown }) => {
      if (client !== this.client) return;
      if (version === 5 && typeof err.code === 'number' && UNSUPPORTED_PROTOCOL.has(err.code)) {
        this.log.info({ url: redactUrl(this.opts.url) }, 'broker refused MQTT 5; falling back to MQTT 3.1.1');
        this.version = 4;
        this.retryNow = true;
        return;
      }
      // Warn once per outage; a broker that stays down would otherwise fill the log.
      const level = this.failedAttempts === 0 ? 'warn' : 'debug';
      this.log[level](
        { url: redactUrl(this.opts.url), err: err.message, code: err.code },
        'MQTT connection error',
      );
    });
  }

  private onConnect(client: MqttClient, version: 4 | 5): void {
    if (client !== this.client || this.closing !== null) return;
    this.connected = true;
    this.failedAttempts = 0;
    this.stats.connects++;
    this.stats.protocol = version;
    this.log.info(
      { url: redactUrl(this.opts.url), protocol: version, clientId: this.clientId },
      'MQTT connected',
    );
    // A broker restart clears retained state: announce ourselves on every connect.
    void this.sendRetained(client, this.topics.availability, 'online');
    this.publishedInfo = null;
    this.publishInfo();
    // Our own info topic too: a different retained value there is corrected (guardInfo).
    client.subscribe([...this.subscriptions, this.topics.info], { qos: 1 });
    for (const p of this.queue.splice(0)) this.send(p);
    for (const w of this.waiters.splice(0)) w();
    this.emit('connect');
  }

  private onClose(client: MqttClient): void {
    if (client !== this.client) return;
    if (this.connected) {
      this.stats.disconnects++;
      this.log.warn({ url: redactUrl(this.opts.url) }, 'MQTT connection lost');
    }
    this.connected = false;
    // Unacknowledged QoS 1 messages go back to the front of the queue, in their order.
    // Durable ones are resolved `offline`: their owner re-sends them from its store.
    const unacked = [...this.inflight].filter((p) => p.sentOn === client);
    for (const p of unacked) {
      this.inflight.delete(p);
      p.sentOn = null;
    }
    for (const p of unacked.filter((u) => u.msg.durable)) this.drop(p, 'offline');
    this.queue.unshift(...unacked.filter((u) => !u.msg.durable));
    while (this.queue.length > this.opts.maxQueued) this.drop(this.queue.shift() as Pending, 'overflow');
    client.end(true);
    if (this.closing !== null) return;
    const delay = this.retryNow
      ? 0
      : backoffDelayMs(
          this.failedAttempts++,
          this.opts.reconnectMinMs,
          this.opts.reconnectMaxMs,
          this.opts.random(),
        );
    this.retryNow = false;
    this.log.debug({ delayMs: delay }, 'MQTT reconnect scheduled');
    this.reconnectTimer = setTimeout(() => this.attempt(), delay);
  }

  private lastInfoReassert = 0;

  /**
   * The retained `info` is the device's to state: another value there (a client forging the
   * device's key or model) is overwritten with the real one, at most once per 2 s so that two
   * processes sharing a device id cannot flood the broker.
   */
  private guardInfo(payload: Buffer): void {
    if (!this.info || !this.client || !this.connected) return;
    const ours = JSON.stringify(this.info);
    if (payload.toString('utf8') === ours) return;
    const now = Date.now();
    const wait = Math.max(0, this.lastInfoReassert + 2000 - now);
    this.lastInfoReassert = now + wait;
    this.log.warn(
      { topic: this.topics.info },
      'another retained info appeared on this device topic: re-asserting',
    );
    const client = this.client;
    setTimeout(() => {
      if (client === this.client && this.connected && this.info)
        void this.sendRetained(client, this.topics.info, JSON.stringify(this.info));
    }, wait).unref();
  }

  private publishInfo(): void {
    if (!this.info || !this.client) return;
    const json = JSON.stringify(this.info);
    if (json === this.publishedInfo) return;
    this.publishedInfo = json;
    void this.sendRetained(this.client, this.topics.info, json);
  }

  /** Retained state is republished on every connect, so it is never queued or retried. */
  private sendRetained(client: MqttClient, topic: string, payload: string): Promise<void> {
    return new Promise((resolve) => {
      client.publish(topic, payload, { qos: 1, retain: true }, (err) => {
        if (err) this.log.debug({ topic, err: err.message }, 'retained publish not acknowledged');
        else this.stats.published++;
        resolve();
      });
    });
  }

  private send(p: Pending): void {
    const client = this.client as MqttClient;
    const { msg } = p;
    const now = Date.now();
    if (msg.expiresAt !== undefined && now >= msg.expiresAt) {
      this.drop(p, 'expired');
      return;
    }
    const options: IClientPublishOptions = { qos: msg.qos, retain: msg.retain };
    if (this.version === 5) {
      const props: NonNullable<IClientPublishOptions['properties']> = { ...msg.properties };
      if (msg.expiresAt !== undefined) {
        props.messageExpiryInterval = Math.max(1, Math.ceil((msg.expiresAt - now) / 1000));
      }
      if (Object.keys(props).length) options.properties = props;
    }
    if (msg.qos === 1) {
      p.sentOn = client;
      this.inflight.add(p);
    }
    client.publish(msg.topic, msg.payload, options, (err) => {
      if (msg.qos === 1) {
        // A reply from a connection we already gave up on: the message was requeued.
        if (p.sentOn !== client) return;
        this.inflight.delete(p);
        if (err && !client.connected && !this.closing) {
          // The connection died first (keepalive timeout flushes callbacks before 'close').
          p.sentOn = null;
          if (msg.durable) this.drop(p, 'offline');
          else this.queue.unshift(p);
          return;
        }
      }
      if (!err) {
        this.stats.published++;
        p.resolve({ delivered: true });
      } else {
        this.log.warn({ topic: msg.topic, err: err.message }, 'MQTT publish refused');
        this.drop(p, 'refused');
      }
    });
  }

  private drop(p: Pending, reason: 'overflow' | 'expired' | 'offline' | 'closed' | 'refused'): void {
    this.stats.dropped++;
    if (reason !== 'offline') this.log.debug({ topic: p.msg.topic, reason }, 'MQTT message dropped');
    p.resolve({ delivered: false, reason });
  }
}

async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise.catch(() => undefined),
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
