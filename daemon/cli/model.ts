/**
 * `fghv-kiosk model fetch [NAME...] [--mirror DIR|URL] [--config FILE]`, `model list` and
 * `model install FILE MANIFEST`.
 * With no NAME, fetch installs the catalogue models the config names (liveness.manifest,
 * detector.model, or yunet-s for `detector.name: yunet`). A set-up step: the daemon itself
 * never downloads.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../../config/load.js';
import { modelNameOf, modelsDirOf } from '../../config/models.js';
import type { Config } from '../../config/schema.js';
import { ErrorCodes, KioskError } from '../../core/errors.js';
import { openInferenceStack } from '../models/inference-stack.js';
import { type FetchProgress, fetchModels, listModels } from '../models/model-fetch.js';
import { activeManifest, commitInstalled, type InstalledModels } from '../models/model-install.js';
import { prepareModel } from '../models/model-update.js';

/** The catalogue models a config uses (names resolved to paths by config/load.ts, mapped back). */
export function neededModels(config: Config): string[] {
  const dir = modelsDirOf(config);
  const manifest = activeManifest(config.device.state_dir, config.liveness.manifest);
  return [manifest, config.liveness.manifest, config.detector.model]
    .filter((p): p is string => p !== null)
    .map((p) => modelNameOf(p, dir))
    .filter((n, i, all): n is string => n !== null && all.indexOf(n) === i);
}

/** A one-line bar on a terminal (stderr); nothing otherwise (the result lines say enough). */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): FetchProgress | null {
  if (!stream.isTTY) return null;
  let name = '';
  let total: number | null = null;
  let last = 0;
  const draw = (bytes: number) => {
    const kib = (n: number) => `${Math.round(n / 1024)} KiB`;
    if (total) {
      const f = Math.min(1, bytes / total);
      const bar = '#'.repeat(Math.round(f * 30)).padEnd(30, '.');
      stream.write(`\r${name} [${bar}] ${Math.floor(f * 100)}% ${kib(bytes)} of ${kib(total)}`);
    } else stream.write(`\r${name} ${kib(bytes)}`);
  };
  return {
    start(n, t, from) {
      name = n;
      total = t;
      draw(from);
    },
    update(bytes) {
      const now = Date.now();
      if (now - last < 100 && bytes !== total) return;
      last = now;
      draw(bytes);
    },
    end() {
      stream.write('\n');
    },
  };
}

export async function runModelFetchCli(
  sub: 'fetch' | 'list',
  args: string[],
  print: (line: string) => void,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string' }, mirror: { type: 'string' }, json: { type: 'boolean' } },
  });
  const { config, file } = loadConfig(values.config ?? process.env.FGHV_CONFIG ?? null);
  const modelsDir = modelsDirOf(config);
  if (sub === 'list') {
    if (positionals.length) throw new KioskError(ErrorCodes.USAGE, 'model list takes no names');
    for (const m of listModels(modelsDir)) {
      if (values.json) print(JSON.stringify(m));
      else
        print(
          `${m.name.padEnd(20)} ${m.kind.padEnd(20)} ${m.installed ? 'installed' : 'not installed'}  ${m.license}\n    ${m.description}${m.installed ? `\n    ${m.path}` : ''}`,
        );
    }
    return 0;
  }
  const names = positionals.length ? positionals : neededModels(config);
  if (!names.length) {
    print(
      `${file ?? 'the default configuration'} uses no catalogue model (see \`fghv-kiosk model list\`); nothing to fetch`,
    );
    return 0;
  }
  const fetched = await fetchModels({
    names,
    modelsDir,
    mirror: values.mirror ?? config.models.mirror,
    say: print,
    progress: terminalProgress(),
  });
  if (values.json) for (const f of fetched) print(JSON.stringify(f));
  return 0;
}

/**
 * `model install FILE MANIFEST` with the daemon not running (or before a restart):
 * the same verification, warm-up and self-test as a live update, in a worker of its own; on
 * success the model becomes `current` in the state directory and the daemon starts with it.
 */
export async function installModelOffline(
  config: Config,
  modelFile: string,
  manifestFile: string,
  signature?: string,
): Promise<InstalledModels> {
  const { worker, close } = await openInferenceStack({});
  try {
    const { model, staged } = await prepareModel(worker, config, {
      modelFile,
      manifestFile,
      signature: signature ?? null,
    });
    await model.close();
    return commitInstalled(config.device.state_dir, staged);
  } finally {
    await close();
  }
}
