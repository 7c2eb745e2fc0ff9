/**
 * The strict JSON parser that command requests and received decisions go through
 * (daemon/contract/signing/strict-json.ts): depth counted on the text, duplicate keys per
 * object, strings (with escapes) never taken for structure, every failure a reason.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseStrictJson } from '../../daemon/contract/signing/strict-json.js';

const strict = { maxDepth: 3, rejectDuplicateKeys: true };
const reason = (text: string | Buffer, opts = strict) => {
  const r = parseStrictJson(text, opts);
  return r.ok ? 'ok' : r.reason;
};

describe('strict JSON', () => {
  test('depth: exactly maxDepth levels pass, one more is too deep, whatever the bracket kind', () => {
    assert.equal(reason('[[[1]]]'), 'ok');
    assert.equal(reason('[[[[1]]]]'), 'too_deep');
    assert.equal(reason('{"a":{"b":{"c":1}}}'), 'ok');
    assert.equal(reason('{"a":{"b":{"c":{}}}}'), 'too_deep');
    assert.equal(reason('{"a":[{"c":1}]}'), 'ok');
    assert.equal(reason('{"a":[{"c":[]}]}'), 'too_deep');
    // Closing brackets lower the depth again: siblings never add up.
    assert.equal(reason('[[[1]],[[2]],[[3]],{"a":{"b":1}}]'), 'ok');
    // Brackets inside strings are text, not structure (also after an escaped quote or backslash).
    assert.equal(reason('["[[[[{{{{"]'), 'ok');
    assert.equal(reason('["\\"[[[[", "\\\\", "[[[["]'), 'ok');
    assert.equal(reason('{"k\\"{{{{":1}'), 'ok');
    assert.equal(reason('[1]', { maxDepth: 0, rejectDuplicateKeys: true }), 'too_deep');
  });

  test('duplicate keys: refused in one object, allowed across objects, levels, arrays and values', () => {
    assert.equal(reason('{"a":1,"a":2}'), 'duplicate_key');
    assert.equal(reason('{"a":1, "b":2 ,"a" :3}'), 'duplicate_key');
    assert.equal(reason('{"a":1,"\\u0061":2}'), 'duplicate_key', 'the same key written with an escape');
    assert.equal(reason('{"a":{"a":1}}'), 'ok');
    assert.equal(reason('[{"a":1},{"a":2}]'), 'ok');
    assert.equal(reason('{"a":{"b":1},"b":2}'), 'ok');
    assert.equal(reason('{"x":{"a":1},"y":{"a":1}}'), 'ok');
    assert.equal(reason('{"a":"a","b":"a"}'), 'ok', 'equal values are not keys');
    assert.equal(reason('["a","a"]'), 'ok', 'array strings are not keys');
    assert.equal(reason('{"a":["b","b"],"c":1}'), 'ok');
    // After an inner object closes, the outer object's keys are still checked.
    assert.equal(reason('{"a":{"x":1},"a":2}'), 'duplicate_key');
    assert.equal(reason('{"a":[1],"a":[2]}'), 'duplicate_key');
    // Arrays hold no keys: a string followed by a colon inside one is malformed JSON, not a key.
    assert.equal(reason('["a":1,"a":2]'), 'not_json');
    // Whitespace of every kind between a key and its colon.
    assert.equal(reason('{"a" \t\n\r:1,"a"\n:2}'), 'duplicate_key');
    // Allowed when not asked for (the last value wins, as JSON.parse does).
    const loose = parseStrictJson('{"a":1,"a":2}', { maxDepth: 3 });
    assert.deepEqual(loose, { ok: true, value: { a: 2 } });
  });

  test('bytes: UTF-8 decoded strictly; malformed JSON and bad escapes are reasons, not throws', () => {
    assert.deepEqual(parseStrictJson(Buffer.from('{"é":[1,"ü"]}'), strict), {
      ok: true,
      value: { é: [1, 'ü'] },
    });
    assert.equal(reason(Buffer.from([0x7b, 0xff, 0x7d])), 'not_utf8');
    assert.equal(reason(Buffer.from([0x22, 0xc3, 0x22])), 'not_utf8', 'a truncated sequence');
    assert.equal(reason('{"a":1'), 'not_json');
    assert.equal(reason('{"a":1}}'), 'not_json');
    assert.equal(reason(''), 'not_json');
    // A key whose escape JSON.parse refuses: not JSON (the scan leaves it to JSON.parse).
    assert.equal(reason('{"\\x":1,"\\x":2}'), 'not_json');
    // A string left open at the end of the text.
    assert.equal(reason('{"a'), 'not_json');
    assert.deepEqual(parseStrictJson('"x"', strict), { ok: true, value: 'x' });
    assert.deepEqual(parseStrictJson(' 7 ', strict), { ok: true, value: 7 });
  });
});
