/**
 * The daemon's one connection to the broker (mqtt.js 5.x): a transport of opaque messages
 * (topic, bytes, QoS, retain, expiry). It knows nothing of the MQTT contract: topic names,
 * payloads and what they mean live in daemon/contract/ (contract-link.ts builds on this class).
 *
 * - One mqtt.js client per connection attempt, with mqtt.js' own reconnect off
 *   (`reconnectPeriod: 0`): its fixed period cannot back off, and its in-memory store is
 *   replaced by `reconnect()` anyway. The link owns the backoff, the offline queue and the
 *   protocol fallback (MQTT 5, then 3.1.1 when the broker refuses 5).
 * - `publish()` never throws and never rejects; it resolves with what became of the message,
 *   so a durable outbox can sit in front of it and delete on `delivered`.
 * - While offline, QoS 1 messages wait in a bounded in-memory queue (oldest dropped beyond
 *   `maxQueued`, counted); QoS 0 is dropped. A queued message that expires before the
 *   connection returns is dropped: a late message must never be acted on.
 * - In-flight QoS 1 messages whose connection dies before PUBACK go back to the queue front:
 *   at least once; receivers deduplicate.
 * - Retained state the client owns (`availability` birth and will, `retain()`) is re-published
 *   on every connect, since a broker restart clears it, and re-asserted when another value
 *   appears there while connected (at most every 2 s per topic; not while closing).
 * - A message whose topic the broker would refuse (too long, too many levels, control
 *   characters: topic-limits.ts) is never written; it resolves `refused`. A broker answers
 *   such a topic by closing the connection, so one message must never cost the link it.
 * - `once` messages (command responses) are written at most once: never queued while
 *   offline, never re-sent after a reconnect; a connection lost before their PUBACK drops them.
 * - Failover: `url` may be a list of brokers. The first is tried first; every failed attempt
 *   or lost connection moves to the next in the list (round robin, with the same backoff and
 *   jitter), so a device whose broker dies is back on another one within one backoff delay.
 *   Sessions are clean (a session does not follow a device to another broker anyway): what
 *   must not be lost is kept by the caller's durable outbox (`durable`), which re-sends it
 *   after each connect, whichever broker that is.
 */
import { EventEmitter } from 'node:events';
import {
  connect,
  type IClientOptions,
  type IClientPublishOptions,
  type IPublishPacket,
  type MqttClient,
} from 'mqtt';
import type { Config } from '../../config/schema.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { MAX_SMALL_FILE_BYTES, readCheckedFile } from '../../core/file-rule.js';
import { redactSecrets } from '../../core/log.js';
import { DEFAULT_TOPIC_LIMITS, type TopicLimits, topicProblem } from './topic-limits.js';

export interface LinkLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const silentLogger: LinkLogger = { debug() {}, info() {}, warn() {} };

export interface MqttLinkOptions {
  /** One broker, or several tried in order (failover: the next one after each failure). */
  url: string | readonly string[];
  clientId: string;
  username: string | null;
  password: string | null;
  protocolVersion: 4 | 5;
  keepaliveS: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** QoS 1 messages kept while offline; the oldest are dropped beyond this. Default 100. */
  maxQueued?: number;
  /** Time allowed for the CONNACK of one attempt. Default 10 s. */
  connectTimeoutMs?: number;
  log?: LinkLogger;
  /** Jitter source (tests fix it). */
  random?: () => number;
  /** What the broker accepts as a topic (default: MQTT's 65,535 bytes, mosquitto's 200 levels). */
  topicLimits?: TopicLimits;
  /** TLS material (PEM contents, not paths) for mqtts:// URLs. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean };
  /**
   * Birth and last will on one retained topic: `online` after every CONNACK, `offline` before
   * a clean close and as the will the broker publishes when the connection dies. None if absent.
   */
  availability?: { topic: string; online: string; offline: string };
}

/** What the link has done since it was made. */
export interface LinkCounters {
  connected: boolean;
  /** 5 or 4 once a CONNACK was accepted; null before. */
  protocol_version: number | null;
  connects: number;
  disconnects: number;
  published: number;
  /** Messages handed to the link that will never reach the broker (queue overflow, expired, offline QoS 0, closed). */
  dropped: number;
  /** Messages waiting for a connection right now. */
  queued: number;
  /** The broker of the current or last connection (credentials redacted); null before the first. */
  broker?: string | null;
}

export interface OutgoingMessage {
  topic: string;
  payload: string;
  qos: 0 | 1;
  retain: boolean;
  /** ms since the epoch: not sent after this; with MQTT 5 the broker gets the time left as message expiry. */
  expiresAt?: number;
  /**
   * The caller keeps the message durably (an outbox): never queued in memory, resolved
   * `offline` when not connected or when its connection dies before the PUBACK; the caller
   * re-sends it after the next connect.
   */
  durable?: boolean;
  /**
   * Written at most once (command responses): never queued while offline, never re-sent after
   * a reconnect. A response that cost the connection (the broker refused it) is dropped, so it
   * cannot be re-sent on every reconnect and keep the link down (issue 24, finding 1).
   */
  once?: boolean;
  /** MQTT 5 properties (correlation data of command responses); ignored on 3.1.1. */
  properties?: { correlationData?: Buffer };
}

export interface LinkEvents {
  /**
   * On every CONNACK, before anything is published on the new connection (`retain()` called
   * from a listener only updates what is about to be sent): the broker in use, redacted.
   */
  broker: [url: string];
  /** After every CONNACK, once `online` and the owned retained messages were sent. */
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
    // A regular file of at most 1 MiB, checked before reading (core/file-rule.ts).
    const text = readCheckedFile(mqtt.password_file, {
      what: 'mqtt.password_file',
      maxBytes: MAX_SMALL_FILE_BYTES,
      code: ErrorCodes.MQTT_CONNECT,
    }).toString('utf8');
    return text.split(/\r?\n/)[0] ?? '';
  }
  return env.FGHV_MQTT_PASSWORD ?? null;
}

/** Reads the TLS files named in the config; a missing file is a connect error at start. */
export function readTlsFiles(tls: Config['mqtt']['tls']): MqttLinkOptions['tls'] {
  const read = (what: string, file: string | null): Buffer | undefined => {
    if (file === null) return undefined;
    return readCheckedFile(file, {
      what: `mqtt.tls.${what}`,
      maxBytes: MAX_SMALL_FILE_BYTES,
      code: ErrorCodes.MQTT_CONNECT,
    });
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

interface OwnedRetained {
  payload: string;
  /** What was last published on the current connection (null: nothing yet). */
  sent: string | null;
  /** When the last re-assertion was (or is scheduled to be) sent, ms since the epoch. */
  lastReassert: number;
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
  readonly clientId: string;
  /** The brokers, in the order they are tried. */
  readonly urls: readonly string[];
  private urlIndex = 0;
  /** Index of the broker of the current or last connection; -1 before the first. */
  private connectedIndex = -1;
  private readonly opts: Required<Omit<MqttLinkOptions, 'password' | 'username' | 'tls' | 'availability'>> &
    Pick<MqttLinkOptions, 'password' | 'username' | 'tls' | 'availability'>;
  private readonly log: LinkLogger;
  private version: 4 | 5;
  private client: MqttClient | null = null;
  private connected = false;
  private started = false;
  private closing: Promise<void> | null = null;
  private failedAttempts = 0;
  private retryNow = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** Retained messages this client owns, by topic (`retain()`). */
  private readonly owned = new Map<string, OwnedRetained>();
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
      topicLimits: DEFAULT_TOPIC_LIMITS,
      log: silentLogger,
      random: Math.random,
      ...options,
    };
    this.log = this.opts.log;
    this.version = options.protocolVersion;
    // `online` is owned like any retained state: re-published on every connect and re-asserted
    // when another value appears while connected (a forged retained `offline`, issue 24,
    // finding 5). First in the map: the birth goes out before anything else.
    const availability = options.availability;
    if (availability)
      this.owned.set(availability.topic, { payload: availability.online, sent: null, lastReassert: 0 });
    this.clientId = options.clientId;
    this.urls = typeof options.url === 'string' ? [options.url] : [...options.url];
    if (this.urls.length === 0) throw new KioskError(ErrorCodes.MQTT_CONNECT, 'no broker URL given');
  }

  /** The broker of the current or last connection, credentials redacted; null before the first. */
  get broker(): string | null {
    const url = this.urls[this.connectedIndex];
    return url === undefined ? null : redactUrl(url);
  }

  /** The broker the next or current attempt goes to. */
  private get url(): string {
    return this.urls[this.urlIndex] as string;
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

  counters(): LinkCounters {
    const { connects, disconnects, published, dropped, protocol } = this.stats;
    return {
      connected: this.connected,
      protocol_version: protocol,
      connects,
      disconnects,
      published,
      dropped,
      queued: this.queue.length,
      broker: this.broker,
    };
  }

  /**
   * A retained message this client owns (as is `availability`'s `online`): published now if connected and changed, again on
   * every connect, and never queued (offline, it waits for the next connect). The link also
   * subscribes to the topic: another value appearing there (another client writing it) is
   * overwritten with this one, at most once per 2 s per topic, so that two processes sharing
   * the topic cannot flood the broker. Messages on owned topics are not emitted.
   */
  retain(topic: string, payload: string): void {
    const known = this.owned.get(topic);
    if (known) known.payload = payload;
    else {
      this.owned.set(topic, { payload, sent: null, lastReassert: 0 });
      if (this.connected && this.client) this.client.subscribe(topic, { qos: 1 });
    }
    if (this.connected) this.publishOwned(topic);
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
      const problem = topicProblem(msg.topic, this.opts.topicLimits);
      if (problem !== null) {
        this.log.warn(
          { topic: msg.topic.slice(0, 200), problem },
          'MQTT publish refused: the broker would refuse this topic',
        );
        return this.drop(pending, 'refused');
      }
      if (this.connected) return this.send(pending);
      if (msg.qos === 0 || notRequeued(msg)) return this.drop(pending, 'offline');
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
      const availability = this.opts.availability;
      if (availability)
        await withTimeout(this.sendRetained(client, availability.topic, availability.offline), 2000);
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
    const availability = this.opts.availability;
    const client = connect(this.url, {
      ...tls,
      clientId: this.clientId,
      protocolVersion: version,
      keepalive: this.opts.keepaliveS,
      connectTimeout: this.opts.connectTimeoutMs,
      reconnectPeriod: 0,
      clean: true,
      ...(this.opts.username !== null ? { username: this.opts.username } : {}),
      ...(this.opts.password !== null ? { password: this.opts.password } : {}),
      ...(availability
        ? {
            will: {
              topic: availability.topic,
              payload: Buffer.from(availability.offline),
              qos: 1,
              retain: true,
            },
          }
        : {}),
    });
    this.client = client;
    client.on('connect', () => this.onConnect(client, version));
    client.on('close', () => this.onClose(client));
    client.on('message', (topic, payload, packet) => {
      if (client !== this.client) return;
      if (this.owned.has(topic)) {
        this.guardOwned(topic, payload);
        return;
      }
      this.emit('message', topic, payload, packet);
    });
    // Always listened to: an 'error' event without a listener would crash the daemon.
    client.on('error', (err: Error & { code?: unknown }) => {
      if (client !== this.client) return;
      if (version === 5 && typeof err.code === 'number' && UNSUPPORTED_PROTOCOL.has(err.code)) {
        this.log.info({ url: redactUrl(this.url) }, 'broker refused MQTT 5; falling back to MQTT 3.1.1');
        this.version = 4;
        this.retryNow = true;
        return;
      }
      // Warn once per outage; a broker that stays down would otherwise fill the log.
      const level = this.failedAttempts === 0 ? 'warn' : 'debug';
      this.log[level](
        { url: redactUrl(this.url), err: err.message, code: err.code },
        'MQTT connection error',
      );
    });
  }

  private onConnect(client: MqttClient, version: 4 | 5): void {
    if (client !== this.client || this.closing !== null) return;
    this.connectedIndex = this.urlIndex;
    // Before `connected`: a listener's retain() updates what the loop below sends, once.
    this.emit('broker', redactUrl(this.url));
    this.connected = true;
    this.failedAttempts = 0;
    this.stats.connects++;
    this.stats.protocol = version;
    this.log.info({ url: redactUrl(this.url), protocol: version, clientId: this.clientId }, 'MQTT connected');
    // A broker restart clears retained state: announce ourselves (`online`, owned) and the
    // rest of the owned state on every connect.
    for (const [topic, owned] of this.owned) {
      owned.sent = null;
      this.publishOwned(topic);
    }
    // The owned topics too: a different retained value there is corrected (guardOwned).
    const filters = [...this.subscriptions, ...this.owned.keys()];
    if (filters.length) client.subscribe(filters, { qos: 1 });
    for (const p of this.queue.splice(0)) this.send(p);
    for (const w of this.waiters.splice(0)) w();
    this.emit('connect');
  }

  private onClose(client: MqttClient): void {
    if (client !== this.client) return;
    if (this.connected) {
      this.stats.disconnects++;
      this.log.warn({ url: redactUrl(this.url) }, 'MQTT connection lost');
    }
    this.connected = false;
    // Unacknowledged QoS 1 messages go back to the front of the queue, in their order.
    // Durable ones are resolved `offline`: their owner re-sends them from its store.
    const unacked = [...this.inflight].filter((p) => p.sentOn === client);
    for (const p of unacked) {
      this.inflight.delete(p);
      p.sentOn = null;
    }
    for (const p of unacked.filter((u) => notRequeued(u.msg))) this.drop(p, 'offline');
    this.queue.unshift(...unacked.filter((u) => !notRequeued(u.msg)));
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
    // Failover: a failed attempt or a lost connection moves on to the next broker (a protocol
    // fallback retries the same one). Each broker starts from the configured protocol.
    if (!this.retryNow && this.urls.length > 1) {
      this.urlIndex = (this.urlIndex + 1) % this.urls.length;
      this.version = this.opts.protocolVersion;
    }
    this.retryNow = false;
    this.log.debug({ delayMs: delay, next: redactUrl(this.url) }, 'MQTT reconnect scheduled');
    this.reconnectTimer = setTimeout(() => this.attempt(), delay);
  }

  /** Another value on an owned topic is overwritten with ours (see `retain()`). */
  private guardOwned(topic: string, payload: Buffer): void {
    const owned = this.owned.get(topic);
    // Closing: our own `offline` comes back on the availability topic and must stay.
    if (!owned || !this.client || !this.connected || this.closing !== null) return;
    if (payload.toString('utf8') === owned.payload) return;
    const now = Date.now();
    const wait = Math.max(0, owned.lastReassert + 2000 - now);
    owned.lastReassert = now + wait;
    this.log.warn({ topic }, 'another retained value appeared on a topic this client owns: re-asserting');
    const client = this.client;
    setTimeout(() => {
      if (client === this.client && this.connected && this.closing === null)
        void this.sendRetained(client, topic, owned.payload);
    }, wait).unref();
  }

  private publishOwned(topic: string): void {
    const owned = this.owned.get(topic);
    if (!owned || !this.client || owned.payload === owned.sent) return;
    owned.sent = owned.payload;
    void this.sendRetained(this.client, topic, owned.payload);
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
          if (notRequeued(msg)) this.drop(p, 'offline');
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

/** Durable messages are re-sent by their owner, `once` messages never: the link does not queue either. */
function notRequeued(msg: OutgoingMessage): boolean {
  return msg.durable === true || msg.once === true;
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
