/**
 * Audit event payloads (contract: `audit`, schema contract/schemas/audit-event.json): what
 * happened to the device besides decisions.
 */
import { monotonicFactory } from 'ulid';
import { CONTRACT_VERSION } from '../topics.js';

export type AuditEventName =
  | 'camera_lost'
  | 'camera_back'
  | 'model_changed'
  | 'config_changed'
  | 'command_executed'
  | 'daemon_started'
  | 'daemon_stopped';

export interface AuditEventPayload {
  v: typeof CONTRACT_VERSION;
  id: string;
  ts: string;
  device_id: string;
  event: AuditEventName;
  details: Record<string, unknown>;
  replayed?: true;
}

const nextUlid = monotonicFactory();

export function buildAuditEvent(
  deviceId: string,
  event: AuditEventName,
  details: Record<string, unknown>,
  nowMs = Date.now(),
): AuditEventPayload {
  return {
    v: CONTRACT_VERSION,
    id: nextUlid(nowMs),
    ts: new Date(nowMs).toISOString(),
    device_id: deviceId,
    event,
    details,
  };
}
