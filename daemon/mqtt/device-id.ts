/**
 * The device id: one MQTT topic level that names this kiosk, stable across restarts and
 * never the host name alone (kiosks are imaged from one template and share host names).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';

export type DeviceIdSource = 'config' | 'machine-id' | 'state';

export interface DeviceIdOptions {
  /** config `device.id` (already validated by the schema), or null. */
  configured: string | null;
  stateDir: string;
  machineIdPath?: string;
}

/** Same pattern as the config schema: a safe topic level, a safe file name. */
const VALID_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * machine-id is meant to stay private (systemd's machine-id(5)); publish an app-specific hash
 * of it instead, as sd_id128_get_machine_app_specific does.
 */
export function deviceIdFromMachineId(machineId: string): string | null {
  const id = machineId.trim().toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(id) || /^0+$/.test(id)) return null;
  return `fghv-${createHash('sha256').update(`fghv-kiosk:${id}`).digest('hex').slice(0, 12)}`;
}

export function resolveDeviceId(opts: DeviceIdOptions): { id: string; source: DeviceIdSource } {
  if (opts.configured !== null) {
    if (!VALID_ID.test(opts.configured)) {
      throw new KioskError(
        ErrorCodes.CONFIG_INVALID,
        `device.id "${opts.configured}" is not a valid topic level`,
      );
    }
    return { id: opts.configured, source: 'config' };
  }
  const fromMachine = readOptional(opts.machineIdPath ?? '/etc/machine-id');
  const hashed = fromMachine === null ? null : deviceIdFromMachineId(fromMachine);
  if (hashed !== null) return { id: hashed, source: 'machine-id' };

  // No machine id (containers, some images): a random id, created once and kept.
  const file = path.join(opts.stateDir, 'device-id');
  const stored = readOptional(file)?.trim();
  if (stored && VALID_ID.test(stored)) return { id: stored, source: 'state' };
  const id = `fghv-${randomBytes(6).toString('hex')}`;
  try {
    writeFileAtomic(file, `${id}\n`);
  } catch (cause) {
    throw new KioskError(ErrorCodes.STATE_WRITE_FAILED, `cannot persist the device id to ${file}`, { cause });
  }
  return { id, source: 'state' };
}

function readOptional(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}
