/**
 * The terminal drill as an installer runs it: prompts on stdout, answers on stdin, the configured
 * camera in real time (a looping video of the shared T1 photo, pixels as stored; MiniFASNetV2
 * accepts it, see drill.test.ts). Each answer is sent only after its prompt is seen, and the
 * presentation is ended only once a decision was shown: no timing assumptions.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { drillsDir, readDrill } from '../../daemon/drill/record.js';
import { MINIFASNET_MANIFEST } from '../helpers/kiosk-child.js';
import { needsSharedData, repoRoot } from '../helpers/paths.js';
import { photoVideo } from '../helpers/photo-video.js';

const skip = needsSharedData('images/T1.jpg', 'models/MiniFASNetV2.onnx');

describe('drill at the terminal', { skip }, () => {
  it('prompts, records a labelled presentation, summarises it and reports', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fghv-drill-tty-'));
    try {
      const file = path.join(dir, 't1.mp4');
      photoVideo('T1.jpg', file, { seconds: 2 });
      const stateDir = path.join(dir, 'state');
      const config = path.join(dir, 'config.json');
      writeFileSync(
        config,
        JSON.stringify({
          device: { state_dir: stateDir, id: 'tty' },
          cameras: [{ id: 'door', source: file, loop: true, realtime: true }],
          liveness: {
            manifest: MINIFASNET_MANIFEST,
            providers: ['cpu'],
          },
        }),
      );
      const child = spawn(
        process.execPath,
        [path.join(repoRoot, 'bin/fghv-kiosk.js'), 'drill', '--config', config],
        {
          cwd: repoRoot,
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      child.stderr.on('data', (d) => {
        err += d;
      });
      const waiters: { re: RegExp; from: number; resolve: () => void }[] = [];
      child.stdout.on('data', (d) => {
        out += d;
        for (const w of [...waiters])
          if (w.re.test(out.slice(w.from))) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve();
          }
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      const waitFor = (re: RegExp) =>
        new Promise<void>((resolve, reject) => {
          const from = out.length;
          const t = setTimeout(
            () => reject(new Error(`timed out waiting for ${re}; stdout: ${out}; stderr: ${err}`)),
            120_000,
          );
          waiters.push({
            re,
            from,
            resolve: () => {
              clearTimeout(t);
              resolve();
            },
          });
        });
      const send = (line: string) => child.stdin.write(`${line}\n`);

      await waitFor(/Next: .*> $/);
      send('a'); // an attack without its type is refused, and asked again
      await waitFor(/an attack needs its type[\s\S]*Next: .*> $/);
      send('b alice');
      await waitFor(/recording: .* [1-9]\d* decisions/);
      send('');
      await waitFor(/#1 bona fide \(alice\): .*-> accepted: correct[\s\S]*Next: .*> $/);
      send('q');
      assert.equal(await exited, 0, err);
      assert.match(out, /drill .*: model minifasnet-v2 sha256 4eed38f0bde33c9b/);
      assert.match(out, /per presence: BPCER 0\/1 = 0\.00 % \[95 % 0\.00 % - 100\.00 %\]/);
      const ids = readdirSync(drillsDir(stateDir));
      assert.equal(ids.length, 1);
      const rec = readDrill(path.join(drillsDir(stateDir), ids[0] as string));
      assert.deepEqual(
        rec.presentations.map((p) => [p.label, p.subject, p.cameraId, p.status]),
        [['bona_fide', 'alice', 'door', 'complete']],
      );
      assert.ok(rec.presentations[0]?.decisions.some((d) => d.decision === 'accept'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
