/**
 * Validates payloads against the contract's JSON Schemas (contract/schemas/*.json). A small
 * validator for the subset of JSON Schema 2020-12 those files use (type, const, enum,
 * properties, required, additionalProperties, items, oneOf, anyOf, $ref across the files,
 * minimum, maximum, minLength, maxLength, pattern, format date-time), so tests need no
 * extra package. An unsupported keyword throws: a schema can never pass by being ignored.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

type Schema = Record<string, unknown> | boolean;

const KNOWN = new Set([
  '$schema',
  '$id',
  '$defs',
  'title',
  'description',
  'type',
  'const',
  'enum',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'oneOf',
  'anyOf',
  '$ref',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'format',
  'default',
]);

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

export class ContractSchemas {
  private readonly files = new Map<string, Record<string, unknown>>();

  constructor(dir: string) {
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
      this.files.set(f, JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Record<string, unknown>);
    }
  }

  get names(): string[] {
    return [...this.files.keys()];
  }

  /** Every violation as `path: message`; empty when valid. */
  validate(file: string, value: unknown): string[] {
    const root = this.files.get(file);
    if (!root) throw new Error(`no schema ${file}`);
    const errors: string[] = [];
    this.check(root, value, '$', file, errors);
    return errors;
  }

  private resolve(ref: string, currentFile: string): { schema: Schema; file: string } {
    const [filePart, pointer] = ref.split('#');
    const file = filePart ? filePart : currentFile;
    let node: unknown = this.files.get(file);
    if (node === undefined) throw new Error(`$ref to unknown file ${file}`);
    for (const part of (pointer ?? '').split('/').filter(Boolean))
      node = (node as Record<string, unknown>)[part];
    if (node === undefined) throw new Error(`$ref ${ref} does not resolve`);
    return { schema: node as Schema, file };
  }

  private check(schema: Schema, v: unknown, at: string, file: string, errors: string[]): void {
    if (schema === true) return;
    if (schema === false) {
      errors.push(`${at}: not allowed`);
      return;
    }
    for (const k of Object.keys(schema))
      if (!KNOWN.has(k)) throw new Error(`unsupported keyword ${k} in ${file}`);
    const s = schema as Record<string, unknown>;
    if (typeof s.$ref === 'string') {
      const r = this.resolve(s.$ref, file);
      this.check(r.schema, v, at, r.file, errors);
    }
    const t = typeOf(v);
    if (s.type !== undefined) {
      const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
      if (!types.some((x) => x === t || (x === 'number' && t === 'integer'))) {
        errors.push(`${at}: expected ${types.join('|')}, got ${t}`);
        return;
      }
    }
    if ('const' in s && JSON.stringify(s.const) !== JSON.stringify(v))
      errors.push(`${at}: must be ${JSON.stringify(s.const)}`);
    if (Array.isArray(s.enum) && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) {
      errors.push(`${at}: ${JSON.stringify(v)} not in ${JSON.stringify(s.enum)}`);
    }
    for (const [key, list] of [
      ['oneOf', s.oneOf],
      ['anyOf', s.anyOf],
    ] as const) {
      if (!Array.isArray(list)) continue;
      const passing = list.filter((sub) => {
        const e: string[] = [];
        this.check(sub as Schema, v, at, file, e);
        return e.length === 0;
      }).length;
      if (key === 'oneOf' ? passing !== 1 : passing === 0) errors.push(`${at}: matches ${passing} of ${key}`);
    }
    if (typeof v === 'number') {
      if (typeof s.minimum === 'number' && v < s.minimum) errors.push(`${at}: below ${s.minimum}`);
      if (typeof s.maximum === 'number' && v > s.maximum) errors.push(`${at}: above ${s.maximum}`);
    }
    if (typeof v === 'string') {
      if (typeof s.minLength === 'number' && v.length < s.minLength)
        errors.push(`${at}: shorter than ${s.minLength}`);
      if (typeof s.maxLength === 'number' && v.length > s.maxLength)
        errors.push(`${at}: longer than ${s.maxLength}`);
      if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v))
        errors.push(`${at}: does not match ${s.pattern}`);
      if (s.format === 'date-time' && (!DATE_TIME.test(v) || Number.isNaN(Date.parse(v))))
        errors.push(`${at}: not a date-time`);
    }
    if (Array.isArray(v) && s.items !== undefined) {
      for (const [i, item] of v.entries()) this.check(s.items as Schema, item, `${at}[${i}]`, file, errors);
    }
    if (t === 'object') {
      const obj = v as Record<string, unknown>;
      for (const r of (s.required as string[] | undefined) ?? [])
        if (!(r in obj)) errors.push(`${at}: missing ${r}`);
      const props = (s.properties as Record<string, Schema> | undefined) ?? {};
      for (const [k, val] of Object.entries(obj)) {
        if (k in props) this.check(props[k] as Schema, val, `${at}.${k}`, file, errors);
        else if (s.additionalProperties !== undefined)
          this.check(s.additionalProperties as Schema, val, `${at}.${k}`, file, errors);
      }
    }
  }
}
