// The sampler's seeded PRNG: xoshiro128** with its state expanded from the seed by a splitmix32-style mixer.
import { randomInt } from 'node:crypto';

const GOLDEN = 0x9e3779b9;

function mix32(z: number): number {
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));

/** A fresh random seed in [0, 2^32). */
export function randomSeed(): number {
  return randomInt(0, 2 ** 32);
}

export class Rng {
  #s0 = 0;
  #s1 = 0;
  #s2 = 0;
  #s3 = 0;

  /** `seed`: a non-negative safe integer; both its low and high 32 bits count. */
  constructor(seed: number) {
    this.reseed(seed);
  }

  reseed(seed: number): void {
    let x = (seed >>> 0) ^ mix32(Math.floor(seed / 2 ** 32) + GOLDEN);
    const next = () => mix32((x = (x + GOLDEN) | 0));
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next();
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 2 ** 26 + lo) / 2 ** 53;
  }
}
