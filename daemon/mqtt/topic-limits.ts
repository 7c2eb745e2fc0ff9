/**
 * What a broker accepts as a topic name in a PUBLISH, checked before the link writes one. A
 * broker answers a topic it refuses by closing the connection (mosquitto does for more than
 * 200 levels, for control characters and for malformed UTF-8), so sending one costs the link
 * its connection and, if the message were re-sent, every later connection too (issue 24,
 * finding 1). The transport refuses such a message itself and keeps its connection.
 *
 * - MQTT (3.1.1 and 5): a UTF-8 string of at most 65,535 bytes, at least one character, no
 *   NUL, no wildcard (`+`, `#`) in a topic name; control characters (U+0001..U+001F,
 *   U+007F..U+009F) and non-characters "SHOULD NOT" appear, and mosquitto refuses them.
 * - mosquitto: at most 200 levels (a fixed limit in its source; other brokers may differ, so
 *   the limit is an option of the link).
 */

/** MQTT's own limit on a topic name: a length-prefixed UTF-8 string. */
export const MQTT_MAX_TOPIC_BYTES = 65_535;
/** mosquitto refuses topics of more levels than this (and closes the connection). */
export const BROKER_MAX_TOPIC_LEVELS = 200;

export interface TopicLimits {
  maxBytes: number;
  maxLevels: number;
}

export const DEFAULT_TOPIC_LIMITS: TopicLimits = {
  maxBytes: MQTT_MAX_TOPIC_BYTES,
  maxLevels: BROKER_MAX_TOPIC_LEVELS,
};

/**
 * Characters no topic name of ours may hold: NUL and the other C0/C1 controls (Cc), lone
 * surrogates (Cs: not encodable as UTF-8; with the `u` flag a valid pair is one code point and
 * does not match), the Unicode non-characters and the wildcards.
 */
const FORBIDDEN = /[\p{Cc}\p{Cs}\p{Noncharacter_Code_Point}+#]/u;

/** Why a broker would refuse `topic` as a PUBLISH topic name (null: it is acceptable). */
export function topicProblem(topic: string, limits: TopicLimits = DEFAULT_TOPIC_LIMITS): string | null {
  if (topic.length === 0) return 'empty topic';
  if (FORBIDDEN.test(topic)) {
    return 'topic holds a wildcard, a control character or a character that is not valid UTF-8';
  }
  const bytes = Buffer.byteLength(topic, 'utf8');
  if (bytes > limits.maxBytes) return `topic of ${bytes} bytes exceeds ${limits.maxBytes}`;
  let levels = 1;
  for (let i = topic.indexOf('/'); i !== -1; i = topic.indexOf('/', i + 1)) {
    if (++levels > limits.maxLevels) return `topic has more than ${limits.maxLevels} levels`;
  }
  return null;
}
