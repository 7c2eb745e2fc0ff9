/**
 * Issue 24, findings 7 and 9: the gate example in docs/gate-integration.md imported a path
 * that does not exist, and a decision with a UTF-8 byte order mark passed `verifyDecision`
 * but made the example's own JSON.parse throw in its message handler; a signed decision with
 * `seq` 1e300 or an expiry in 2099 passed too. Here the example is taken from the doc as
 * written, run with node against mosquitto (the package and mqtt beside it, as a site
 * installs them), and fed signed decisions: valid ones act, each attack is ignored with its
 * reason, and the gate keeps running.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connectAsync } from 'mqtt';
import { buildDecisionPayload } from '../../daemon/contract/payloads.js';
import { DecisionSigner } from '../../daemon/contract/signing/keys.js';
import { verifyDecision } from '../../daemon/contract/signing/verify.js';
import { DECIDED_BY, sessionDecision } from '../helpers/decision-input.js';
import { type Mosquitto, needsMosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { repoRoot } from '../helpers/paths.js';
import { sleep } from '../helpers/wait.js';

/** The code block under "## Example gate subscriber" in the doc, exactly as written. */
function gateExampleFromDoc(): string {
  const doc = readFileSync(path.join(repoRoot, 'docs/gate-integration.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Example gate subscriber'));
  const m = /```js\n([\s\S]*?)```/.exec(section);
  assert.ok(m?.[1], 'no js block under "## Example gate subscriber"');
  return m[1];
}

const DEVICE = 'gate-dev';

describe('finding 7: the gate example runs as written and refuses a BOM', {
  skip: needsMosquitto(),
  timeout: 120_000,
}, () => {
  let broker: Mosquitto;
  let gate: ChildProcess | null = null;
  let out = '';
  const dir = mkdtempSync(path.join(tmpdir(), 'fghv-gate-'));
  const { privateKey } = generateKeyPairSync('ed25519');
  const signer = DecisionSigner.fromKey(privateKey);

  before(async () => {
    broker = await startMosquitto();
    // A site's install: the package and mqtt in node_modules beside gate.mjs.
    mkdirSync(path.join(dir, 'node_modules'));
    symlinkSync(repoRoot, path.join(dir, 'node_modules/fghv-kiosk'));
    symlinkSync(path.join(repoRoot, 'node_modules/mqtt'), path.join(dir, 'node_modules/mqtt'));
    writeFileSync(path.join(dir, 'gate.mjs'), gateExampleFromDoc());
    writeFileSync(path.join(dir, `${DEVICE}.pub`), `${signer.publicKey}\n`);
  });
  after(async () => {
    gate?.kill('SIGKILL');
    await broker?.stop();
  });

  const waitOut = (re: RegExp, ms = 10_000) =>
    new Promise<void>((resolve, reject) => {
      const t0 = Date.now();
      const poll = () => {
        if (re.test(out)) return resolve();
        if (Date.now() - t0 > ms) return reject(new Error(`no ${re} in the gate's output:\n${out}`));
        setTimeout(poll, 50);
      };
      poll();
    });

  test('valid decisions act; BOM, replay, another camera, seq 1e300 and a 2099 expiry are ignored; the gate stays up', async () => {
    gate = spawn(process.execPath, ['gate.mjs'], {
      cwd: dir,
      env: {
        ...process.env,
        GATE_BROKER: broker.url,
        GATE_DEVICE: DEVICE,
        GATE_CAMERA: 'front',
        GATE_ETC: dir,
        GATE_SEQ_FILE: path.join(dir, 'last-seq'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    gate.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    gate.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitOut(/gate: ready/);
    const pub = await connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    const topic = `fghv/${DEVICE}/front/decision`;
    const decision = (seq: number, over: Parameters<typeof sessionDecision>[0] = {}, expiryS = 10) =>
      signer.sign(
        buildDecisionPayload(sessionDecision(over), DECIDED_BY, {
          deviceId: DEVICE,
          seq: { next: () => seq },
          expiryS,
        }),
      );
    const send = (bytes: string | Buffer) => pub.publishAsync(topic, bytes, { qos: 1 });
    const gateLines = () => out.split('\n').filter((l) => l.startsWith('gate: '));
    let seen = 1; // "gate: ready"
    const next = async (re: RegExp) => {
      const t0 = Date.now();
      while (gateLines().length <= seen) {
        if (Date.now() - t0 > 10_000) throw new Error(`the gate said nothing more:\n${out}`);
        await sleep(50);
      }
      assert.match(gateLines()[seen] ?? '', re, out);
      seen++;
    };

    await send(JSON.stringify(decision(1)));
    await next(/^gate: open$/);
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(decision(2)))]);
    assert.deepEqual(
      verifyDecision(bom, signer.publicKey, { deviceId: DEVICE, cameraId: 'front', now: Date.now() }),
      { ok: false, reason: 'not_json' },
    );
    await send(bom);
    await next(/ignored decision: not_json/);
    await send(JSON.stringify(decision(1)));
    await next(/ignored decision: replayed_seq/);
    await send(JSON.stringify(decision(3, { cameraId: 'back' })));
    await next(/ignored decision: wrong_camera/);
    await send(JSON.stringify(decision(1e300)));
    await next(/ignored decision: bad_seq/);
    await send(JSON.stringify(decision(4, {}, 2_300_000_000)));
    await next(/ignored decision: bad_expiry/);
    const { seq: _s, ...noSeq } = decision(5);
    await send(JSON.stringify(signer.sign(noSeq as never)));
    await next(/ignored decision: bad_seq/);
    await send(JSON.stringify(decision(6, { decision: 'retry', reason: 'low_quality' })));
    await next(/^gate: try again \(low_quality\)$/);
    assert.equal(gate.exitCode, null, `the gate exited:\n${out}`);
    assert.equal(readFileSync(path.join(dir, 'last-seq'), 'utf8'), '6');
    await pub.endAsync(true);
  });
});
