/**
 * The MQTT contract on the transport: the device's topics (`<prefix>/<device_id>/...`), its
 * client id, `availability` as birth and will, the retained `info` (both owned: another value
 * there is overwritten while connected), decisions and health. The transport below (daemon/mqtt/mqtt-link.ts) only
 * moves opaque messages; what a topic or payload means is decided here and above.
 */
import type { Config } from '../../config/schema.js';
import {
  MqttLink,
  type MqttLinkOptions,
  type PublishOutcome,
  readMqttPassword,
  readTlsFiles,
} from '../mqtt/mqtt-link.js';
import type { DecisionPayload, HealthPayload, InfoPayload } from './payloads.js';
import { Topics } from './topics.js';

export interface ContractLinkOptions extends Omit<MqttLinkOptions, 'clientId' | 'availability'> {
  deviceId: string;
  prefix: string;
  /** null: `fghv-<device_id>` (device ids that already start with `fghv-` are used as they are). */
  clientId: string | null;
}

/** The client id a device uses when the config names none. */
export function defaultClientId(deviceId: string): string {
  return deviceId.startsWith('fghv-') ? deviceId : `fghv-${deviceId}`;
}

/** The link options of the config's `mqtt` section (password and TLS files read here). */
export function linkOptionsFromConfig(
  mqtt: Config['mqtt'],
  deviceId: string,
  url: string | readonly string[],
  extra: Pick<ContractLinkOptions, 'log' | 'maxQueued'> = {},
  env: NodeJS.ProcessEnv = process.env,
): ContractLinkOptions {
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
    tls: readTlsFiles(mqtt.tls),
    ...extra,
  };
}

export class ContractLink extends MqttLink {
  readonly topics: Topics;

  constructor(options: ContractLinkOptions) {
    const { deviceId, prefix, clientId, ...transport } = options;
    const topics = new Topics(prefix, deviceId);
    super({
      ...transport,
      clientId: clientId ?? defaultClientId(deviceId),
      availability: { topic: topics.availability, online: 'online', offline: 'offline' },
    });
    this.topics = topics;
  }

  /** Retained `info`; published now if connected and changed, again on every connect, re-asserted when another value appears. */
  setInfo(info: InfoPayload): void {
    this.retain(this.topics.info, JSON.stringify(info));
  }

  /**
   * QoS 1, not retained, expiring at the payload's `expires_at`. `liveOnly`: never queued,
   * never re-sent after a reconnect (the durable audit outbox holds the decision instead), so
   * a decision made while the broker was unreachable never reaches a gate late, even within
   * its expiry.
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

  /** QoS 0: a health report missed while offline is replaced by the next one. */
  publishHealth(payload: HealthPayload): Promise<PublishOutcome> {
    return this.publish({
      topic: this.topics.health,
      payload: JSON.stringify(payload),
      qos: 0,
      retain: false,
    });
  }
}
