/**
 * The topics of contract version 1 (docs/mqtt-contract.md): the contract's version, every topic
 * of a device and the rule for a requester's response topic. Their payload types are in
 * payloads.ts. Changes within version 1 are additive only. The transport under it
 * (daemon/mqtt/) carries opaque messages; contract-link.ts puts these topics and payloads on it.
 */
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { topicProblem } from '../mqtt/topic-limits.js';

export const CONTRACT_VERSION = 1 as const;

/** A topic level may not be empty and may not hold `/`, `+`, `#` or NUL. */
const TOPIC_LEVEL = /^[^/+#]+$/;

function checkLevel(what: string, value: string): string {
  if (!TOPIC_LEVEL.test(value) || value.includes('\0')) {
    throw new KioskError(ErrorCodes.USAGE, `${what} "${value}" is not a valid MQTT topic level`, {
      details: { [what]: value },
    });
  }
  return value;
}

/** All topics of one device: `<prefix>/<device_id>/...`. */
export class Topics {
  readonly base: string;
  readonly availability: string;
  readonly info: string;
  readonly health: string;
  readonly audit: string;

  constructor(prefix: string, deviceId: string) {
    if (prefix.length === 0 || /[+#]/.test(prefix) || prefix.includes('\0') || prefix.startsWith('/')) {
      throw new KioskError(
        ErrorCodes.USAGE,
        `MQTT prefix "${prefix}" may not be empty, start with / or hold wildcards`,
      );
    }
    this.base = `${prefix}/${checkLevel('device_id', deviceId)}`;
    this.availability = `${this.base}/availability`;
    this.info = `${this.base}/info`;
    this.health = `${this.base}/health`;
    this.audit = `${this.base}/audit`;
  }

  decision(cameraId: string): string {
    return `${this.base}/${checkLevel('camera_id', cameraId)}/decision`;
  }

  guidance(cameraId: string): string {
    return `${this.base}/${checkLevel('camera_id', cameraId)}/guidance`;
  }

  request(command: string): string {
    return `${this.base}/request/${checkLevel('command', command)}`;
  }

  response(command: string): string {
    return `${this.base}/response/${checkLevel('command', command)}`;
  }

  /**
   * Whether a requester's MQTT 5 response topic is honoured: only under this device's own
   * `response/` prefix (a topic elsewhere, another device's decision topic or a lock's `set`,
   * would let any client publish through the device past the broker's ACLs), with at most
   * RESPONSE_TOPIC_MAX_LEVELS non-empty levels and RESPONSE_TOPIC_MAX_BYTES bytes of UTF-8
   * below it, and nothing a broker refuses (wildcards, control characters, malformed UTF-8).
   * A broker closes the connection of a client that publishes a topic it refuses, so a reply
   * on such a topic would take the device off the broker (issue 24, finding 1).
   */
  responseTopicAllowed(requested: unknown): requested is string {
    if (typeof requested !== 'string') return false;
    const own = `${this.base}/response/`;
    if (!requested.startsWith(own)) return false;
    const below = requested.slice(own.length);
    if (below.length === 0 || Buffer.byteLength(below, 'utf8') > RESPONSE_TOPIC_MAX_BYTES) return false;
    const levels = below.split('/');
    if (levels.length > RESPONSE_TOPIC_MAX_LEVELS || levels.some((l) => l.length === 0)) return false;
    return topicProblem(requested) === null;
  }
}

/**
 * Limits on the part of a requester's response topic below `<base>/response/`. A correlation
 * id or a requester's name needs a level or two and a few dozen bytes; these leave room for
 * that and keep every reply topic far below MQTT's 65,535 bytes and mosquitto's 200 levels
 * whatever the configured prefix (a prefix plus device id is itself short).
 */
export const RESPONSE_TOPIC_MAX_LEVELS = 8;
export const RESPONSE_TOPIC_MAX_BYTES = 256;
