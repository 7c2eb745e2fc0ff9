/**
 * Parsing untrusted JSON (command requests, decisions a gate receives) with limits checked on
 * the text before JSON.parse builds anything: a nesting depth bound (a 10 KB request nested
 * 5,000 levels deep otherwise overflows the stack of every later JSON.stringify) and, where a
 * signature is involved, no duplicate keys (two parsers could disagree on which value counts).
 */

export type StrictJsonFailure = 'not_utf8' | 'not_json' | 'too_deep' | 'duplicate_key';

export type StrictJsonResult = { ok: true; value: unknown } | { ok: false; reason: StrictJsonFailure };

export interface StrictJsonOptions {
  maxDepth: number;
  rejectDuplicateKeys?: boolean;
}

/**
 * One pass over the text: nesting depth and (optionally) duplicate keys per object. Only
 * meaningful on text JSON.parse accepts; the caller parses afterwards.
 */
function scan(text: string, opts: StrictJsonOptions): 'too_deep' | 'duplicate_key' | null {
  // For each open container: the keys seen so far (objects) or null (arrays).
  const stack: (Set<string> | null)[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      i++;
      const top = stack[stack.length - 1];
      if (opts.rejectDuplicateKeys && top) {
        // A string is a key when the next non-space character is a colon.
        let j = i;
        while (j < n && /\s/.test(text[j] as string)) j++;
        if (text[j] === ':') {
          let key: string;
          try {
            key = JSON.parse(text.slice(start, i)) as string;
          } catch {
            return null; // not JSON: JSON.parse reports it
          }
          if (top.has(key)) return 'duplicate_key';
          top.add(key);
        }
      }
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      stack.push(c === 0x7b ? new Set() : null);
      if (stack.length > opts.maxDepth) return 'too_deep';
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    }
    i++;
  }
  return null;
}

/** Parse UTF-8 bytes or a string as JSON within the limits; every failure is a reason, never a throw. */
export function parseStrictJson(input: Buffer | string, opts: StrictJsonOptions): StrictJsonResult {
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    try {
      // ignoreBOM keeps a byte order mark in the text, where JSON.parse refuses it: signed
      // bytes never start with one, and a gate's own JSON.parse would throw on it (issue 24,
      // finding 7).
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
    } catch {
      return { ok: false, reason: 'not_utf8' };
    }
  }
  const problem = scan(text, opts);
  if (problem) return { ok: false, reason: problem };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, reason: 'not_json' };
  }
}
