/**
 * The one configuration schema. Validation, the TypeScript type (`Config`), the defaults
 * (the embedded demo) and the environment overrides all derive from it. Unknown keys are
 * errors, so a typo never silently falls back to a default.
 */
import { z } from 'zod';
import { ed25519PublicKey } from '../core/ed25519.js';
import { ErrorCodes } from '../core/errors.js';
import { statusBindProblem } from '../core/net.js';

const positiveInt = z.number().int().positive();
const fraction = z.number().min(0).max(1);

/** Camera kinds: the one list (drivers/camera/index.ts has one case per kind). */
export const CAMERA_KINDS = [
  'file',
  'v4l2',
  'gstreamer',
  'image',
  'fake',
  'ffmpeg',
  'rtsp',
  'fswebcam',
  'node-webcam',
] as const;
export type CameraKind = (typeof CAMERA_KINDS)[number];

/** Face detectors: the one list (daemon/detect/index.ts has one case per name). */
export const DETECTOR_NAMES = ['blazeface', 'yunet'] as const;

/**
 * Longest life of a decision (`mqtt.decision_expiry_s`), in seconds: a gate acts on a decision
 * within seconds, and verifyDecision refuses one whose `expires_at` lies further after its `ts`
 * (issue 24, finding 9).
 */
export const MAX_DECISION_EXPIRY_S = 300;
export type DetectorName = (typeof DETECTOR_NAMES)[number];

export const cameraSchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'lower-case letters, digits, _ and -, at most 32 characters')
      .default('front'),
    kind: z.enum(CAMERA_KINDS).default('file'),
    /** file: a video path (relative paths are resolved against the repository root); v4l2: /dev/videoN or an index; gstreamer: a pipeline ending in appsink; ffmpeg: an input URL/path or ffmpeg input options (`-f lavfi -i testsrc`); rtsp: an rtsp:// URL; fswebcam: /dev/videoN (low-rate snapshot fallback); node-webcam: /dev/videoN on Linux, the platform tool's device name elsewhere, or `default` (snapshots through the node-webcam package). */
    source: z.string().min(1).default('media/demo-kiosk.mp4'),
    /** file sources: play again from the start when the end is reached. */
    loop: z.boolean().default(true),
    /** file sources: deliver frames at the file's frame rate (true) or as fast as the pipeline takes them. */
    realtime: z.boolean().default(true),
    /** v4l2: requested capture size and rate (null keeps the device default). */
    width: positiveInt.nullable().default(null),
    height: positiveInt.nullable().default(null),
    fps: z.number().positive().nullable().default(null),
    /** A source that delivers no frame for this long is closed and reopened. */
    stall_timeout_ms: positiveInt.default(5000),
    /**
     * Reconnection backoff for opens that fail while the source is there (a gone source is watched
     * for and reopened when back): the first delay, doubling per failure (with jitter) up to the maximum.
     */
    reconnect_min_ms: positiveInt.default(500),
    reconnect_max_ms: positiveInt.default(30000),
    /** Degrees clockwise that turn the captured image upright (a camera mounted sideways: 90 or 270). */
    rotate: z.union([z.literal(0), z.literal(90), z.literal(180), z.literal(270)]).default(0),
    /** Mirror after rotating: 'horizontal' (left-right, e.g. a selfie-mirrored camera) or 'vertical'. */
    flip: z.enum(['none', 'horizontal', 'vertical']).default('none'),
    /**
     * ffmpeg / rtsp: 'auto' lets an MJPEG source (a USB camera's `-input_format mjpeg`) hand its
     * JPEG images to the pipeline, which decodes them at the detector's size (libjpeg's DCT
     * scaling) and in full only for frames with a face; other codecs, and width/height/fps
     * conversions, are decoded by ffmpeg. 'reduced': as auto, and the quality gates and the
     * liveness crop also read a reduced decode where the crop still spans twice the model's
     * input (changes p_live a little: bench/performance.md). 'full': ffmpeg always decodes.
     */
    decode: z.enum(['auto', 'reduced', 'full']).default('auto'),
  })
  .default({
    id: 'front',
    kind: 'file',
    source: 'media/demo-kiosk.mp4',
    loop: true,
    realtime: true,
    width: null,
    height: null,
    fps: null,
    stall_timeout_ms: 5000,
    reconnect_min_ms: 500,
    reconnect_max_ms: 30000,
    rotate: 0,
    flip: 'none',
    decode: 'auto',
  });

const providerName = z.enum(['tensorrt', 'cuda', 'cpu']);

export const configSchema = z.strictObject({
  device: z
    .strictObject({
      /** Defaults to the machine id (/etc/machine-id), never the host name alone. */
      id: z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/)
        .nullable()
        .default(null),
      state_dir: z.string().default('.state'),
    })
    .prefault({}),
  mqtt: z
    .strictObject({
      /**
       * null: start the embedded broker on embedded_host:embedded_port and use it. A list:
       * failover, the first broker that answers, the next one when it is lost (daemon/mqtt/mqtt-link.ts).
       */
      url: z
        .union([z.string().url(), z.array(z.string().url()).min(1).max(16)])
        .nullable()
        .default(null),
      embedded_host: z.string().default('127.0.0.1'),
      embedded_port: z.number().int().min(0).max(65535).default(1883),
      /** 'auto': Debian's mosquitto when installed (MQTT 5: decision expiry holds), else aedes (MQTT 3.1.1, in-process). */
      embedded_broker: z.enum(['auto', 'mosquitto', 'aedes']).default('auto'),
      prefix: z
        .string()
        .regex(/^[^#+/][^#+]*$/, 'no wildcards, no leading slash')
        .default('fghv'),
      client_id: z.string().nullable().default(null),
      username: z.string().nullable().default(null),
      /** Read the password from this file (preferred) or from FGHV_MQTT_PASSWORD. */
      password_file: z.string().nullable().default(null),
      protocol_version: z.union([z.literal(4), z.literal(5)]).default(5),
      keepalive_s: positiveInt.default(30),
      reconnect_min_ms: positiveInt.default(500),
      reconnect_max_ms: positiveInt.default(30000),
      decision_expiry_s: positiveInt.max(MAX_DECISION_EXPIRY_S).default(10),
      health_interval_s: z.number().positive().default(30),
      /** For mqtts:// URLs: PEM files; the client certificate and key only when the broker asks for them. */
      tls: z
        .strictObject({
          ca_file: z.string().nullable().default(null),
          cert_file: z.string().nullable().default(null),
          key_file: z.string().nullable().default(null),
          reject_unauthorized: z.boolean().default(true),
        })
        .prefault({}),
      /** Home Assistant MQTT discovery: retained config under `<prefix>/...`, resent when `<prefix>/status` says online. */
      homeassistant: z
        .strictObject({
          enabled: z.boolean().default(false),
          prefix: z
            .string()
            .regex(/^[^#+/][^#+]*$/, 'no wildcards, no leading slash')
            .default('homeassistant'),
        })
        .prefault({}),
    })
    .prefault({}),
  audit: z
    .strictObject({
      /** Retention of the durable audit log (`<state_dir>/audit.sqlite`): whichever limit is reached first. */
      max_records: positiveInt.default(100_000),
      max_mb: z.number().positive().default(64),
      max_age_days: z.number().positive().default(30),
      /** `full`: every record survives a power loss too; `normal`: a process crash only (faster). */
      synchronous: z.enum(['full', 'normal']).default('full'),
    })
    .prefault({}),
  commands: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Requests must carry `sig` (Ed25519 over canonical JSON) by one of `fleet_public_keys` and a fresh `ts`. */
      require_signature: z.boolean().default(false),
      /** Base64 of raw 32-byte Ed25519 public keys, or PEM. */
      fleet_public_keys: z
        .array(
          // Parsed as `run` parses it, so `config check` refuses what `run` would (issue 24, finding 9).
          z
            .string()
            .min(1)
            .refine((k) => {
              try {
                ed25519PublicKey(k, ErrorCodes.SIGNATURE_KEY_INVALID, 'invalid');
                return true;
              } catch {
                return false;
              }
            }, 'not an Ed25519 public key: base64 of the raw 32 bytes (as info.decision_public_key), or PEM'),
        )
        .default([]),
      /** A signed request's `ts` may differ from the device clock by at most this. */
      max_clock_skew_s: positiveInt.default(60),
      /** Larger request payloads are refused unread. */
      max_payload_bytes: positiveInt.default(65536),
    })
    .prefault({}),
  cameras: z
    .array(cameraSchema)
    .min(1)
    .default([cameraSchema.parse(undefined)]),
  detector: z
    .strictObject({
      name: z.enum(DETECTOR_NAMES).default('blazeface'),
      /** A path or an installed model name (`yunet-s`); null: the default for the detector (BlazeFace from its npm package, YuNet the installed `yunet-s`). */
      model: z.string().nullable().default(null),
      score_threshold: fraction.default(0.6),
      /**
       * Faces scored between this and score_threshold are not decided on but reported: the
       * guidance topic says `face_detected` instead of `idle`, and the pipeline counts them.
       */
      report_threshold: fraction.default(0.3),
      nms_iou: fraction.default(0.3),
      max_faces: positiveInt.default(10),
    })
    .prefault({}),
  liveness: z
    .strictObject({
      /** Path to a model manifest (JSON), or an installed model name (`minifasnet-v2`, see `fghv-kiosk model list`). */
      manifest: z.string().default('models/fghv-demo/manifest.json'),
      /** Execution providers, tried one at a time in this order. */
      providers: z.array(providerName).min(1).default(['tensorrt', 'cuda', 'cpu']),
      /**
       * ONNX Runtime intra-op threads per session, for the detector and the liveness model alike.
       * 0 (auto): the cores shared between the two inference lanes, which run at the same time
       * (2 cores: 1 each; 6 cores: 3 each; daemon/inference/inference-worker.ts).
       */
      intra_op_threads: z.number().int().min(0).default(0),
      /**
       * ONNX Runtime intra-op threads spin while waiting for work (ORT's own default) or sleep.
       * Off by default: the detector's and the liveness model's thread pools otherwise spin
       * against each other, the decoder and the event loop (+20-45 % fps on a 2-core machine,
       * bench/performance.md). Applies to the detector too, like intra_op_threads.
       */
      intra_op_spinning: z.boolean().default(false),
      /** TensorRT provider options (set through its ORT_TENSORRT_* environment; see daemon/inference/tensorrt.ts). */
      tensorrt: z
        .strictObject({
          fp16: z.boolean().default(true),
          engine_cache: z.boolean().default(true),
          max_workspace_mb: z.number().positive().default(1024),
        })
        .prefault({}),
      /** Optional per-site overrides of the manifest's thresholds. */
      thresholds: z.record(z.string(), z.number()).default({}),
      /** `set_thresholds` may loosen thresholds below the model's (manifest + this file); off: only stricter values. */
      allow_looser_thresholds: z.boolean().default(false),
    })
    .prefault({}),
  quality: z
    .strictObject({
      /** Minimum face size, the shorter side of the detected box, in pixels. */
      min_face_px: positiveInt.default(80),
      /** Minimum sharpness: variance v of the Laplacian of the grey face at 112x112, mapped to 0..1 as v/(v+500). */
      min_sharpness: fraction.default(0.05),
      min_brightness: fraction.default(0.15),
      max_brightness: fraction.default(0.9),
    })
    .prefault({}),
  decision: z
    .strictObject({
      /** Frames of one tracked face that a session collects before deciding. */
      frames: positiveInt.default(5),
      /** Verified-live frames (of `frames`) needed to accept. */
      min_live: positiveInt.default(4),
      /** Spoof frames (of `frames`) that reject the session. */
      min_spoof: positiveInt.default(3),
      /** A session that has not gathered `frames` good frames after this long ends in retry. */
      session_timeout_ms: positiveInt.default(4000),
      /** A track that is not seen for this long is lost. */
      track_lost_ms: positiveInt.default(700),
      /** After a decision, wait this long before deciding again on the same track. */
      cooldown_ms: z.number().int().min(0).default(3000),
      /**
       * 'presence': one accept or reject per tracked person: no new decision on that track until
       * it is lost (the person left) or a client sends request/verify; retries at most every
       * retry_interval_ms per person. 'cooldown': a new session after every cooldown_ms.
       */
      redecide: z.enum(['presence', 'cooldown']).default('presence'),
      /** redecide 'presence': a person who got a retry may get the next one after this long. */
      retry_interval_ms: z.number().int().min(0).default(10000),
      /** IoU above which a detection continues a track. */
      track_iou: fraction.default(0.3),
      /** Several faces in view: 'retry' (safe for gates) or 'largest' (decide on the largest face). */
      multiple_faces: z.enum(['retry', 'largest']).default('retry'),
      /** What an uncertain verification becomes: never accept. */
      uncertain_action: z.enum(['retry', 'reject']).default('retry'),
      /** A frame older than this when its turn comes is not decided on. */
      max_frame_age_ms: positiveInt.default(1000),
      /**
       * redecide 'presence': a held person's face back after this long without a detection (or
       * under a new track) must match their look to stay held; anyone else is a new presence.
       */
      presence_gap_ms: z.number().int().min(0).default(250),
      /** redecide 'presence': after a retry the person can fix, decide again once it has been fixed this long. */
      retry_settle_ms: z.number().int().min(0).default(500),
    })
    .prefault({}),
  status: z
    .strictObject({
      /** The local status page (live preview, last decisions) and /metrics. */
      enabled: z.boolean().default(true),
      /** Loopback by default: preview frames never leave the device unless this is changed. */
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8080),
      /** Required when host is not a loopback address: a bearer token (or basic-auth password) read from this file. */
      token_file: z.string().nullable().default(null),
      /** Preview frames per second while the page is open. */
      preview_fps: z.number().positive().max(30).default(5),
    })
    .superRefine((s, ctx) => {
      const problem = s.enabled ? statusBindProblem(s) : null;
      if (problem) ctx.addIssue({ code: 'custom', message: problem, path: ['token_file'] });
    })
    .prefault({}),
  /**
   * Scene gate (daemon/pipeline/scene-gate.ts): nobody in view and nothing moving, the face
   * detector runs only idle_fps times a second; any change, a face, or an open presence: every frame.
   */
  scene_gate: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Detections per second while the scene is empty and still. */
      idle_fps: z.number().positive().max(120).default(2),
      /** Width of the grey thumbnail frames are compared on (aspect kept). */
      thumb_width: z.number().int().min(8).max(640).default(80),
      /** A thumbnail pixel has changed when it moved by more than this many grey levels (0-255). */
      pixel_delta: z.number().int().min(1).max(254).default(12),
      /** The scene has changed when more than this fraction of thumbnail pixels changed. */
      min_changed: fraction.default(0.002),
      /** Full rate for this long after the last change or the last face the detector returned. */
      hold_ms: z.number().int().min(0).default(2000),
    })
    .prefault({}),
  supervision: z
    .strictObject({
      /** A running camera pipeline that finishes no frame for this long counts as stalled (watchdog stops). */
      stall_ms: positiveInt.default(15000),
      /** Graceful stop deadline; a second signal or this deadline forces the exit. */
      stop_deadline_ms: positiveInt.default(10000),
    })
    .prefault({}),
  model_update: z
    .strictObject({
      /** Ed25519 public key (PEM, or base64 of the raw 32 bytes) in this file: when set, a new model must carry a valid signature of its bytes. */
      public_key_file: z.string().nullable().default(null),
      /** The `model_update` command reads only regular files inside this directory (null: `<state_dir>/incoming`). */
      incoming_dir: z.string().nullable().default(null),
      /** Larger model files are refused before they are read. */
      max_model_mb: z.number().positive().default(512),
    })
    .prefault({}),
  /** Third-party models installed by `fghv-kiosk model fetch` (models/catalogue.json). */
  models: z
    .strictObject({
      /** Where `model fetch` installs and where model names resolve (null: `<device.state_dir>/models/fetched`). */
      dir: z.string().nullable().default(null),
      /** Where `model fetch` looks first: a folder (files under any names, found by sha256) or a site's http(s) mirror URL. */
      mirror: z.string().nullable().default(null),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
      /** 'auto': readable in a terminal, JSON otherwise. */
      format: z.enum(['auto', 'json', 'pretty']).default('auto'),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type CameraConfig = z.infer<typeof cameraSchema>;
export type ConfigInput = z.input<typeof configSchema>;
