import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { isKioskError } from '../../core/errors.js';
import { SeqCounter } from '../../daemon/contract/seq-counter.js';
import { deviceIdFromMachineId, resolveDeviceId } from '../../daemon/mqtt/device-id.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'fghv-mqtt-state-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('SeqCounter starts at 1 and continues after a restart', () => {
  const dir = path.join(tmp, 'seq1');
  const a = new SeqCounter(dir);
  assert.equal(a.current, 0);
  assert.deepEqual([a.next(), a.next(), a.next()], [1, 2, 3]);
  assert.equal(readFileSync(path.join(dir, 'seq'), 'utf8'), '3\n');
  const b = new SeqCounter(dir);
  assert.equal(b.current, 3);
  assert.equal(b.next(), 4);
});

test('SeqCounter refuses a corrupt file instead of restarting from 0', () => {
  const dir = path.join(tmp, 'seq2');
  writeFileAtomic(path.join(dir, 'seq'), 'garbage');
  assert.throws(
    () => new SeqCounter(dir),
    (e) => isKioskError(e, 'KIOSK_E_STATE_CORRUPT'),
  );
  writeFileSync(path.join(dir, 'seq'), '');
  assert.throws(
    () => new SeqCounter(dir),
    (e) => isKioskError(e, 'KIOSK_E_STATE_CORRUPT'),
  );
});

test('device id: config wins, then a hash of the machine id, then a persisted random id', () => {
  const machineId = path.join(tmp, 'machine-id');
  writeFileSync(machineId, '3d1219c7c4c5404aaa1f6d2a48adfda4\n');
  const stateDir = path.join(tmp, 'state-dev');
  assert.deepEqual(resolveDeviceId({ configured: 'kiosk-lobby-2', stateDir, machineIdPath: machineId }), {
    id: 'kiosk-lobby-2',
    source: 'config',
  });
  const fromMachine = resolveDeviceId({ configured: null, stateDir, machineIdPath: machineId });
  assert.equal(fromMachine.source, 'machine-id');
  assert.match(fromMachine.id, /^fghv-[0-9a-f]{12}$/);
  assert.ok(!fromMachine.id.includes('3d1219c7c4c5'), 'the raw machine id is not published');
  assert.equal(deviceIdFromMachineId('3D1219C7C4C5404AAA1F6D2A48ADFDA4'), fromMachine.id);
  assert.equal(deviceIdFromMachineId('not-a-machine-id'), null);
  assert.equal(deviceIdFromMachineId('0'.repeat(32)), null);

  const missing = path.join(tmp, 'no-machine-id');
  const first = resolveDeviceId({ configured: null, stateDir, machineIdPath: missing });
  assert.equal(first.source, 'state');
  assert.match(first.id, /^fghv-[0-9a-f]{12}$/);
  assert.deepEqual(resolveDeviceId({ configured: null, stateDir, machineIdPath: missing }), first);
  assert.notEqual(
    resolveDeviceId({ configured: null, stateDir: path.join(tmp, 'other'), machineIdPath: missing }).id,
    first.id,
  );
});
