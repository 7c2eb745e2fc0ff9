/** Publishes Home Assistant discovery on every connect and when Home Assistant comes online. */

import type { ContractLink } from './contract-link.js';
import { type DiscoveryExpiry, haDiscoveryMessages } from './ha-discovery.js';
import type { InfoPayload } from './topics.js';

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
