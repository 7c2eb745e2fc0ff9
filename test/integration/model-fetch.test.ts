/**
 * `fghv-kiosk model fetch` without the internet: a loopback HTTP server plays the publisher
 * and a site's mirror (redirects, byte ranges, a wrong file, a short body, a dropped connection,
 * 404, a proxy), and a folder with the files under other names plays an offline bundle. Nothing
 * may be installed unless it verifies. The download mechanics run on a synthetic catalogue entry
 * (`test-blob`), so they run on a clone too; the real models (served from
 * ../shared/data/models), HTTPS through a proxy and the path to a verdict need the shared data.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../config/load.js';
import { type Catalogue, installedModelPath, loadCatalogue, parseCatalogue } from '../../config/models.js';
import { isKioskError } from '../../core/errors.js';
import { loadManifest } from '../../daemon/liveness/manifest.js';
import { proxyFor } from '../../daemon/models/http-get.js';
import { fetchModels } from '../../daemon/models/model-fetch.js';
import { needsSharedData, repoRoot, shared } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp.js';

const skip = needsSharedData(
  'models/MiniFASNetV2.onnx',
  'models/MiniFASNetV1SE.onnx',
  'models/yunet_s_640_640.onnx',
  'images/T1.jpg',
);
const bin = path.join(repoRoot, 'bin/fghv-kiosk.js');

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A synthetic model file for the mechanics tests (deterministic bytes, no meaning). */
const BLOB = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
const BLOB_SHA = createHash('sha256').update(BLOB).digest('hex');
const BLOB_INSTALLED = (dir: string) => path.join(dir, 'test-blob', 'blob.onnx');

/** The CLI without blocking this process (whose servers it talks to). */
function cliAsync(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: repoRoot, env });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** The loopback publisher: routes by the first path segment; records the Range headers it saw. */
function startPublisher() {
  const ranges: string[] = [];
  const proxied: string[] = [];
  const server = http.createServer((req, res) => {
    const raw = req.url ?? '/';
    // A proxy gets the absolute URL: serve it as if we were that host.
    const url = raw.startsWith('http://') ? new URL(raw) : new URL(raw, 'http://local');
    if (raw.startsWith('http://')) proxied.push(raw);
    const [, mode, file] = url.pathname.split('/');
    if (req.headers.range) ranges.push(`${mode}:${req.headers.range}`);
    const src = file === 'blob.onnx' ? 'blob' : file ? shared(`models/${file}`) : '';
    if (mode === 'redirect') {
      res.writeHead(302, { location: `/pub/${file}` }).end();
      return;
    }
    if (mode === '404' || !file || (src !== 'blob' && !existsSync(src))) {
      res.writeHead(404).end('not found');
      return;
    }
    let body = src === 'blob' ? BLOB : readFileSync(src);
    if (mode === 'wrong') {
      body = Buffer.from(body);
      body[body.length >> 1] = (body[body.length >> 1] as number) ^ 0xff;
    }
    if (mode === 'truncated') {
      // A complete-looking response (chunked, ended properly) that carries half the file.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(body.subarray(0, body.length >> 1));
      return;
    }
    if (mode === 'drop') {
      // The connection dies half-way through a response that announced the whole file.
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && mode === 'pub') {
      const start = Number(m[1]);
      res.writeHead(206, {
        'content-length': body.length - start,
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
      });
      res.end(body.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  });
  return { server, ranges, proxied };
}

describe('model fetch', () => {
  const pub = startPublisher();
  let base = '';
  before(async () => {
    await new Promise<void>((r) => pub.server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(pub.server.address() as AddressInfo).port}`;
  });
  after(() => {
    pub.server.closeAllConnections();
    pub.server.close();
  });

  /** The real catalogue with the publishers' URLs pointing at the loopback server (`mode`). */
  const catalogue = (mode: string): Catalogue => {
    const real = loadCatalogue();
    const models = structuredClone(real.models);
    const files: Record<string, string> = {
      'minifasnet-v2': 'MiniFASNetV2.onnx',
      'minifasnet-v1se': 'MiniFASNetV1SE.onnx',
      'yunet-s': 'yunet_s_640_640.onnx',
      'yunet-n': 'yunet_n_320_320.onnx',
    };
    for (const [name, file] of Object.entries(files))
      (models[name] as { url?: string }).url = `${base}/${mode}/${file}`;
    const blob = {
      kind: 'detector',
      detector: 'yunet',
      description: 'synthetic test file',
      license: 'none',
      file: 'blob.onnx',
      url: `${base}/${mode}/blob.onnx`,
      sha256: BLOB_SHA,
      size: BLOB.length,
    };
    return parseCatalogue({ schema: 1, models: { ...models, 'test-blob': blob } }, real.file);
  };
  const nothingInstalled = (dir: string, name: string) => {
    assert.equal(existsSync(path.join(dir, name)), false, `${name} must not be installed`);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith('.staging') || f.includes('.old-')),
      [],
      'no staging left',
    );
  };

  it('installs the real models from the publisher, verified, with a manifest that loads', {
    skip,
  }, async () => {
    const dir = tempDir('fetch');
    const lines: string[] = [];
    const r = await fetchModels({
      names: ['minifasnet-v2', 'yunet-s'],
      modelsDir: dir,
      mirror: null,
      catalogue: catalogue('pub'),
      say: (l) => lines.push(l),
    });
    assert.deepEqual(
      r.map((m) => [m.name, m.source]),
      [
        ['minifasnet-v2', 'publisher'],
        ['yunet-s', 'publisher'],
      ],
    );
    assert.match(lines.join('\n'), /licence: Apache-2\.0/);
    assert.match(lines.join('\n'), /licence: MIT/);
    const loaded = await loadManifest(installedModelPath('minifasnet-v2', dir));
    assert.equal('modelPath' in loaded && readFileSync(loaded.modelPath).length, 1743561);
    assert.deepEqual(
      readFileSync(installedModelPath('yunet-s', dir)),
      readFileSync(shared('models/yunet_s_640_640.onnx')),
    );
    const again = await fetchModels({
      names: ['minifasnet-v2'],
      modelsDir: dir,
      mirror: null,
      catalogue: catalogue('404'),
    });
    assert.equal(again[0]?.source, 'installed');
    // An installed manifest that differs from the shipped one (an older release, an edit) is
    // brought back to the shipped one by the next fetch, still naming the installed file's sha256.
    const manifestFile = installedModelPath('minifasnet-v2', dir);
    const installed = JSON.parse(readFileSync(manifestFile, 'utf8'));
    writeFileSync(
      manifestFile,
      JSON.stringify({ ...installed, thresholds: { live_min: 0.01, spoof_max: 0.01 } }),
    );
    await fetchModels({
      names: ['minifasnet-v2'],
      modelsDir: dir,
      mirror: null,
      catalogue: catalogue('404'),
    });
    const shipped = JSON.parse(
      readFileSync(path.join(repoRoot, 'models/minifasnet/MiniFASNetV2.manifest.json'), 'utf8'),
    );
    assert.deepEqual(JSON.parse(readFileSync(manifestFile, 'utf8')), {
      ...shipped,
      sha256: installed.sha256,
    });
  });

  it('follows a redirect', async () => {
    const dir = tempDir('fetch');
    const r = await fetchModels({
      names: ['test-blob'],
      modelsDir: dir,
      mirror: null,
      catalogue: catalogue('redirect'),
    });
    assert.equal(r[0]?.source, 'publisher');
    assert.ok(existsSync(BLOB_INSTALLED(dir)));
  });

  it('refuses a file with a wrong checksum: nothing installed, the download deleted', async () => {
    const dir = tempDir('fetch');
    await assert.rejects(
      fetchModels({ names: ['test-blob'], modelsDir: dir, mirror: null, catalogue: catalogue('wrong') }),
      (e) => isKioskError(e, 'KIOSK_E_MODEL_SHA_MISMATCH'),
    );
    nothingInstalled(dir, 'test-blob');
    assert.deepEqual(readdirSync(path.join(dir, '.partial')), []);
  });

  it('refuses a truncated body and a 404: nothing installed', async () => {
    const dir = tempDir('fetch');
    await assert.rejects(
      fetchModels({
        names: ['test-blob'],
        modelsDir: dir,
        mirror: null,
        catalogue: catalogue('truncated'),
      }),
      (e) => isKioskError(e, 'KIOSK_E_MODEL_DOWNLOAD_FAILED') && /truncated/.test((e as Error).message),
    );
    nothingInstalled(dir, 'test-blob');
    await assert.rejects(
      fetchModels({ names: ['test-blob'], modelsDir: dir, mirror: null, catalogue: catalogue('404') }),
      (e) => isKioskError(e, 'KIOSK_E_MODEL_DOWNLOAD_FAILED') && /HTTP 404/.test((e as Error).message),
    );
    nothingInstalled(dir, 'test-blob');
    await assert.rejects(
      fetchModels({
        names: ['test-blob'],
        modelsDir: dir,
        mirror: `${base}/404`,
        catalogue: catalogue('pub'),
      }),
      (e) => isKioskError(e, 'KIOSK_E_MODEL_NOT_IN_MIRROR'),
    );
  });

  it('a connection dropped half-way installs nothing; the next run resumes with a range request', async () => {
    const dir = tempDir('fetch');
    await assert.rejects(
      fetchModels({ names: ['test-blob'], modelsDir: dir, mirror: null, catalogue: catalogue('drop') }),
      (e) => isKioskError(e, 'KIOSK_E_MODEL_DOWNLOAD_FAILED'),
    );
    nothingInstalled(dir, 'test-blob');
    const [part] = readdirSync(path.join(dir, '.partial'));
    assert.ok(part, 'the partial download is kept for a resume');
    const kept = readFileSync(path.join(dir, '.partial', part)).length;
    assert.ok(kept > 0 && kept < BLOB.length, `kept ${kept} bytes`);
    pub.ranges.length = 0;
    await fetchModels({
      names: ['test-blob'],
      modelsDir: dir,
      mirror: null,
      catalogue: catalogue('pub'),
    });
    assert.deepEqual(pub.ranges, [`pub:bytes=${kept}-`]);
    assert.deepEqual(readFileSync(BLOB_INSTALLED(dir)), BLOB); // the resumed file
    assert.deepEqual(readdirSync(path.join(dir, '.partial')), []);
  });

  it('a server that ignores the range gets a clean restart from byte 0', async () => {
    const dir = tempDir('fetch');
    await assert.rejects(
      fetchModels({ names: ['test-blob'], modelsDir: dir, mirror: null, catalogue: catalogue('drop') }),
      (e) => isKioskError(e, 'KIOSK_E_MODEL_DOWNLOAD_FAILED'),
    );
    pub.ranges.length = 0;
    // 'full' answers 200 with the whole file to a range request.
    await fetchModels({
      names: ['test-blob'],
      modelsDir: dir,
      mirror: null,
      catalogue: catalogue('full'),
    });
    assert.equal(pub.ranges.length, 1);
    assert.match(pub.ranges[0] as string, /^full:bytes=\d+-$/);
    assert.deepEqual(readFileSync(BLOB_INSTALLED(dir)), BLOB);
  });

  it('a mirror folder with renamed files installs by sha256, the ensemble included', { skip }, async () => {
    const mirror = tempDir('mirror');
    mkdirSync(path.join(mirror, 'sub'));
    copyFileSync(shared('models/MiniFASNetV2.onnx'), path.join(mirror, 'one.bin'));
    copyFileSync(shared('models/MiniFASNetV1SE.onnx'), path.join(mirror, 'sub', 'two'));
    copyFileSync(shared('models/yunet_s_640_640.onnx'), path.join(mirror, 'detector.dat'));
    writeFileSync(path.join(mirror, 'README.txt'), 'an offline bundle');
    const dir = tempDir('fetch');
    const r = await fetchModels({ names: ['minifasnet-ensemble', 'yunet-s'], modelsDir: dir, mirror });
    assert.deepEqual(
      r.map((m) => [m.name, m.source]),
      [
        ['minifasnet-v2', 'mirror-folder'],
        ['minifasnet-v1se', 'mirror-folder'],
        ['minifasnet-ensemble', 'ensemble'],
        ['yunet-s', 'mirror-folder'],
      ],
    );
    const ens = await loadManifest(installedModelPath('minifasnet-ensemble', dir));
    assert.equal('members' in ens && ens.members.length, 2);
  });

  it('a mirror folder: a file with one changed byte refused, a missing one named, a renamed one found', async () => {
    const mirror = tempDir('mirror');
    const bytes = Buffer.from(BLOB);
    bytes[1000] = (bytes[1000] as number) ^ 1;
    writeFileSync(path.join(mirror, 'blob.onnx'), bytes);
    const dir = tempDir('fetch');
    await assert.rejects(
      fetchModels({ names: ['test-blob'], modelsDir: dir, mirror, catalogue: catalogue('pub') }),
      (e) => isKioskError(e, 'KIOSK_E_MODEL_SHA_MISMATCH') && /blob\.onnx/.test((e as Error).message),
    );
    nothingInstalled(dir, 'test-blob');
    await assert.rejects(fetchModels({ names: ['yunet-s'], modelsDir: dir, mirror }), (e) =>
      isKioskError(e, 'KIOSK_E_MODEL_NOT_IN_MIRROR'),
    );
    // The right bytes under another name, in a sub-folder, beside the bad copy: installed.
    mkdirSync(path.join(mirror, 'sub'));
    writeFileSync(path.join(mirror, 'sub', 'renamed'), BLOB);
    const r = await fetchModels({
      names: ['test-blob'],
      modelsDir: dir,
      mirror,
      catalogue: catalogue('pub'),
    });
    assert.equal(r[0]?.source, 'mirror-folder');
    assert.deepEqual(readFileSync(BLOB_INSTALLED(dir)), BLOB);
  });

  it('a site mirror URL serves the files by name; unknown names are refused with the catalogue', async () => {
    const dir = tempDir('fetch');
    const r = await fetchModels({
      names: ['test-blob'],
      modelsDir: dir,
      mirror: `${base}/pub/`,
      catalogue: catalogue('404'),
    });
    assert.equal(r[0]?.source, 'mirror-url');
    await assert.rejects(
      fetchModels({ names: ['resnet-9000'], modelsDir: dir, mirror: null }),
      (e) => isKioskError(e, 'KIOSK_E_MODEL_UNKNOWN') && /minifasnet-v2/.test((e as Error).message),
    );
  });

  it('honours HTTP_PROXY (absolute URL to the proxy) and NO_PROXY', async () => {
    const env = { HTTP_PROXY: base, NO_PROXY: 'localhost,.internal' };
    assert.equal(proxyFor(new URL('http://models.example.org/x'), env)?.href, `${base}/`);
    assert.equal(proxyFor(new URL('http://mirror.site.internal/x'), env), null);
    assert.equal(proxyFor(new URL('https://models.example.org/x'), env), null, 'HTTPS uses HTTPS_PROXY');
    assert.equal(
      proxyFor(new URL('https://a.example.org/x'), { https_proxy: 'proxy:3128' })?.host,
      'proxy:3128',
    );
    const dir = tempDir('fetch');
    pub.proxied.length = 0;
    const r = await fetchModels({
      names: ['test-blob'],
      catalogue: catalogue('404'),
      modelsDir: dir,
      mirror: 'http://mirror.example.org/pub',
      env,
    });
    assert.equal(r[0]?.source, 'mirror-url');
    assert.deepEqual(pub.proxied, ['http://mirror.example.org/pub/blob.onnx']);
  });

  it('HTTPS through a CONNECT proxy (HTTPS_PROXY), the certificate verified', {
    skip: skip || (spawnSync('openssl', ['version']).status === 0 ? false : 'needs the openssl command'),
  }, async () => {
    const tls = tempDir('tls');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost',
        '-keyout',
        path.join(tls, 'key.pem'),
        '-out',
        path.join(tls, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const site = https.createServer(
      { key: readFileSync(path.join(tls, 'key.pem')), cert: readFileSync(path.join(tls, 'cert.pem')) },
      (req, res) => {
        const file = shared(`models/${path.basename(req.url ?? '')}`);
        if (!existsSync(file)) res.writeHead(404).end();
        else res.end(readFileSync(file));
      },
    );
    const tunnels: string[] = [];
    const proxy = http.createServer((_req, res) => res.writeHead(405).end());
    proxy.on('connect', (req, client: net.Socket) => {
      tunnels.push(req.url ?? '');
      const port = Number((req.url ?? '').split(':')[1]);
      const upstream = net.connect(port, '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const sitePort = (site.address() as AddressInfo).port;
      const cfg = path.join(tempDir('site'), 'kiosk.yaml');
      writeFileSync(cfg, 'device:\n  state_dir: state\n');
      const args = [
        'model',
        'fetch',
        'yunet-s',
        '--mirror',
        `https://localhost:${sitePort}/pub`,
        '--config',
        cfg,
      ];
      const env = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        HTTPS_PROXY: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
      };
      // A certificate nobody vouches for: refused, nothing installed.
      const untrusted = await cliAsync(args, env);
      assert.equal(untrusted.code, 1, untrusted.out);
      assert.match(untrusted.out, /KIOSK_E_MODEL_DOWNLOAD_FAILED.*(self[- ]signed|certificate)/i);
      assert.equal(existsSync(path.join(path.dirname(cfg), 'state/models/fetched/yunet-s')), false);
      // Trusted (as a site's own CA would be): installed, and every byte went through the tunnel.
      const ok = await cliAsync(args, { ...env, NODE_EXTRA_CA_CERTS: path.join(tls, 'cert.pem') });
      assert.equal(ok.code, 0, ok.out);
      assert.match(ok.out, /yunet-s: installed from mirror-url/);
      assert.deepEqual(tunnels, [`localhost:${sitePort}`, `localhost:${sitePort}`]);
    } finally {
      site.closeAllConnections();
      site.close();
      proxy.closeAllConnections();
      proxy.close();
    }
  });

  it('from a folder under other names to a verdict: fetch with --config, then classify by name', {
    skip,
  }, () => {
    const mirror = tempDir('mirror');
    copyFileSync(shared('models/MiniFASNetV2.onnx'), path.join(mirror, 'liveness-model'));
    copyFileSync(shared('models/yunet_s_640_640.onnx'), path.join(mirror, 'face-detector'));
    const site = tempDir('site');
    const cfg = path.join(site, 'kiosk.yaml');
    writeFileSync(
      cfg,
      'device:\n  state_dir: state\ndetector:\n  name: yunet\nliveness:\n  manifest: minifasnet-v2\n  providers: [cpu]\n',
    );
    // Before: config check and doctor name the missing models and the command that installs them.
    const check = cli(['config', 'check', cfg]);
    assert.equal(check.code, 1);
    assert.ok(check.stderr.includes(`fghv-kiosk model fetch minifasnet-v2 --config ${cfg}`), check.stderr);
    assert.ok(check.stderr.includes(`fghv-kiosk model fetch yunet-s --config ${cfg}`), check.stderr);
    const doctor = cli(['doctor', '--config', cfg, '--json']);
    const fileChecks = JSON.parse(doctor.stdout).checks.filter((c: { name: string }) =>
      c.name.startsWith('file:'),
    );
    assert.match(JSON.stringify(fileChecks), /model fetch minifasnet-v2 --config/);
    // The daemon refuses to start and says how to install them; it never downloads.
    const run = cli(['run', '--config', cfg]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /KIOSK_E_MODEL_NOT_FOUND/);
    assert.ok(
      run.stderr.includes(`fghv-kiosk model fetch yunet-s minifasnet-v2 --config ${cfg}`),
      run.stderr,
    );
    // No name: the models the config uses.
    const fetched = cli(['model', 'fetch', '--mirror', mirror, '--config', cfg]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.match(fetched.stdout, /minifasnet-v2: installed from mirror-folder/);
    assert.match(fetched.stdout, /yunet-s: installed from mirror-folder/);
    assert.ok(existsSync(path.join(site, 'state/models/fetched/minifasnet-v2/manifest.json')));
    assert.equal(cli(['config', 'check', cfg]).code, 0);
    const list = cli(['model', 'list', '--config', cfg]);
    assert.match(list.stdout, /minifasnet-v2\s+liveness\s+installed/);
    assert.match(list.stdout, /minifasnet-v1se\s+liveness\s+not installed/);
    const r = cli([
      'classify',
      '--config',
      cfg,
      '--model',
      'minifasnet-v2',
      '--detector',
      'yunet',
      '--skip-quality',
      '--json',
      shared('images/T1.jpg'),
      shared('images/F1.jpg'),
      shared('images/F2.jpg'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const verdicts = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).faces.map((f: { verdict: string }) => f.verdict));
    assert.deepEqual(verdicts, [['live'], ['spoof'], ['spoof']]);
  });
});

describe('model catalogue', () => {
  it('every entry is valid and no shipped manifest or example config names ../shared', () => {
    const cat = loadCatalogue();
    assert.ok(Object.keys(cat.models).length >= 7);
    const shipped = [
      'models/catalogue.json',
      ...readdirSync(path.join(repoRoot, 'models/minifasnet')).map((f) => `models/minifasnet/${f}`),
      ...readdirSync(path.join(repoRoot, 'config/examples')).map((f) => `config/examples/${f}`),
    ];
    for (const f of shipped)
      assert.doesNotMatch(readFileSync(path.join(repoRoot, f), 'utf8'), /shared\/data|\.\.\/shared/, f);
  });

  it('config names resolve to the installed paths under models.dir; paths and mirror URLs stay as written', () => {
    const site = tempDir('names');
    const write = (yaml: string) => {
      const f = path.join(site, `c${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(f, yaml);
      return f;
    };
    const named = loadConfig(
      write(
        'models:\n  dir: fetched\n  mirror: https://mirror.site/models\ndetector:\n  name: yunet\n  model: yunet-n\nliveness:\n  manifest: minifasnet-ensemble\n',
      ),
      {},
    ).config;
    assert.equal(named.detector.model, path.join(site, 'fetched/yunet-n/yunet_n_320_320.onnx'));
    assert.equal(named.liveness.manifest, path.join(site, 'fetched/minifasnet-ensemble/manifest.json'));
    assert.equal(named.models.mirror, 'https://mirror.site/models');
    // yunet with no model: the installed yunet-s, under <state_dir>/models/fetched by default.
    const byDefault = loadConfig(write('device:\n  state_dir: st\ndetector:\n  name: yunet\n'), {}).config;
    assert.equal(byDefault.detector.model, path.join(site, 'st/models/fetched/yunet-s/yunet_s_640_640.onnx'));
    // A path that looks like a name is written as a path.
    const asPath = loadConfig(write('liveness:\n  manifest: ./minifasnet-v2\n'), {}).config;
    assert.equal(asPath.liveness.manifest, path.join(site, 'minifasnet-v2'));
    // A detector is no liveness model.
    assert.throws(
      () => loadConfig(write('liveness:\n  manifest: yunet-s\n'), {}),
      (e) => isKioskError(e, 'KIOSK_E_MODEL_UNKNOWN') && /not a liveness model/.test((e as Error).message),
    );
  });

  it('a catalogue with a broken entry is refused with a stable code', () => {
    assert.throws(
      () =>
        parseCatalogue(
          { schema: 1, models: { x: { kind: 'liveness', description: 'd', license: 'l' } } },
          'c',
        ),
      (e) => isKioskError(e, 'KIOSK_E_MODEL_CATALOGUE_INVALID'),
    );
    assert.throws(
      () =>
        parseCatalogue(
          {
            schema: 1,
            models: {
              e: { kind: 'liveness', description: 'd', license: 'l', manifest: 'm', members: ['x'] },
            },
          },
          'c',
        ),
      (e) => isKioskError(e, 'KIOSK_E_MODEL_CATALOGUE_INVALID') && /"x"/.test((e as Error).message),
    );
  });
});
