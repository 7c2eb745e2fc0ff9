/**
 * The `fghv-kiosk` command line. Signals are handled only here (see `run`), once.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, packageRoot } from '../../config/load.js';
import { asError, ErrorCodes, KioskError } from '../../core/errors.js';
import { createLogger, redactSecrets } from '../../core/log.js';
import { resolveStatusToken } from '../status/auth.js';

const VERSION = (
  JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }
).version;

const HELP = `fghv-kiosk ${VERSION}: face liveness (presentation attack detection) daemon

Usage:
  fghv-kiosk run [--config FILE]
      Run the daemon. Without --config it runs the embedded demo: the sample video,
      the demo liveness model and an embedded MQTT broker on 127.0.0.1:1883.
  fghv-kiosk classify --model MANIFEST|NAME [--config FILE] [--detector blazeface|yunet]
                      [--detector-model FILE] [--providers cpu,...] [--threads N]
                      [--skip-quality] [--exif] [--json] IMAGE...
      Detect -> quality gates -> align -> liveness -> per-frame verdict on still images,
      as the daemon does it: a face that fails a quality gate (quality.* of --config, or
      the defaults) gets no verdict (verdict null, quality_gate says which); --skip-quality
      classifies it anyway. Scores use the decision payload's names (p_real, var, delta_kl).
      With --json one JSON line per image: {"file","faces":[{"box","landmarks","quality",
      "quality_gate","verdict","scores",...}]}. Pixels are read as stored; --exif applies
      EXIF orientation tags. --model and --detector-model take an installed model's name
      (minifasnet-v2, yunet-s; see model list) as well as a path.
  fghv-kiosk config check FILE [--schema-only]
      Validate a configuration file; print every error with its path, and every file it
      names that is missing on this machine (detector model, manifest, password, TLS and
      key files; --schema-only skips that, for a file meant for another machine); exit 1
      if invalid.
  fghv-kiosk config defaults
      Print the complete default configuration (the embedded demo) as YAML.
  fghv-kiosk cameras
      List /dev/video* devices with their formats and sizes, and the capture backends.
  fghv-kiosk doctor [--config FILE] [--json]
      Check camera access, model files (liveness and detector), the files the config
      names, execution providers, broker, clock and disk space, and explain each failure;
      exit 1 if any check fails. Changes nothing on disk.
  fghv-kiosk model install FILE MANIFEST [--config FILE] [--signature BASE64]
      Verify (sha256; when model_update.public_key_file is set, a signature over model
      and manifest, see docs/security.md), load, warm up
      and self-test a liveness model, then install it in the state directory as the model
      the daemon starts with; the previous one is kept.
  fghv-kiosk model fetch [NAME...] [--mirror DIR|URL] [--config FILE] [--json]
      Install catalogue models (models/catalogue.json) under models.dir (default
      <state_dir>/models/fetched): from the publisher, a site's HTTP mirror (URL/FILE) or a
      folder holding the files under any names (found by sha256, e.g. a USB stick). Shows the
      licence; checks size and sha256 before anything is installed; an interrupted download
      resumes on the next run. Without NAME: the models the config uses. Proxies: HTTPS_PROXY,
      HTTP_PROXY, NO_PROXY. The daemon itself never downloads.
  fghv-kiosk model list [--config FILE] [--json]
      The catalogue: each model's kind, licence, and whether it is installed.
  fghv-kiosk drill [--config FILE] [--labels FILE] [--camera ID] [--target T] [--keep-images] [--json]
      Site acceptance drill on the live pipeline: record labelled bona fide and attack
      presentations (prompts on the terminal, or --labels FILE with video files as cameras),
      then report BPCER/APCER with 95 % intervals and propose thresholds for T (eer or
      bpcer<=1%). No face images are stored unless --keep-images.
  fghv-kiosk drill report [ID] [--config FILE] [--target T] [--json]
      Make the report of a recorded drill again (default: the newest).
  fghv-kiosk drill apply [ID] [--config FILE] [--revert]
      Apply the drill's proposed thresholds like set_thresholds (stored, audited); --revert undoes it.
  fghv-kiosk verify (--key BASE64 | --info FILE) [--live] [--device ID] [--camera ID] [--check-expiry] [FILE...]
      Verify signed decisions, one JSON per line (stdin without FILE); exit 1 if any fails.
  fghv-kiosk fleet --broker URL [--port N] [--host H] [--prefix P] [--keys FILE]
                   [--token-file FILE] [--connections N] [--username U] [--ca FILE]
      Fleet console on http://H:N/ (default 127.0.0.1:8090) and /api/fleet (JSON): every
      device on the broker with online state, model, overrides, cameras, fps, decisions
      per minute, clock skew, and its last decision's signature checked against the key
      of its retained info, or of the pinned --keys file ({"device_id": "base64 key"}).
      Loopback only unless --token-file is given. Password: FGHV_MQTT_PASSWORD.
  fghv-kiosk version | --version
  fghv-kiosk help | --help

Environment: FGHV_CONFIG (config file for run), FGHV_<SECTION>__<KEY>=value overrides a
config key (e.g. FGHV_MQTT__URL=mqtt://broker:1883), FGHV_MQTT_PASSWORD.
Exit codes: 0 ok, 1 failure (a KIOSK_E_* code is printed), 2 usage error.`;

/** The HELP blocks of one command (`fghv-kiosk <cmd> --help`). */
export function commandHelp(cmd: string): string {
  const blocks = HELP.split(/\n(?= {2}fghv-kiosk )/).filter(
    (b) => b.startsWith(`  fghv-kiosk ${cmd} `) || b.startsWith(`  fghv-kiosk ${cmd}\n`),
  );
  return `Usage:\n${blocks.join('\n').replace(/\n\nEnvironment:[\s\S]*$/, '')}`;
}

const COMMANDS = [
  'run',
  'classify',
  'config',
  'cameras',
  'doctor',
  'model',
  'drill',
  'verify',
  'fleet',
  'version',
  'help',
];

/** Commands with sub-commands that have a help block of their own (`drill report --help`). */
const SUBCOMMANDS: Record<string, string[]> = {
  drill: ['report', 'apply'],
  model: ['install', 'fetch', 'list'],
};

function usage(message: string): never {
  throw new KioskError(ErrorCodes.USAGE, `${message}\nRun \`fghv-kiosk --help\` for usage.`);
}

async function cmdConfig(args: string[]): Promise<number> {
  const schemaOnly = args.includes('--schema-only');
  const [sub, file, ...rest] = args.filter((a) => a !== '--schema-only');
  if (sub === 'defaults') {
    const YAML = (await import('yaml')).default;
    // Paths resolved (absolute), so the printed file validates wherever it is saved.
    process.stdout.write(YAML.stringify(loadConfig(null, {}).config));
    return 0;
  }
  if (sub !== 'check' || !file || rest.length)
    usage('config: expected `config check FILE` or `config defaults`');
  // What `run` would use: the file with the FGHV_* environment applied; the files it names
  // checked by the rule they are read by (regular files of a bounded size, core/file-rule.ts),
  // then the status token read and checked as at start.
  const { config, file: abs, envKeys } = loadConfig(file);
  const { fileProblems, missingHint } = await import('./config-files.js');
  const problems = schemaOnly ? [] : fileProblems(config);
  if (problems.length) {
    // A missing catalogue model is named with the fetch command that installs it.
    const why = (m: (typeof problems)[number]) =>
      (m.problem === 'does not exist' && missingHint(m, abs)) || ` ${m.problem}`;
    throw new KioskError(
      ErrorCodes.CONFIG_INVALID,
      `${abs}: valid syntax, but files it names cannot be used:\n${problems.map((m) => `  ${m.key}: ${m.path}${why(m)}`).join('\n')}`,
      {
        details: {
          files: problems.map(({ key, path: p, problem, model }) => ({
            key,
            path: p,
            problem,
            ...(model ? { model } : {}),
          })),
        },
      },
    );
  }
  if (config.status.enabled) resolveStatusToken(config.status);
  process.stdout.write(`${abs}: valid${envKeys.length ? ` (with ${envKeys.join(', ')})` : ''}\n`);
  return 0;
}

async function cmdClassify(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      config: { type: 'string' },
      detector: { type: 'string' },
      'skip-quality': { type: 'boolean', default: false },
      'detector-model': { type: 'string' },
      providers: { type: 'string', default: 'cpu' },
      threads: { type: 'string', default: '0' },
      json: { type: 'boolean', default: false },
      exif: { type: 'boolean', default: false },
    },
  });
  if (!values.model) usage('classify: --model MANIFEST is required');
  if (!positionals.length) usage('classify: give at least one IMAGE');
  const { DETECTOR_NAMES } = await import('../detect/index.js');
  if (values.detector !== undefined && !(DETECTOR_NAMES as readonly string[]).includes(values.detector))
    usage(`classify: unknown --detector "${values.detector}"; valid names: ${DETECTOR_NAMES.join(', ')}`);
  const threads = Number(values.threads);
  if (!Number.isInteger(threads) || threads < 0) usage('classify: --threads takes a whole number >= 0');
  const { config, file } = loadConfig(values.config ?? null, {});
  const { fetchCommand, isModelName, modelRef, modelsDirOf } = await import('../../config/models.js');
  const modelsDir = modelsDirOf(config);
  // A name stands for the installed model; one that is not installed says how to install it.
  const named = (ref: string, kind: 'detector' | 'liveness') => {
    const p = path.resolve(modelRef(ref, kind, modelsDir));
    if (isModelName(ref) && !existsSync(p))
      throw new KioskError(
        ErrorCodes.MODEL_NOT_FOUND,
        `${ref} is not installed (${p}); run \`${fetchCommand([ref], file ?? 'FILE')}\``,
        { details: { name: ref, path: p } },
      );
    return p;
  };
  const detector = values.detector ?? config.detector.name;
  const { classifyImages } = await import('./classify.js');
  const log = createLogger({ level: 'warn', format: 'auto' });
  const results = await classifyImages({
    manifest: named(values.model, 'liveness'),
    detector,
    detectorTuning: {
      scoreThreshold: config.detector.score_threshold,
      nmsIou: config.detector.nms_iou,
      maxFaces: config.detector.max_faces,
    },
    quality: values['skip-quality'] ? null : config.quality,
    detectorModel: values['detector-model']
      ? named(values['detector-model'], 'detector')
      : detector === config.detector.name
        ? config.detector.model
        : detector === 'yunet'
          ? named('yunet-s', 'detector')
          : null,
    providers: (values.providers as string).split(',').filter(Boolean),
    intraOpThreads: threads,
    images: positionals,
    applyExif: values.exif === true,
    log,
    onResult: (r) => {
      if (values.json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else if ('error' in r) process.stdout.write(`${r.file}: error ${r.error.code}: ${r.error.message}\n`);
      else if (!r.faces.length) process.stdout.write(`${r.file}: no face\n`);
      else
        for (const f of r.faces) {
          const scores = Object.entries(f.scores)
            .filter(([, v]) => v !== null)
            .map(([k, v]) => `${k}=${(v as number).toFixed(4)}`)
            .join(' ');
          const verdict = f.verdict ?? `retry/${f.quality_gate}`;
          process.stdout.write(
            `${r.file}: ${verdict} box=[${f.box.map((v) => Math.round(v)).join(',')}] face_px=${Math.round(f.quality.face_px)} ${scores}\n`,
          );
        }
    },
  });
  return results.some((r) => 'error' in r) ? 1 : 0;
}

async function cmdDoctor(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, json: { type: 'boolean' } } });
  const { config, file } = loadConfig(values.config ?? process.env.FGHV_CONFIG ?? null);
  const { runDoctor, formatReport } = await import('./doctor.js');
  const report = await runDoctor(config, Date.now(), file);
  process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : formatReport(report));
  return report.ok ? 0 : 1;
}

async function cmdModel(args: string[]): Promise<number> {
  if (args[0] === 'fetch' || args[0] === 'list') {
    const { runModelFetchCli } = await import('./model.js');
    return runModelFetchCli(args[0], args.slice(1), (l) => process.stdout.write(`${l}\n`));
  }
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string' }, signature: { type: 'string' } },
  });
  const [sub, file, manifest, ...rest] = positionals;
  if (sub !== 'install' || !file || !manifest || rest.length)
    usage('model: expected `model install FILE MANIFEST`, `model fetch [NAME...]` or `model list`');
  const { config } = loadConfig(values.config ?? process.env.FGHV_CONFIG ?? null);
  const { installModelOffline } = await import('./model.js');
  const installed = await installModelOffline(
    config,
    path.resolve(file),
    path.resolve(manifest),
    values.signature,
  );
  process.stdout.write(`${JSON.stringify(installed)}\n`);
  return 0;
}

async function cmdRun(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' } } });
  const file = values.config ?? process.env.FGHV_CONFIG ?? null;
  const { config, file: used, envKeys } = loadConfig(file);
  const uninstalled = (await import('./config-files.js')).uninstalledModels(config, used);
  if (uninstalled) throw uninstalled;
  const log = createLogger(config.log);
  const { runDaemon } = await import('../run.js');
  return runDaemon({ config, configFile: used, envKeys, log, version: VERSION });
}

async function cmdFleet(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      broker: { type: 'string' },
      port: { type: 'string', default: '8090' },
      host: { type: 'string', default: '127.0.0.1' },
      prefix: { type: 'string', default: 'fghv' },
      keys: { type: 'string' },
      'token-file': { type: 'string' },
      connections: { type: 'string', default: '2' },
      username: { type: 'string' },
      ca: { type: 'string' },
    },
  });
  if (!values.broker) usage('fleet: --broker URL is required');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) usage('fleet: --port takes 0..65535');
  const connections = Number(values.connections);
  if (!Number.isInteger(connections) || connections < 1 || connections > 64)
    usage('fleet: --connections takes 1..64');
  let ca: Buffer | undefined;
  try {
    if (values.ca) ca = readFileSync(values.ca);
  } catch (cause) {
    throw new KioskError(ErrorCodes.MQTT_CONNECT, `fleet: cannot read --ca ${values.ca}`, { cause });
  }
  const { FleetConsole } = await import('./fleet.js');
  const fleet = await FleetConsole.start({
    brokerUrl: values.broker,
    prefix: values.prefix,
    host: values.host,
    port,
    tokenFile: values['token-file'] ?? null,
    pinnedKeysFile: values.keys ?? null,
    connections,
    username: values.username ?? null,
    password: process.env.FGHV_MQTT_PASSWORD ?? null,
    ...(ca ? { ca } : {}),
    log: (l) => process.stderr.write(`${l}\n`),
  });
  process.stdout.write(`fleet console on ${fleet.url} (broker ${redactSecrets(values.broker)})\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await fleet.close();
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    // `<command> --help` anywhere after a known command: that command's usage, nothing run.
    if (cmd && COMMANDS.includes(cmd) && (rest.includes('--help') || rest.includes('-h'))) {
      const sub = rest[0] && SUBCOMMANDS[cmd]?.includes(rest[0]) ? ` ${rest[0]}` : '';
      process.stdout.write(`${commandHelp(`${cmd}${sub}`)}\n`);
      return 0;
    }
    switch (cmd) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${HELP}\n`);
        return cmd === undefined ? 2 : 0;
      case 'version':
      case '--version':
        process.stdout.write(`${VERSION}\n`);
        return 0;
      case 'config':
        return await cmdConfig(rest);
      case 'classify':
        return await cmdClassify(rest);
      case 'run':
        return await cmdRun(rest);
      case 'cameras':
        process.stdout.write((await import('./cameras.js')).listCameras());
        return 0;
      case 'verify': {
        const { runVerify } = await import('./verify.js');
        return runVerify(
          rest,
          () => readFileSync(0, 'utf8'),
          (l) => process.stdout.write(`${l}\n`),
        );
      }
      case 'doctor':
        return await cmdDoctor(rest);
      case 'model':
        return await cmdModel(rest);
      case 'fleet':
        return await cmdFleet(rest);
      case 'drill': {
        const { runDrillCli } = await import('./drill.js');
        return await runDrillCli(rest, `fghv-kiosk ${VERSION}`, (l) => process.stdout.write(`${l}\n`));
      }
      default:
        usage(`unknown command "${cmd}"`);
    }
  } catch (e) {
    if (e instanceof KioskError) {
      process.stderr.write(`fghv-kiosk: ${e.code}: ${e.message}\n`);
      return e.code === ErrorCodes.USAGE ? 2 : 1;
    }
    const err = asError(e);
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`fghv-kiosk: ${ErrorCodes.USAGE}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`fghv-kiosk: ${ErrorCodes.INTERNAL}: ${err.stack ?? err.message}\n`);
    return 1;
  }
}
