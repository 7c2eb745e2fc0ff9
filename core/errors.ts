/**
 * One registry of stable error codes. Every error the daemon reports to a user carries one of
 * these codes; the codes are part of the public contract (logs, CLI exit messages, MQTT
 * command responses) and never change meaning.
 */
export const ErrorCodes = {
  CONFIG_PARSE: 'KIOSK_E_CONFIG_PARSE',
  CONFIG_INVALID: 'KIOSK_E_CONFIG_INVALID',
  CONFIG_NOT_FOUND: 'KIOSK_E_CONFIG_NOT_FOUND',
  MANIFEST_INVALID: 'KIOSK_E_MANIFEST_INVALID',
  MANIFEST_NOT_FOUND: 'KIOSK_E_MANIFEST_NOT_FOUND',
  MODEL_NOT_FOUND: 'KIOSK_E_MODEL_NOT_FOUND',
  MODEL_SHA_MISMATCH: 'KIOSK_E_MODEL_SHA_MISMATCH',
  MODEL_CORRUPT: 'KIOSK_E_MODEL_CORRUPT',
  MODEL_SHAPE_MISMATCH: 'KIOSK_E_MODEL_SHAPE_MISMATCH',
  PROVIDER_UNAVAILABLE: 'KIOSK_E_PROVIDER_UNAVAILABLE',
  INFERENCE_FAILED: 'KIOSK_E_INFERENCE_FAILED',
  WORKER_DIED: 'KIOSK_E_WORKER_DIED',
  CAMERA_NOT_FOUND: 'KIOSK_E_CAMERA_NOT_FOUND',
  CAMERA_OPEN_FAILED: 'KIOSK_E_CAMERA_OPEN_FAILED',
  CAMERA_READ_FAILED: 'KIOSK_E_CAMERA_READ_FAILED',
  CAMERA_ENDED: 'KIOSK_E_CAMERA_ENDED',
  CAMERA_UNSUPPORTED: 'KIOSK_E_CAMERA_UNSUPPORTED',
  IMAGE_UNREADABLE: 'KIOSK_E_IMAGE_UNREADABLE',
  DETECTOR_UNKNOWN: 'KIOSK_E_DETECTOR_UNKNOWN',
  MQTT_CONNECT: 'KIOSK_E_MQTT_CONNECT',
  MQTT_BROKER_START: 'KIOSK_E_MQTT_BROKER_START',
  USAGE: 'KIOSK_E_USAGE',
  INTERNAL: 'KIOSK_E_INTERNAL',
  STATE_CORRUPT: 'KIOSK_E_STATE_CORRUPT',
  STATE_WRITE_FAILED: 'KIOSK_E_STATE_WRITE_FAILED',
  SIGNATURE_KEY_INVALID: 'KIOSK_E_SIGNATURE_KEY_INVALID',
  AUDIT_STORE: 'KIOSK_E_AUDIT_STORE',
  NOT_IMPLEMENTED: 'KIOSK_E_NOT_IMPLEMENTED',
  COMMAND_MALFORMED: 'KIOSK_E_COMMAND_MALFORMED',
  COMMAND_TOO_LARGE: 'KIOSK_E_COMMAND_TOO_LARGE',
  COMMAND_UNKNOWN: 'KIOSK_E_COMMAND_UNKNOWN',
  COMMAND_INVALID: 'KIOSK_E_COMMAND_INVALID',
  COMMAND_UNSIGNED: 'KIOSK_E_COMMAND_UNSIGNED',
  COMMAND_SIGNATURE_INVALID: 'KIOSK_E_COMMAND_SIGNATURE_INVALID',
  COMMAND_BUSY: 'KIOSK_E_COMMAND_BUSY',
  COMMAND_FAILED: 'KIOSK_E_COMMAND_FAILED',
  STATUS_AUTH_CONFIG: 'KIOSK_E_STATUS_AUTH_CONFIG',
  STATUS_LISTEN: 'KIOSK_E_STATUS_LISTEN',
  MODEL_SIGNATURE_INVALID: 'KIOSK_E_MODEL_SIGNATURE_INVALID',
  MODEL_SELF_TEST_FAILED: 'KIOSK_E_MODEL_SELF_TEST_FAILED',
  MODEL_UPDATE_FAILED: 'KIOSK_E_MODEL_UPDATE_FAILED',
  CAMERA_STALLED: 'KIOSK_E_CAMERA_STALLED',
  DRILL_INVALID: 'KIOSK_E_DRILL_INVALID',
  DRILL_TOO_FEW: 'KIOSK_E_DRILL_TOO_FEW',
  MODEL_UNKNOWN: 'KIOSK_E_MODEL_UNKNOWN',
  MODEL_DOWNLOAD_FAILED: 'KIOSK_E_MODEL_DOWNLOAD_FAILED',
  MODEL_NOT_IN_MIRROR: 'KIOSK_E_MODEL_NOT_IN_MIRROR',
  MODEL_CATALOGUE_INVALID: 'KIOSK_E_MODEL_CATALOGUE_INVALID',
  /** `fghv-kiosk fleet`: the pinned fleet keys file is unreadable or malformed. */
  FLEET_KEYS_INVALID: 'KIOSK_E_FLEET_KEYS_INVALID',
  /** A stop request arrived while the daemon was starting (not an error of the device). */
  START_CANCELLED: 'KIOSK_E_START_CANCELLED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class KioskError extends Error {
  readonly code: ErrorCode;
  /** Extra structured facts for logs (paths, expected vs actual). Never secrets. */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KioskError';
    this.code = code;
    this.details = options?.details;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** OpenCV's Node binding throws plain strings; turn anything thrown into an Error. */
export function asError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : JSON.stringify(thrown));
}

export function isKioskError(e: unknown, code?: ErrorCode): e is KioskError {
  return e instanceof KioskError && (code === undefined || e.code === code);
}
