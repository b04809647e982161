/**
 * Seeded pseudo-random generators.
 *
 * Every stochastic choice in the harness draws from an {@link Rng}. A run owns
 * three independent streams (see {@link seedStreams}): `data` (class order,
 * shuffles), `init` (weight initialisation) and `method` (dropout masks,
 * bandit draws), so that changing one does not move the others.
 *
 * The generator is PCG-XSH-RR 32 (O'Neill 2014) with a 64-bit BigInt state, seeded through
 * SplitMix32. Its whole state
 * is two numbers, which {@link Rng.state} returns for checkpoints.
 *
 * @module
 */

/** Serialisable state of an {@link Rng}: the two 32-bit halves of PCG's 64-bit state. */
export interface RngState {
  /** High 32 bits of the 64-bit state. */
  hi: number;
  /** Low 32 bits of the 64-bit state. */
  lo: number;
}

const MUL = 6364136223846793005n;
const INC = 1442695040888963407n;
const MASK64 = (1n << 64n) - 1n;

function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * A seeded generator (PCG32). Deterministic for a given seed on every platform.
 *
 * @example
 * ```ts
 * import { Rng } from "./random.ts";
 * const rng = new Rng(42);
 * const u = rng.next(); // in [0, 1)
 * const k = rng.int(10); // in 0..9
 * ```
 */
export class Rng {
  #state = 0n;

  /** Create a generator from an integer seed (any 32-bit value). */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
    const s = Math.floor(seed) >>> 0;
    const hi = splitmix32(s);
    const lo = splitmix32(hi ^ 0x6a09e667);
    this.restore({ hi, lo });
    this.nextUint32();
  }

  /** The current state, for checkpoints. */
  state(): RngState {
    return { hi: Number(this.#state >> 32n), lo: Number(this.#state & 0xffffffffn) };
  }

  /** Restore a state returned by {@link Rng.state}. */
  restore(state: RngState): void {
    this.#state = ((BigInt(state.hi >>> 0) << 32n) | BigInt(state.lo >>> 0)) & MASK64;
  }

  /** The next uniformly distributed unsigned 32-bit integer (PCG-XSH-RR output). */
  nextUint32(): number {
    const old = this.#state;
    this.#state = (old * MUL + INC) & MASK64;
    const xorshifted = Number((((old >> 18n) ^ old) >> 27n) & 0xffffffffn);
    const rot = Number(old >> 59n);
    return ((xorshifted >>> rot) | (xorshifted << ((32 - rot) & 31))) >>> 0;
  }

  /** A float uniformly distributed in [0, 1), with 32 random bits. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** A uniform integer in [0, n). Unbiased (rejection sampling). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296) {
      throw new Error(`Rng.int: n must be an integer in 1..2^32, got ${n}`);
    }
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }

  /** A standard normal draw (Box-Muller; one draw per call). */
  normal(): number {
    let u = this.next();
    while (u === 0) u = this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** A uniform draw in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Shuffle an array in place (Fisher-Yates) and return it. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = xs[i];
      xs[i] = xs[j];
      xs[j] = t;
    }
    return xs;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }

  /** Sample an index from unnormalised non-negative weights. */
  categorical(weights: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i];
      if (!(w >= 0) || !Number.isFinite(w)) {
        throw new Error(`Rng.categorical: weight ${i} is ${w}; expected a finite number >= 0`);
      }
      total += w;
    }
    if (total <= 0) throw new Error("Rng.categorical: all weights are zero");
    let u = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      u -= weights[i];
      if (u < 0) return i;
    }
    return weights.length - 1;
  }

  /** A fresh 32-bit seed drawn from this stream (for seeding tfjs ops). */
  seed(): number {
    return this.nextUint32();
  }
}

/** The named random streams of one run. */
export interface SeedStreams {
  /** Class/task order and data shuffles. */
  data: Rng;
  /** Weight initialisation (LoRA, head). */
  init: Rng;
  /** Method-internal sampling: dropout masks, bandit draws. */
  method: Rng;
}

/** Seeds of the three streams, as recorded in `config.json`. */
export interface SeedConfig {
  /** Seed of the data stream (shuffles). */
  data: number;
  /** Seed of the initialisation stream. */
  init: number;
  /** Seed of the method stream. */
  method: number;
}

/**
 * Create the three independent streams of a run from their seeds.
 *
 * @example
 * ```ts
 * import { seedStreams } from "./random.ts";
 * const s = seedStreams({ data: 0, init: 0, method: 0 });
 * s.data.shuffle([1, 2, 3]);
 * ```
 */
export function seedStreams(seeds: SeedConfig): SeedStreams {
  return {
    data: new Rng(seeds.data ^ 0x0da7a),
    init: new Rng(seeds.init ^ 0x1417),
    method: new Rng(seeds.method ^ 0x3e7d),
  };
}
