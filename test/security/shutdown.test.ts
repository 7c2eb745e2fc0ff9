/**
 * Finding 5 of issue 12, the second half: a stop that fails part-way must not leave the rest
 * of the daemon running (in the attack, a failed step kept the broker and the worker open and
 * the process alive, offline, for minutes). The parse limit that refuses the request itself is
 * tested against the real daemon in commands.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { configSchema } from '../../config/schema.js';
import { silentLogger } from '../../core/log.js';
import { Daemon } from '../../daemon/daemon.js';

describe('security: shutdown always finishes (finding 5)', () => {
  test('every component is closed even when an earlier one fails, and the failure is reported', async () => {
    const daemon = new Daemon({ config: configSchema.parse({}), log: silentLogger(), version: 't' });
    const closed: string[] = [];
    const part = (name: string, fail = false) => ({
      close: async () => {
        closed.push(name);
        if (fail) throw new Error(`${name} failed to close`);
      },
      stop: async () => {
        closed.push(name);
        if (fail) throw new Error(`${name} failed to stop`);
      },
    });
    // The components a started daemon holds (its start steps' parts), the link and the contract sink failing.
    Object.assign((daemon as unknown as { parts: Record<string, unknown> }).parts, {
      status: part('status'),
      health: part('health'),
      link: part('link', true),
      sink: part('contract', true),
      broker: part('broker'),
      detector: part('detector'),
      liveness: part('liveness'),
      worker: part('worker'),
    });
    await assert.rejects(daemon.stop(), /link failed to close/);
    assert.deepEqual(closed, [
      'status',
      'health',
      'link',
      'contract',
      'broker',
      'detector',
      'liveness',
      'worker',
    ]);
  });
});
