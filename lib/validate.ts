// Option checks at the public edge, all with one sentence shape (errors.ts invalidArgument).
import { invalidArgument } from './errors.js';

export function checkObject<T extends object>(name: string, value: unknown): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidArgument(name, 'an object', value);
  return value as Partial<T>;
}

export function checkInt(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(name, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

export function optInt(name: string, value: unknown, min: number, max: number, fallback: number): number {
  return value === undefined ? fallback : checkInt(name, value, min, max);
}

export function optNumber(name: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max) {
    throw invalidArgument(name, `a number from ${min} to ${max}`, value);
  }
  return value;
}

export function optBoolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidArgument(name, 'a boolean', value);
  return value;
}

export function optOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalidArgument(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  }
  return value as T;
}

export function optSignal(name: string, value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw invalidArgument(name, 'an AbortSignal', value);
  return value;
}

export function checkTokens(name: string, value: unknown, vocabSize: number): ArrayLike<number> {
  const ok =
    value instanceof Uint32Array ||
    value instanceof Int32Array ||
    (Array.isArray(value) && value.every((t) => typeof t === 'number'));
  if (!ok) throw invalidArgument(name, 'a Uint32Array or an array of token ids', value);
  const tokens = value as ArrayLike<number>;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize) {
      throw invalidArgument(`${name}[${i}]`, `a token id from 0 to ${vocabSize - 1}`, t);
    }
  }
  return tokens;
}
