// GgufMetadata: the ordered key/value entries of a GGUF file, with typed getters that name what is wrong.
import { AglmError } from '../errors.js';
import { GgufValueType, type GgufArray, type GgufEntry, type GgufValue } from './types.js';
import { isNumericType, valueTypeName } from './value-type-info.js';

/** A numeric array as handed out: the file's typed array, or number[] for 64-bit integer items. */
export type GgufNumberArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | number[];

/** Arrays longer than this are shown as {type, length} by toJSON(). */
const JSON_ARRAY_LIMIT = 64;

type Convert<T> = (entry: GgufEntry) => T | undefined;

export class GgufMetadata {
  readonly #entries: readonly GgufEntry[];
  readonly #byKey: ReadonlyMap<string, GgufEntry>;

  constructor(entries: Iterable<GgufEntry>) {
    const list = [...entries];
    const byKey = new Map<string, GgufEntry>();
    for (const e of list) {
      if (byKey.has(e.key)) throw new AglmError('INVALID_ARGUMENT', `Metadata key ${JSON.stringify(e.key)} appears twice`);
      byKey.set(e.key, e);
    }
    this.#entries = list;
    this.#byKey = byKey;
  }

  get size(): number {
    return this.#entries.length;
  }

  get(key: string): GgufValue | undefined {
    return this.#byKey.get(key)?.value;
  }

  getEntry(key: string): GgufEntry | undefined {
    return this.#byKey.get(key);
  }

  has(key: string): boolean {
    return this.#byKey.has(key);
  }

  /** The entries in file order. */
  entries(): GgufEntry[] {
    return [...this.#entries];
  }

  /** The keys in file order. */
  keys(): string[] {
    return this.#entries.map((e) => e.key);
  }

  getString(key: string): string {
    return this.#required(key, 'a STRING', asString);
  }
  getNumber(key: string): number {
    return this.#required(key, 'a number (integer or float; 64-bit integers up to 2^53-1)', asNumber);
  }
  getBoolean(key: string): boolean {
    return this.#required(key, 'a BOOL', asBoolean);
  }
  getStringArray(key: string): string[] {
    return this.#required(key, 'an array of STRING', asStringArray);
  }
  getNumberArray(key: string): GgufNumberArray {
    return this.#required(key, 'an array of numbers', asNumberArray);
  }
  getArray(key: string): GgufArray {
    return this.#required(key, 'an ARRAY', asArray);
  }

  optString(key: string): string | undefined {
    return this.#optional(key, 'a STRING', asString);
  }
  optNumber(key: string): number | undefined {
    return this.#optional(key, 'a number (integer or float; 64-bit integers up to 2^53-1)', asNumber);
  }
  optBoolean(key: string): boolean | undefined {
    return this.#optional(key, 'a BOOL', asBoolean);
  }
  optStringArray(key: string): string[] | undefined {
    return this.#optional(key, 'an array of STRING', asStringArray);
  }
  optNumberArray(key: string): GgufNumberArray | undefined {
    return this.#optional(key, 'an array of numbers', asNumberArray);
  }

  /** A plain object for printing: bigints as numbers (or strings when unsafe), arrays over 64 items as {type, length}. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const e of this.#entries) out[e.key] = jsonValue(e.value);
    return out;
  }

  #required<T>(key: string, expected: string, convert: Convert<T>): T {
    const entry = this.#byKey.get(key);
    if (!entry) throw new AglmError('GGUF_MISSING_KEY', `GGUF metadata key ${JSON.stringify(key)} is missing (expected ${expected})`);
    return this.#converted(entry, expected, convert);
  }

  #optional<T>(key: string, expected: string, convert: Convert<T>): T | undefined {
    const entry = this.#byKey.get(key);
    return entry ? this.#converted(entry, expected, convert) : undefined;
  }

  #converted<T>(entry: GgufEntry, expected: string, convert: Convert<T>): T {
    const v = convert(entry);
    if (v === undefined) {
      throw new AglmError(
        'GGUF_MISSING_KEY',
        `GGUF metadata key ${JSON.stringify(entry.key)} has ${describeEntry(entry)}, expected ${expected}`,
      );
    }
    return v;
  }
}

function asString(e: GgufEntry): string | undefined {
  return e.type === GgufValueType.STRING && typeof e.value === 'string' ? e.value : undefined;
}

function asBoolean(e: GgufEntry): boolean | undefined {
  return e.type === GgufValueType.BOOL && typeof e.value === 'boolean' ? e.value : undefined;
}

function asNumber(e: GgufEntry): number | undefined {
  if (!isNumericType(e.type)) return undefined;
  return toSafeNumber(e.value);
}

function asArray(e: GgufEntry): GgufArray | undefined {
  return e.type === GgufValueType.ARRAY && isArrayValue(e.value) ? e.value : undefined;
}

function asStringArray(e: GgufEntry): string[] | undefined {
  const a = asArray(e);
  if (!a || a.itemType !== GgufValueType.STRING || !Array.isArray(a.items)) return undefined;
  return a.items.every((s) => typeof s === 'string') ? (a.items as string[]) : undefined;
}

function asNumberArray(e: GgufEntry): GgufNumberArray | undefined {
  const a = asArray(e);
  if (!a || !isNumericType(a.itemType)) return undefined;
  const items = a.items;
  if (items instanceof BigInt64Array || items instanceof BigUint64Array || Array.isArray(items)) {
    const out: number[] = [];
    for (const v of items as Iterable<unknown>) {
      const n = toSafeNumber(v);
      if (n === undefined) return undefined;
      out.push(n);
    }
    return out;
  }
  return items;
}

function toSafeNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') {
    const n = Number(v);
    return Number.isSafeInteger(n) && BigInt(n) === v ? n : undefined;
  }
  return undefined;
}

function isArrayValue(v: GgufValue): v is GgufArray {
  return typeof v === 'object' && v !== null && 'itemType' in v && 'items' in v;
}

function describeEntry(e: GgufEntry): string {
  if (isArrayValue(e.value)) return `type ARRAY of ${valueTypeName(e.value.itemType)} (${e.value.items.length} items)`;
  const shown = typeof e.value === 'string' ? JSON.stringify(e.value.slice(0, 40)) : String(e.value);
  return `type ${valueTypeName(e.type)} (value ${shown})`;
}

function jsonValue(v: GgufValue): unknown {
  if (typeof v === 'bigint') return toSafeNumber(v) ?? v.toString();
  if (!isArrayValue(v)) return v;
  if (v.items.length > JSON_ARRAY_LIMIT) return { type: valueTypeName(v.itemType), length: v.items.length };
  return Array.from(v.items as ArrayLike<GgufValue>, (item) =>
    v.itemType === GgufValueType.BOOL && typeof item === 'number' ? item !== 0 : jsonValue(item),
  );
}
