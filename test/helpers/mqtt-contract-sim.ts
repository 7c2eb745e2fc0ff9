/**
 * A simulated kiosk for the contract tests: the daemon's real MQTT side (ContractLink,
 * ContractServices: signing, audit store and outbox, commands; HealthReporter) wired as the
 * daemon's start steps (daemon/start-steps.ts) wire it, with a timer instead of cameras and
 * models, so broker restarts, `kill -9` and fuzzing take seconds. Usage: node mqtt-contract-sim.js CONFIG.yaml
 * Env: SIM_DECISION_MS (default 50). Prints one JSON line per decision, after it is durable.
 */
import { loadConfig } from '../../config/load.js';
import type { CommandTarget } from '../../daemon/contract/commands/command-server.js';
import { RESTART_EXIT_CODE } from '../../daemon/contract/commands/daemon-target.js';
import { ContractLink, linkOptionsFromConfig } from '../../daemon/contract/contract-link.js';
import { ContractServices, contractCapabilities } from '../../daemon/contract/contract-services.js';
import type { InfoPayload } from '../../daemon/contract/payloads.js';
import { SeqCounter } from '../../daemon/contract/seq-counter.js';
import type { SessionDecision } from '../../daemon/decision/types.js';
import { mergeThresholdUpdate, writeThresholds } from '../../daemon/liveness/thresholds-store.js';
import { HealthReporter } from '../../daemon/telemetry/health.js';
import { DECIDED_BY, sessionDecision, spoofReject } from './decision-input.js';

const file = process.argv[2] ?? null;
const { config } = loadConfig(file);
const deviceId = config.device.id ?? 'sim';
const log = { warn: (obj: object, msg: string) => process.stderr.write(`${msg} ${JSON.stringify(obj)}\n`) };
const seq = new SeqCounter(config.device.state_dir);
const contract = new ContractServices(config, deviceId, log);
const link = new ContractLink(
  linkOptionsFromConfig(config.mqtt, deviceId, config.mqtt.url ?? 'mqtt://127.0.0.1:1883'),
);
let thresholds: Record<string, number> = { p_real_min: 0.5, var_max: 0.01, delta_kl_max: 0 };
const floor = { ...thresholds };
const info = (): InfoPayload => ({
  v: 1,
  device_id: deviceId,
  software: { name: 'fghv-kiosk', version: '0.1.0' },
  model: { name: 'sim', version: '1', sha256: 'a'.repeat(64), family: 'fghv', purpose: 'untrained' },
  detector: { name: 'blazeface', model: null },
  execution_provider: 'cpu',
  cameras: [{ id: 'front', kind: 'fake', source: 'timer' }],
  decision_public_key: contract.signer.publicKey,
  capabilities: contractCapabilities(config.commands),
  config_hash: 'sim',
});
const health = new HealthReporter({
  deviceId,
  intervalS: config.mqtt.health_interval_s,
  sink: link,
  outbox: () => contract.outboxFigures(),
  system: async () => ({
    cpu_load_pct: null,
    mem_used_pct: null,
    process_rss_mb: null,
    cpu_temp_c: null,
    gpu: null,
  }),
  pipeline: () => ({
    fps: { capture: 0, processed: 0, dropped: 0 },
    latency_ms: { publish: { p50: 1, p95: 2, n: 3 } },
    cameras: [{ id: 'front', state: 'running', capture_fps: null }],
    model: { name: 'sim', version: '1', sha256: 'a'.repeat(64) },
    execution_provider: 'cpu',
  }),
});

let timer: NodeJS.Timeout | null = null;
async function stop(code: number): Promise<never> {
  if (timer) clearInterval(timer);
  await health.stop();
  await link.close();
  await contract.close();
  process.exit(code);
}

const target: CommandTarget = {
  healthCheck: () => health.snapshot(),
  getConfig: () => ({ config, thresholds }),
  async setThresholds(update) {
    const merged = mergeThresholdUpdate(thresholds, update, {
      floor,
      allowLooser: config.liveness.allow_looser_thresholds,
    });
    writeThresholds(config.device.state_dir, { model_sha256: 'a'.repeat(64), thresholds: merged });
    thresholds = merged;
    contract.event('config_changed', { what: 'thresholds', after: merged });
    return { thresholds: merged };
  },
  reloadConfig: async () => ({ changed: false }),
  restart: () => void stop(RESTART_EXIT_CODE),
};

contract.attach(link, seq, target, info);
link.setInfo(info());
link.start();
await health.start();

let track = 0;
/** Every third decision a reject. */
const input = (): SessionDecision => {
  track++;
  return track % 3 === 0 ? spoofReject({ trackId: track }) : sessionDecision({ trackId: track });
};
const by = { ...DECIDED_BY, model: { name: 'sim', version: '1', sha256: 'a'.repeat(64) } };
timer = setInterval(
  () => {
    const p = contract.decide(input(), by);
    process.stdout.write(`${JSON.stringify({ seq: p.seq, id: p.id, connected: link.isConnected })}\n`);
  },
  Number(process.env.SIM_DECISION_MS ?? 50),
);
process.on('SIGTERM', () => void stop(0));
