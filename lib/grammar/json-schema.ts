// A JSON schema compiled to GBNF whose every complete sentence is JSON text valid under the schema. The common subset:
// type (and lists of types), const, enum, anyOf/oneOf, allOf (objects merged), $ref into $defs/definitions (recursion
// allowed), objects (properties in their declared order, required and optional, maps through additionalProperties,
// min/maxProperties and propertyNames for maps), arrays (items, prefixItems, min/maxItems), strings (min/maxLength, formats date, time,
// date-time, uuid, email), integers and numbers with bounds. Where the schema allows more than a grammar can say
// cheaply (a non-integral bound, a day past the 28th), the grammar allows a valid subset, never more. Keywords that
// constrain in ways not covered (pattern, not, if/then/else, multipleOf, uniqueItems...) are INVALID_GRAMMAR.
import { AglmError } from '../errors.js';
import { gbnfLiteral } from './gbnf.js';

export interface JsonSchemaToGbnfOptions {
  /**
   * Whitespace between tokens: 'flexible' (default: nothing, one space, or a newline and up to 20 spaces or tabs, the
   * way models indent JSON) or 'none' (compact JSON only).
   */
  whitespace?: 'flexible' | 'none';
  /**
   * Prefix for every rule name, the start rule included (`${prefix}root`), so that several grammars can be joined
   * into one text (a tool call's arguments, one grammar per tool). Letters, digits and '-'. Default none.
   */
  prefix?: string;
}

type Schema = Record<string, unknown>;

const ANNOTATIONS = new Set([
  '$schema', '$id', '$comment', '$anchor', 'title', 'description', 'default', 'examples', 'readOnly', 'writeOnly',
  'deprecated', 'contentMediaType', 'contentEncoding', 'nullable', 'strict', 'name',
]);
const HANDLED = new Set([
  'type', 'const', 'enum', 'anyOf', 'oneOf', 'allOf', '$ref', '$defs', 'definitions', 'properties', 'required',
  'additionalProperties', 'minProperties', 'maxProperties', 'items', 'prefixItems', 'minItems', 'maxItems', 'minLength',
  'maxLength', 'format', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'unevaluatedProperties',
  'propertyNames',
]);
const MAX_DIGITS = 16; // digits of an unbounded integer part; JSON numbers beyond it lose precision in JS anyway
const SAFE = 1e15;

const PRIMITIVES: Record<string, string> = {
  value: 'object | array | string | number | boolean | null',
  object: '"{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}"',
  array: '"[" ws ( value ws ( "," ws value ws )* )? "]"',
  string: '"\\"" char* "\\""',
  char: '[^"\\\\\\x7F\\x00-\\x1F] | "\\\\" ( ["\\\\/bfnrt] | "u" [0-9a-fA-F]{4} )',
  number: '"-"? integral ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?',
  integer: '"-"? integral',
  integral: '"0" | [1-9] [0-9]{0,15}',
  boolean: '"true" | "false"',
  null: '"null"',
  'date': '[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] )',
  'time': '( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,3} )? "Z"',
  'uuid': '[0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12}',
  'email': '[a-z0-9]{1,20} ( "." [a-z0-9]{1,20} )? "@" [a-z0-9]{1,20} "." [a-z]{2,6}',
};
const DEPENDS: Record<string, string[]> = {
  value: ['object', 'array', 'string', 'number', 'boolean', 'null'],
  object: ['ws', 'string', 'value'],
  array: ['ws', 'value'],
  string: ['char'],
  number: ['integral'],
  integer: ['integral'],
};
const FORMATS: Record<string, string> = {
  date: '"\\"" date "\\""',
  time: '"\\"" time "\\""',
  'date-time': '"\\"" date "T" time "\\""',
  uuid: '"\\"" uuid "\\""',
  email: '"\\"" email "\\""',
};

function fail(path: string, message: string): never {
  throw new AglmError('INVALID_GRAMMAR', `JSON schema${path ? ` at ${path}` : ''}: ${message}`);
}

function isObject(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Converter {
  readonly rules = new Map<string, string>();
  readonly #byBody = new Map<string, string>();
  readonly #refs = new Map<string, string>();
  readonly #root: Schema;
  readonly #ws: string;

  constructor(root: Schema, options: JsonSchemaToGbnfOptions) {
    this.#root = root;
    this.#ws = options.whitespace === 'none' ? '""' : '| " " | "\\n" [ \\t]{0,20}';
  }

  /** Adds a primitive rule (and what it uses) once. */
  primitive(name: string): string {
    if (!this.rules.has(name)) {
      this.rules.set(name, name === 'ws' ? this.#ws : PRIMITIVES[name]);
      for (const d of DEPENDS[name] ?? []) this.primitive(d);
    }
    return name;
  }

  /** A named rule for `body`, reusing an existing one with the same body. */
  rule(hint: string, body: string): string {
    const same = this.#byBody.get(body);
    if (same) return same;
    let name = hint.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'item';
    if (this.rules.has(name) || name in PRIMITIVES || name === 'ws' || name === 'root') {
      let i = 1;
      while (this.rules.has(`${name}-${i}`)) i++;
      name = `${name}-${i}`;
    }
    this.rules.set(name, body);
    this.#byBody.set(body, name);
    return name;
  }

  /** A GBNF expression (a rule name or a literal) for the values `schema` allows. */
  visit(schema: unknown, hint: string, path: string): string {
    if (schema === true) return this.primitive('value');
    if (schema === false) fail(path, 'false allows no value');
    if (!isObject(schema)) fail(path, `expected a schema object, got ${JSON.stringify(schema)}`);
    for (const key of Object.keys(schema)) {
      if (!HANDLED.has(key) && !ANNOTATIONS.has(key)) fail(path, `the keyword "${key}" is not supported`);
    }
    if (typeof schema.$ref === 'string') return this.#ref(schema.$ref, path);
    if ('const' in schema) return gbnfLiteral(JSON.stringify(schema.const));
    if (Array.isArray(schema.enum)) {
      if (schema.enum.length === 0) fail(path, 'an empty enum allows no value');
      return this.rule(hint, schema.enum.map((v) => gbnfLiteral(JSON.stringify(v))).join(' | '));
    }
    if ('enum' in schema) fail(path, 'enum must be an array');
    const branches = (schema.anyOf ?? schema.oneOf) as unknown;
    if (branches !== undefined) {
      if (!Array.isArray(branches) || branches.length === 0) fail(path, 'anyOf/oneOf must be a non-empty array');
      const { anyOf: _a, oneOf: _o, ...rest } = schema;
      const alts = branches.map((b, i) => {
        const merged = isObject(b) && Object.keys(rest).length > 0 ? mergeSchemas(rest, b, `${path}/anyOf/${i}`) : b;
        return this.visit(merged, `${hint}-${i}`, `${path}/anyOf/${i}`);
      });
      return this.rule(hint, alts.join(' | '));
    }
    if (schema.allOf !== undefined) {
      if (!Array.isArray(schema.allOf)) fail(path, 'allOf must be an array');
      const { allOf, ...rest } = schema;
      let merged: Schema = rest;
      (allOf as unknown[]).forEach((b, i) => {
        let part = b;
        if (isObject(b) && typeof b.$ref === 'string') part = this.#resolve(b.$ref, path);
        if (!isObject(part)) fail(`${path}/allOf/${i}`, 'expected a schema object');
        merged = mergeSchemas(merged, part, `${path}/allOf/${i}`);
      });
      return this.visit(merged, hint, path);
    }
    let type = schema.type;
    if (type === undefined) {
      if (isObject(schema.properties) || schema.additionalProperties !== undefined) type = 'object';
      else if (schema.items !== undefined || schema.prefixItems !== undefined) type = 'array';
      else if (schema.minLength !== undefined || schema.maxLength !== undefined || schema.format !== undefined) type = 'string';
      else if (['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'].some((k) => k in schema)) type = 'number';
      else return this.primitive('value');
    }
    if (Array.isArray(type)) {
      if (type.length === 0) fail(path, 'an empty type list allows no value');
      return this.rule(hint, type.map((t) => this.visit({ ...schema, type: t }, `${hint}-${t}`, path)).join(' | '));
    }
    switch (type) {
      case 'object':
        return this.#object(schema, hint, path);
      case 'array':
        return this.#array(schema, hint, path);
      case 'string':
        return this.#string(schema, hint, path);
      case 'integer':
      case 'number':
        return this.#number(schema, type, hint, path);
      case 'boolean':
        return this.primitive('boolean');
      case 'null':
        return this.primitive('null');
      default:
        fail(path, `unknown type ${JSON.stringify(type)}`);
    }
  }

  #resolve(ref: string, path: string): unknown {
    if (ref === '#') return this.#root;
    const m = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref);
    if (!m) fail(path, `only local references (#/$defs/... or #/definitions/...) are supported, got "${ref}"`);
    const defs = this.#root[m[1]];
    const name = m[2].replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isObject(defs) || !(name in defs)) fail(path, `"${ref}" is not defined`);
    return defs[name];
  }

  #ref(ref: string, path: string): string {
    const known = this.#refs.get(ref);
    if (known) return known;
    const target = this.#resolve(ref, path);
    // Reserve the name first so that recursive references resolve to it.
    const hint = ref === '#' ? 'root-value' : ref.slice(ref.lastIndexOf('/') + 1);
    const name = this.rule(hint, `<pending ${ref}>`);
    this.#refs.set(ref, name);
    const body = this.visit(target, `${name}-body`, ref);
    this.#byBody.delete(`<pending ${ref}>`);
    this.rules.set(name, body);
    return name;
  }

  #object(schema: Schema, hint: string, path: string): string {
    const ws = this.primitive('ws');
    const props = isObject(schema.properties) ? schema.properties : {};
    const required = new Set(Array.isArray(schema.required) ? (schema.required as unknown[]).filter((r): r is string => typeof r === 'string') : []);
    for (const r of required) if (!(r in props)) fail(path, `required property "${r}" has no schema under properties`);
    const names = Object.keys(props);
    if (names.length === 0) {
      const extra = schema.additionalProperties;
      if (extra === false) return gbnfLiteral('{') + ` ${ws} ` + gbnfLiteral('}');
      const value = extra === undefined || extra === true ? this.primitive('value') : this.visit(extra, `${hint}-value`, `${path}/additionalProperties`);
      const names = schema.propertyNames;
      let key = this.primitive('string');
      if (names !== undefined && names !== true) {
        if (!isObject(names) || (names.type !== undefined && names.type !== 'string')) fail(`${path}/propertyNames`, 'must be a string schema');
        key = this.visit({ ...names, type: 'string' }, `${hint}-key`, `${path}/propertyNames`);
      }
      const member = this.rule(`${hint}-member`, `${key} ${ws} ":" ${ws} ${value} ${ws}`);
      const min = intKeyword(schema, 'minProperties', path) ?? 0;
      const max = intKeyword(schema, 'maxProperties', path) ?? Infinity;
      if (max < min) fail(path, 'maxProperties is below minProperties');
      if (max === 0) return gbnfLiteral('{') + ` ${ws} ` + gbnfLiteral('}');
      const more = `( "," ${ws} ${member} )${repetition(Math.max(0, min - 1), max - 1)}`;
      const members = min === 0 ? `( ${member} ${more} )?` : `${member} ${more}`;
      return this.rule(hint, `"{" ${ws} ${members} "}"`);
    }
    if (schema.minProperties !== undefined || schema.maxProperties !== undefined || schema.propertyNames !== undefined) {
      fail(path, 'minProperties, maxProperties and propertyNames are supported for maps (objects without properties) only');
    }
    // A[i]: nothing written yet, properties from i on; B[i]: something written (a comma comes first).
    const kv = names.map((n) => {
      const value = this.visit(props[n], `${hint}-${n}`, `${path}/properties/${n}`);
      return `${gbnfLiteral(JSON.stringify(n))} ${ws} ":" ${ws} ${value} ${ws}`;
    });
    const a: string[] = new Array(names.length + 1).fill('');
    const b: string[] = new Array(names.length + 1).fill('');
    for (let i = names.length - 1; i >= 0; i--) {
      const restB = b[i + 1] ? ` ${b[i + 1]}` : '';
      const req = required.has(names[i]);
      const withA = `${kv[i]}${restB}`;
      const withB = `"," ${ws} ${kv[i]}${restB}`;
      a[i] = this.rule(`${hint}-a${i}`, req ? withA : `${withA} | ${a[i + 1] || '""'}`);
      b[i] = this.rule(`${hint}-b${i}`, req ? withB : `${withB} | ${b[i + 1] || '""'}`);
    }
    return this.rule(hint, `"{" ${ws} ${a[0]} "}"`);
  }

  #array(schema: Schema, hint: string, path: string): string {
    const ws = this.primitive('ws');
    const prefix = Array.isArray(schema.prefixItems) ? (schema.prefixItems as unknown[]) : [];
    const items = schema.items;
    if (Array.isArray(items)) fail(path, 'items as an array (draft 4 tuples) is not supported: use prefixItems');
    const min = intKeyword(schema, 'minItems', path) ?? 0;
    let max = intKeyword(schema, 'maxItems', path) ?? Infinity;
    if (items === false) max = Math.min(max, prefix.length);
    if (max < min) fail(path, 'the array bounds allow no array');
    if (max === 0) return this.rule(hint, `"[" ${ws} "]"`);
    const parts = prefix.slice(0, Math.min(prefix.length, max)).map((p, i) => this.visit(p, `${hint}-${i}`, `${path}/prefixItems/${i}`));
    const item = max > parts.length ? (items === undefined || items === true ? this.primitive('value') : this.visit(items, `${hint}-item`, `${path}/items`)) : '';
    // Element i: a comma first unless it is the first one; the prefix ones, then `item` repeated.
    const el = (i: number): string => (i === 0 ? '' : `"," ${ws} `) + `${i < parts.length ? parts[i] : item} ${ws}`;
    const p = parts.length;
    // The elements past the prefix: element p repeated tailMin..tailMax times (each after the first needs the first).
    const tailMin = Math.max(0, min - p);
    const tailMax = max - p;
    let tail = '';
    if (tailMax > 0) {
      const first = el(p);
      const more = tailMax - 1 > 0 || tailMax === Infinity ? ` ( ${el(p + 1)} )${repetition(Math.max(0, tailMin - 1), tailMax - 1)}` : '';
      tail = tailMin > 0 ? `${first}${more}` : `( ${first}${more} )?`;
    }
    // Prefix elements from min on are optional, each needing the one before it: nested right to left.
    let body = tail;
    for (let i = p - 1; i >= 0; i--) body = i >= min ? `( ${el(i)} ${body} )?` : `${el(i)} ${body}`;
    return this.rule(hint, `"[" ${ws} ${body} "]"`);
  }

  #string(schema: Schema, hint: string, path: string): string {
    if (typeof schema.format === 'string' && schema.format in FORMATS) {
      const f = schema.format;
      if (f === 'date-time') {
        this.primitive('date');
        this.primitive('time');
      } else this.primitive(f);
      return this.rule(`${hint}-${f}`, FORMATS[f]);
    }
    const min = intKeyword(schema, 'minLength', path) ?? 0;
    const max = intKeyword(schema, 'maxLength', path) ?? Infinity;
    if (max < min) fail(path, 'maxLength is below minLength');
    if (min === 0 && max === Infinity) return this.primitive('string');
    this.primitive('char');
    return this.rule(hint, `"\\"" char${repetition(min, max)} "\\""`);
  }

  #number(schema: Schema, type: 'integer' | 'number', hint: string, path: string): string {
    const bound = (k: string): number | undefined => {
      const v = schema[k];
      if (v === undefined || typeof v === 'boolean') return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, `${k} must be a number`);
      return v;
    };
    const min = bound('minimum'), max = bound('maximum');
    const xmin = bound('exclusiveMinimum'), xmax = bound('exclusiveMaximum');
    if (min === undefined && max === undefined && xmin === undefined && xmax === undefined) return this.primitive(type);
    // The interval: L and H with whether each end is open.
    let L = -Infinity, H = Infinity, openL = false, openH = false;
    if (min !== undefined) L = min;
    if (xmin !== undefined && xmin >= L) (L = xmin), (openL = true);
    if (max !== undefined) H = max;
    if (xmax !== undefined && xmax <= H) (H = xmax), (openH = true);
    const clamp = (v: number): number => (v < -SAFE ? -Infinity : v > SAFE ? Infinity : v);
    // Integers in the interval.
    const lo = clamp(openL ? Math.floor(L) + 1 : Math.ceil(L));
    const hi = clamp(openH ? Math.ceil(H) - 1 : Math.floor(H));
    const alts: string[] = [];
    if (lo <= hi) alts.push(type === 'integer' ? integerRange(lo, hi) : `( ${integerRange(lo, hi)} )`);
    if (type === 'number') {
      // k.f with a non-zero fraction lies in (k, k+1): inside when k >= L and k + 1 <= H (either end open or not);
      // -k.f lies in (-(k+1), -k): inside when -(k+1) >= L and -k <= H.
      const frac = '"." [0-9]{0,15} [1-9]';
      const posLo = Math.max(0, clamp(Math.ceil(L))), posHi = clamp(Math.floor(H) - 1);
      if (posLo <= posHi) alts.push(`( ${natRange(posLo, posHi)} ) ${frac}`);
      const negLo = Math.max(0, clamp(Math.ceil(-H))), negHi = clamp(Math.floor(-L) - 1);
      if (negLo <= negHi) alts.push(`"-" ( ${natRange(negLo, negHi)} ) ${frac}`);
    }
    if (alts.length === 0) fail(path, 'the bounds allow no value a grammar can write');
    return this.rule(hint, alts.join(' | '));
  }
}

function intKeyword(schema: Schema, key: string, path: string): number | undefined {
  const v = schema[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(path, `${key} must be a non-negative integer`);
  return v;
}

/** `{m,n}` in GBNF (`*`, `+`, `?` where they say it); counts above 2000 are unbounded there, so capped here. */
function repetition(min: number, max: number): string {
  if (min > 2000) fail('', `a repetition of ${min} is more than a grammar allows (2000)`);
  if (max === Infinity || max > 2000) return min === 0 ? '*' : min === 1 ? '+' : `{${min},}`;
  if (min === 0 && max === 1) return '?';
  return min === max ? `{${min}}` : `{${min},${max}}`;
}

/** Shallow merge for allOf and anyOf siblings: properties and required combined, other keywords from `b` win. */
function mergeSchemas(a: Schema, b: Schema, path: string): Schema {
  const out: Schema = { ...a, ...b };
  if (isObject(a.properties) || isObject(b.properties)) {
    out.properties = { ...(isObject(a.properties) ? a.properties : {}), ...(isObject(b.properties) ? b.properties : {}) };
  }
  if (Array.isArray(a.required) || Array.isArray(b.required)) {
    out.required = [...new Set([...((a.required as string[]) ?? []), ...((b.required as string[]) ?? [])])];
  }
  if (a.type !== undefined && b.type !== undefined && JSON.stringify(a.type) !== JSON.stringify(b.type)) {
    fail(path, `merging type ${JSON.stringify(a.type)} with ${JSON.stringify(b.type)} is not supported`);
  }
  return out;
}

/** GBNF for the decimal integers in [lo, hi] (either may be infinite): no leading zeros, no "-0". */
export function integerRange(lo: number, hi: number): string {
  const alts: string[] = [];
  if (lo < 0) {
    const negHi = Math.min(hi, -1);
    if (lo <= negHi) alts.push(`"-" ( ${natRange(-negHi, lo === -Infinity ? Infinity : -lo)} )`);
  }
  if (hi >= 0) alts.push(natRange(Math.max(lo, 0), hi));
  return alts.join(' | ');
}

/** The naturals in [a, b] (0 <= a <= 1e15, b may be Infinity): one alternative per digit count (as strings, exact). */
function natRange(a: number, b: number): string {
  const alts: string[] = [];
  const aText = String(a), bText = b === Infinity ? '' : String(b);
  const maxLen = b === Infinity ? MAX_DIGITS : bText.length;
  for (let len = aText.length; len <= maxLen; len++) {
    const from = len === aText.length ? aText : '1' + '0'.repeat(len - 1);
    const to = len === bText.length ? bText : '9'.repeat(len);
    if (from > to) continue; // same length: string order is numeric order
    alts.push(sameLength(from, to));
  }
  return alts.join(' | ');
}

/** Digit strings of one length between lo and hi inclusive (lo <= hi, same length). */
function sameLength(lo: string, hi: string): string {
  const n = lo.length;
  if (n === 0) return '""';
  if (n === 1) return lo === hi ? `"${lo}"` : `[${lo}-${hi}]`;
  const restLo = lo.slice(1), restHi = hi.slice(1);
  const any = (k: number): string => (k === 1 ? '[0-9]' : `[0-9]{${k}}`);
  if (lo[0] === hi[0]) return `"${lo[0]}" ( ${sameLength(restLo, restHi)} )`;
  if (/^0*$/.test(restLo) && /^9*$/.test(restHi)) return `[${lo[0]}-${hi[0]}] ${any(n - 1)}`;
  const alts: string[] = [];
  alts.push(`"${lo[0]}" ( ${sameLength(restLo, '9'.repeat(n - 1))} )`);
  const d0 = Number(lo[0]) + 1, d1 = Number(hi[0]) - 1;
  if (d0 <= d1) alts.push(`${d0 === d1 ? `"${d0}"` : `[${d0}-${d1}]`} ${any(n - 1)}`);
  alts.push(`"${hi[0]}" ( ${sameLength('0'.repeat(n - 1), restHi)} )`);
  return alts.join(' | ');
}

/** The GBNF (root rule `root`) of JSON text valid under `schema`; INVALID_GRAMMAR for what the subset lacks. */
export function jsonSchemaToGbnf(schema: unknown, options: JsonSchemaToGbnfOptions = {}): string {
  if (schema !== true && !isObject(schema)) fail('', `expected a schema object, got ${JSON.stringify(schema)}`);
  if (options.whitespace !== undefined && options.whitespace !== 'flexible' && options.whitespace !== 'none') {
    fail('', `whitespace must be 'flexible' or 'none', got ${JSON.stringify(options.whitespace)}`);
  }
  const prefix = options.prefix ?? '';
  if (typeof prefix !== 'string' || !/^[a-zA-Z0-9-]*$/.test(prefix)) fail('', `prefix must be letters, digits and '-', got ${JSON.stringify(prefix)}`);
  const c = new Converter(isObject(schema) ? schema : {}, options);
  const top = c.visit(schema, 'root-value', '');
  const rules: [string, string][] = [['root', top], ...c.rules];
  const names = new Set(rules.map(([n]) => n));
  // Prefix rule references: whole words outside quoted literals and classes.
  const rename = (body: string): string =>
    prefix === '' ? body : body.replace(/"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]|[a-zA-Z0-9-]+/g, (m) => (names.has(m) ? prefix + m : m));
  return rules.map(([name, body]) => `${prefix}${name} ::= ${rename(body)}`).join('\n') + '\n';
}
