/**
 * Home Assistant MQTT discovery: retained config messages under
 * `<ha_prefix>/sensor/<device_id>/<object>/config`, one sensor per camera's last decision plus
 * the health figures, all tied to the daemon's availability topic. Home Assistant forgets
 * them when it restarts, so they are resent when `<ha_prefix>/status` says `online`.
 * Every sensor has `expire_after`: a decision sensor turns `unavailable` when the decision
 * expires (decision_expiry_s), so it never shows the last accept forever; the health sensors
 * when three health messages were missed.
 *
 * `haDiscoveryMessages` builds the messages (pure, tested on its own); `HaDiscovery` publishes
 * them on every connect and when Home Assistant comes online.
 */
import type { ContractLink } from './contract-link.js';
import type { InfoPayload } from './payloads.js';
import type { Topics } from './topics.js';

export interface DiscoveryMessage {
  topic: string;
  payload: string;
}

export interface DiscoveryExpiry {
  /** mqtt.decision_expiry_s */
  decisionS: number;
  /** mqtt.health_interval_s */
  healthIntervalS: number;
}

export function haDiscoveryMessages(
  haPrefix: string,
  topics: Topics,
  info: InfoPayload,
  expiry: DiscoveryExpiry,
): DiscoveryMessage[] {
  const healthExpire = Math.max(1, Math.ceil(3 * expiry.healthIntervalS));
  const id = info.device_id;
  const device = {
    identifiers: [`fghv_${id}`],
    name: `FGHV kiosk ${id}`,
    manufacturer: 'fghv-kiosk',
    sw_version: info.software.version,
  };
  const common = { availability_topic: topics.availability, device };
  const sensors: { object: string; config: Record<string, unknown> }[] = info.cameras.map((c) => ({
    object: `${c.id}_decision`,
    config: {
      name: `${c.id} decision`,
      state_topic: topics.decision(c.id),
      value_template: '{{ value_json.decision }}',
      json_attributes_topic: topics.decision(c.id),
      expire_after: expiry.decisionS,
      icon: 'mdi:face-recognition',
    },
  }));
  sensors.push(
    {
      object: 'processed_fps',
      config: {
        name: 'processed fps',
        state_topic: topics.health,
        value_template: '{{ value_json.fps.processed }}',
        unit_of_measurement: 'fps',
        state_class: 'measurement',
        expire_after: healthExpire,
      },
    },
    {
      object: 'outbox_pending',
      config: {
        name: 'audit outbox pending',
        state_topic: topics.health,
        value_template: '{{ value_json.outbox.pending if value_json.outbox else 0 }}',
        state_class: 'measurement',
        expire_after: healthExpire,
      },
    },
  );
  return sensors.map(({ object, config }) => ({
    topic: `${haPrefix}/sensor/${id}/${object}/config`,
    payload: JSON.stringify({
      ...config,
      ...common,
      unique_id: `fghv_${id}_${object}`,
      object_id: `fghv_${id}_${object}`,
    }),
  }));
}

/** Publishes Home Assistant discovery on every connect and when Home Assistant comes online. */
export class HaDiscovery {
  private readonly statusTopic: string;
  private readonly onConnect = () => this.publish();
  private readonly onMessage = (topic: string, payload: Buffer) => {
    if (topic === this.statusTopic && payload.toString() === 'online') this.publish();
  };

  constructor(
    private readonly link: ContractLink,
    private readonly prefix: string,
    private readonly info: () => InfoPayload,
    private readonly expiry: DiscoveryExpiry,
  ) {
    this.statusTopic = `${prefix}/status`;
  }

  start(): void {
    this.link.on('connect', this.onConnect);
    this.link.on('message', this.onMessage);
    this.link.subscribe(this.statusTopic);
    if (this.link.isConnected) this.publish();
  }

  stop(): void {
    this.link.off('connect', this.onConnect);
    this.link.off('message', this.onMessage);
  }

  private publish(): void {
    for (const m of haDiscoveryMessages(this.prefix, this.link.topics, this.info(), this.expiry)) {
      void this.link.publish({ topic: m.topic, payload: m.payload, qos: 1, retain: true });
    }
  }
}
