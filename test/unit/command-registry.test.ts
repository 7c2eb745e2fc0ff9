/**
 * The command table (daemon/contract/commands/registry.ts): a command is one entry. A fake
 * read-only command and a fake mutating one, added as entries and nothing else, are parsed,
 * refused and run by the real parser and command server (over an in-memory link).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { z } from 'zod';
import { CommandServer, type CommandServerOptions } from '../../daemon/contract/commands/command-server.js';
import {
  COMMANDS,
  type CommandTable,
  type CommandTarget,
  command,
  envelope,
} from '../../daemon/contract/commands/registry.js';
import {
  COMMAND_NAMES,
  MUTATING_COMMANDS,
  parseCommandRequest,
} from '../../daemon/contract/commands/request.js';
import { Topics } from '../../daemon/contract/topics.js';

const calls: string[] = [];
const FAKE = {
  ...COMMANDS,
  echo: command({
    schema: z.strictObject({ ...envelope, text: z.string().max(8) }),
    mutates: false,
    run: (_t, a) => ({ echoed: a.text }),
  }),
  wipe: command({
    schema: z.strictObject({ ...envelope }),
    mutates: true,
    run: () => {
      calls.push('wipe');
      return { wiped: true };
    },
  }),
} satisfies CommandTable;

/** A target whose every method fails the test: the fake commands need none of it. */
const target = new Proxy({} as CommandTarget, {
  get: (_o, key) => () => assert.fail(`target.${String(key)} called`),
});

function server(commands?: CommandTable) {
  const link = Object.assign(new EventEmitter(), {
    topics: new Topics('kiosk', 'k1'),
    published: [] as { topic: string; body: { status: string; data: unknown; error?: { code: string } } }[],
    subscribe() {},
    async publish(msg: { topic: string; payload: string }) {
      link.published.push({ topic: msg.topic, body: JSON.parse(msg.payload) });
      return { delivered: true as const };
    },
  });
  const s = new CommandServer({
    // The server uses on/off/subscribe/publish/topics only; `on` returning the emitter is enough.
    link: link as unknown as CommandServerOptions['link'],
    target,
    ...(commands ? { commands } : {}),
    deviceId: 'k1',
    policy: { maxBytes: 4096, requireSignature: false, fleetKeys: [], maxSkewS: 60 },
    audit: () => {},
  });
  s.start();
  const ask = async (name: string, body: string) => {
    const before = link.published.length;
    link.emit('message', `${link.topics.base}/request/${name}`, Buffer.from(body), {});
    for (let i = 0; i < 100 && link.published.length === before; i++)
      await new Promise((r) => setImmediate(r));
    return link.published[before];
  };
  return { s, ask };
}

test('the device table: names and the mutating set come from the entries', () => {
  assert.deepEqual(COMMAND_NAMES, Object.keys(COMMANDS));
  assert.deepEqual([...MUTATING_COMMANDS].sort(), [
    'model_update',
    'reload_config',
    'restart',
    'set_thresholds',
  ]);
});

test('a fake command added as one entry is parsed, validated and run', async () => {
  const { s, ask } = server(FAKE);
  const ok = await ask('echo', '{"transaction":7,"text":"hi"}');
  assert.equal(ok?.topic, 'kiosk/k1/response/echo');
  assert.equal(ok?.body.status, 'ok');
  assert.deepEqual(ok?.body.data, { echoed: 'hi' });
  const bad = await ask('echo', '{"text":"far too long"}');
  assert.equal(bad?.body.error?.code, 'KIOSK_E_COMMAND_INVALID');
  // A mutating entry needs a fleet signature: with no fleet key it never runs.
  const wipe = await ask('wipe', '{}');
  assert.equal(wipe?.body.error?.code, 'KIOSK_E_COMMAND_UNSIGNED');
  assert.deepEqual(calls, []);
  await s.stop();
});

test('without the entry the same request is an unknown command', async () => {
  const { s, ask } = server();
  const r = await ask('echo', '{"text":"hi"}');
  assert.equal(r?.body.error?.code, 'KIOSK_E_COMMAND_UNKNOWN');
  await s.stop();
  const policy = {
    deviceId: 'k1',
    maxBytes: 4096,
    requireSignature: false,
    fleetKeys: [],
    maxSkewS: 60,
    now: 0,
  };
  assert.equal(parseCommandRequest('wipe', Buffer.from('{}'), policy).ok, false);
  const parsed = parseCommandRequest('echo', Buffer.from('{"text":"x"}'), { ...policy, commands: FAKE });
  assert.deepEqual(parsed.ok && parsed.args, { text: 'x' });
});
