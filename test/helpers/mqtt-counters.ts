import type { MqttCounters } from '../../daemon/contract/payloads.js';

/** A connected link's counters after three publishes (health and metrics fixtures). */
export function mqttCounters(over: Partial<MqttCounters> = {}): MqttCounters {
  return {
    connected: true,
    protocol_version: 5,
    connects: 1,
    disconnects: 0,
    published: 3,
    dropped: 0,
    queued: 0,
    ...over,
  };
}
