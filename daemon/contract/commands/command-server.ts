/**
 * Request/response over MQTT: `<base>/request/<command>` -> `<base>/response/<command>` (or
 * the MQTT 5 response topic when it lies under `<base>/response/`, with the correlation data
 * echoed). Parsing is synchronous and cheap, so garbage is answered at once; valid commands
 * run one at a time from a bounded queue, off the pipeline's path. Signed requests are
 * recorded in `audit` one by one; everything else (refused or unsigned read-only requests) is
 * counted and recorded as one summary per minute, so no one on the broker can flood the audit
 * store and evict its history.
 */
import type { IPublishPacket } from 'mqtt';
import { type ErrorCode, ErrorCodes, isKioskError } from '../../../core/errors.js';
import type { ContractLink } from '../contract-link.js';
import type { CommandResponse } from '../payloads.js';
import { publicKeyFrom } from '../signing/keys.js';
import { COMMANDS, type CommandTable, type CommandTarget, commandSpec } from './registry.js';
import { parseCommandRequest, type ReplayGuard, type RequestPolicy } from './request.js';

export type { CommandTarget } from './registry.js';

export interface CommandServerOptions {
  link: Pick<ContractLink, 'subscribe' | 'publish' | 'on' | 'off' | 'topics'>;
  target: CommandTarget;
  /** The commands served (default: the device's table, COMMANDS in registry.ts). */
  commands?: CommandTable;
  deviceId: string;
  policy: Omit<RequestPolicy, 'now' | 'seenSignatures' | 'fleetKeys' | 'deviceId'> & { fleetKeys: string[] };
  /** Records one audit event per signed request, and the summaries of the others. */
  audit: (details: Record<string, unknown>) => void;
  /** Executed signatures (default: in memory; the daemon persists them, see replay-store.ts). */
  replay?: ReplayGuard;
  /** How often the counts of unsigned and refused requests are audited. Default 60 s. */
  summaryIntervalMs?: number;
  maxQueued?: number;
  /** Requests waiting to be parsed, at most (beyond: answered busy at once). Default 2000. */
  maxIntake?: number;
  now?: () => number;
  onError?: (err: unknown) => void;
}

/** Requests handled per event-loop turn: a flood never starves decisions, timers or the camera. */
const PER_TURN = 25;
/** Bytes of requests waiting to be parsed, at most. */
const MAX_INTAKE_BYTES = 8 * 2 ** 20;

/** The transaction as recorded in audit: small ones as they are, large ones summarised. */
function auditTransaction(t: unknown): unknown {
  const json = JSON.stringify(t) ?? 'null';
  return json.length <= 200 ? t : `<${json.length} bytes>`;
}

/** In-process replay memory, for embedding without a state directory. */
class MemoryReplayGuard implements ReplayGuard {
  private readonly seen = new Map<string, number>();
  has(digest: string): boolean {
    return this.seen.has(digest);
  }
  add(digest: string, until: number): void {
    if (this.seen.size >= 10_000) this.seen.clear();
    this.seen.set(digest, until);
  }
}

export class CommandServer {
  private readonly policy: RequestPolicy;
  private readonly commands: CommandTable;
  /** Unsigned and refused requests since the last summary: `<command> <status or code>` -> count. */
  private readonly unaudited = new Map<string, number>();
  private summaryTimer: NodeJS.Timeout | null = null;
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private readonly intake: { command: string; payload: Buffer; packet: IPublishPacket }[] = [];
  private intakeBytes = 0;
  private draining: NodeJS.Immediate | null = null;
  readonly stats = { requests: 0, ok: 0, errors: 0 };
  private readonly filter: string;
  private readonly onMessage = (topic: string, payload: Buffer, packet: IPublishPacket) => {
    const prefix = `${this.opts.link.topics.base}/request/`;
    if (!topic.startsWith(prefix)) return;
    const command = topic.slice(prefix.length);
    if (payload.length > this.policy.maxBytes) {
      // Refused unread, at once: oversized requests never occupy the intake.
      this.handle(command, payload, packet);
      return;
    }
    if (
      this.intake.length >= (this.opts.maxIntake ?? 2000) ||
      this.intakeBytes + payload.length > MAX_INTAKE_BYTES
    ) {
      this.busy(command, packet, 'too many requests waiting; try again');
      return;
    }
    this.intake.push({ command, payload, packet });
    this.intakeBytes += payload.length;
    this.draining ??= setImmediate(this.drain);
  };
  private readonly drain = () => {
    this.draining = null;
    for (const { command, payload, packet } of this.intake.splice(0, PER_TURN)) {
      this.intakeBytes -= payload.length;
      try {
        this.handle(command, payload, packet);
      } catch (err) {
        this.opts.onError?.(err);
      }
    }
    if (this.intake.length) this.draining = setImmediate(this.drain);
  };

  constructor(private readonly opts: CommandServerOptions) {
    this.commands = opts.commands ?? COMMANDS;
    this.policy = {
      commands: this.commands,
      ...opts.policy,
      deviceId: opts.deviceId,
      fleetKeys: opts.policy.fleetKeys.map((k) => publicKeyFrom(k)),
      now: 0,
      seenSignatures: opts.replay ?? new MemoryReplayGuard(),
    };
    this.filter = `${opts.link.topics.base}/request/+`;
  }

  start(): void {
    this.opts.link.on('message', this.onMessage);
    this.opts.link.subscribe(this.filter);
    this.summaryTimer = setInterval(() => this.auditSummary(), this.opts.summaryIntervalMs ?? 60_000);
    this.summaryTimer.unref();
  }

  /** One audit record for all requests not audited one by one since the last summary. */
  private auditSummary(): void {
    if (!this.unaudited.size) return;
    const counts = Object.fromEntries(this.unaudited);
    this.unaudited.clear();
    try {
      this.opts.audit({ command: '(unsigned or refused requests)', counts });
    } catch (err) {
      this.opts.onError?.(err);
    }
  }

  stop(): Promise<void> {
    this.opts.link.off('message', this.onMessage);
    if (this.summaryTimer) clearInterval(this.summaryTimer);
    this.summaryTimer = null;
    this.auditSummary();
    if (this.draining) clearImmediate(this.draining);
    this.draining = null;
    this.intake.length = 0;
    return this.queue;
  }

  private replyTo(
    command: string,
    packet: IPublishPacket,
  ): { topic: string; correlation: Buffer | undefined } {
    const props = packet.properties;
    // A response topic outside this device's response prefix, or one a broker would refuse
    // (topics.ts responseTopicAllowed), is not used: the reply goes to response/<command>.
    const { topics } = this.opts.link;
    const requested = props?.responseTopic;
    const topic = topics.responseTopicAllowed(requested) ? requested : `${topics.base}/response/${command}`;
    return { topic, correlation: props?.correlationData };
  }

  private busy(command: string, packet: IPublishPacket, message: string): void {
    this.stats.requests++;
    const { topic, correlation } = this.replyTo(command, packet);
    void this.respond(
      topic,
      correlation,
      command,
      null,
      { code: ErrorCodes.COMMAND_BUSY, message },
      null,
      false,
    );
  }

  private handle(command: string, payload: Buffer, packet: IPublishPacket): void {
    this.stats.requests++;
    const { topic: replyTo, correlation } = this.replyTo(command, packet);
    const parsed = parseCommandRequest(command, payload, {
      ...this.policy,
      now: (this.opts.now ?? Date.now)(),
    });
    if (!parsed.ok) {
      void this.respond(
        replyTo,
        correlation,
        parsed.command,
        parsed.transaction,
        { code: parsed.code, message: parsed.message },
        null,
        false,
      );
      return;
    }
    if (this.queued >= (this.opts.maxQueued ?? 16)) {
      void this.respond(
        replyTo,
        correlation,
        command,
        parsed.transaction,
        { code: ErrorCodes.COMMAND_BUSY, message: 'too many commands waiting; try again' },
        null,
        parsed.signed,
      );
      return;
    }
    // The parser found the entry: the name is an own key of the table.
    const spec = commandSpec(this.commands, parsed.command);
    if (!spec) throw new Error(`command ${parsed.command} parsed but not in the table`);
    this.queued++;
    const task = async () => {
      try {
        const data = await spec.run(this.opts.target, parsed.args, { signed: parsed.signed });
        await this.respond(replyTo, correlation, command, parsed.transaction, null, data, parsed.signed);
        spec.afterResponse?.(this.opts.target);
      } catch (err) {
        const code: ErrorCode = isKioskError(err) ? err.code : ErrorCodes.COMMAND_FAILED;
        const message = err instanceof Error ? err.message : String(err);
        await this.respond(
          replyTo,
          correlation,
          command,
          parsed.transaction,
          { code, message },
          null,
          parsed.signed,
        );
      } finally {
        this.queued--;
      }
    };
    // A concurrent command (verify waits for the camera, up to its timeout_ms) runs beside the
    // queue, never holding up other commands; maxQueued still bounds how many are in flight. A
    // failure that escaped (a response that could not be built) is reported, never left to
    // reject the queue: stop() awaits it.
    if (spec.concurrent) task().catch((err) => this.opts.onError?.(err));
    else this.queue = this.queue.then(task).catch((err) => this.opts.onError?.(err));
  }

  private respond(
    topic: string,
    correlation: Buffer | undefined,
    command: string,
    transaction: unknown,
    error: { code: ErrorCode; message: string } | null,
    data: unknown,
    /** Audited one by one (signed requests); otherwise only counted. */
    auditEach: boolean,
  ): Promise<unknown> {
    const body: CommandResponse = {
      transaction,
      status: error ? 'error' : 'ok',
      data: data ?? null,
      ...(error ? { error } : {}),
    };
    if (error) this.stats.errors++;
    else this.stats.ok++;
    if (auditEach) {
      try {
        this.opts.audit({
          command: command.slice(0, 64),
          transaction: auditTransaction(transaction),
          status: body.status,
          signed: true,
          ...(error ? { code: error.code } : {}),
        });
      } catch (err) {
        this.opts.onError?.(err);
      }
    } else {
      // Bounded: unknown command names share one key.
      const name = commandSpec(this.commands, command) ? command : '(unknown)';
      const key = `${name} ${error ? error.code : 'ok'}`;
      this.unaudited.set(key, (this.unaudited.get(key) ?? 0) + 1);
    }
    return this.opts.link.publish({
      topic,
      payload: JSON.stringify(body),
      qos: 1,
      retain: false,
      // Sent at most once: a reply the broker refused (it closes the connection) is dropped,
      // never re-sent on every reconnect (issue 24, finding 1).
      once: true,
      ...(correlation ? { properties: { correlationData: correlation } } : {}),
    });
  }
}
