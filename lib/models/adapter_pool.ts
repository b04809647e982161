/**
 * The adapter pool: several named LoRA adapters on one site, summed in the
 * forward pass (`site.pool`, read by `loraDelta`).
 *
 * A site keeps its own `a`/`b` (the "live" adapter, the one the trainer
 * checkpoints); the pool adds further adapters, each a pair of variables that
 * is trainable or frozen (`trainable` flag; a method decides what it hands to
 * the optimiser). All adapters share the site's scale s = alpha / r and its
 * dropout mask, so a pool is the same as one adapter whose rank is the sum of
 * the ranks (O-LoRA's concatenation).
 *
 * {@link TaskAdapters} is the bookkeeping the per-task methods share (O-LoRA,
 * InfLoRA, HiDe-LoRA): freeze the live adapter of every site into the pool at
 * a task boundary, keep a JS copy for checkpoints, re-attach after a restore.
 * To run one of them alone (HiDe-LoRA's per-task forward), wrap the forward
 * pass in `withActiveAdapter` (`lora.ts`) with its name, or `"live"` for the
 * site's own adapter; a pool adapter may therefore not be called `"live"`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Rng } from "../random.ts";
import type { LoraSite, PoolAdapter } from "./backbone.ts";
import { makeVariable, uniformArray } from "./init.ts";
import { LIVE_ADAPTER } from "./lora.ts";
import type { Variable } from "../tensor.ts";

function scopeOf(site: LoraSite): string {
  const name = site.a.name;
  const slash = name.lastIndexOf("/");
  return slash < 0 ? "" : name.slice(0, slash + 1);
}

/**
 * Add an adapter with the given values to `site.pool`. `a` is [rank, dIn]
 * row-major, `b` [dOut, rank]; variables are named
 * `<scope>/<site>.pool.<name>.lora_a` / `.lora_b`.
 *
 * @example
 * ```ts
 * import { Rng } from "../random.ts";
 * import { createLoraSite } from "./lora.ts";
 * import { addPoolAdapter, clearPool } from "./adapter_pool.ts";
 * const site = createLoraSite("q", { dIn: 3, dOut: 2, lora: { rank: 1, alpha: 1, dropout: 0 }, rng: new Rng(0) });
 * addPoolAdapter(site, "old", { rank: 1, a: new Float32Array(3), b: new Float32Array(2), trainable: false });
 * clearPool(site);
 * site.a.dispose();
 * site.b.dispose();
 * ```
 */
export function addPoolAdapter(
  site: LoraSite,
  name: string,
  options: { rank: number; a: Float32Array; b: Float32Array; trainable: boolean },
): PoolAdapter {
  const { rank, trainable } = options;
  if (name === LIVE_ADAPTER) {
    throw new Error(
      `site ${site.name}: "${LIVE_ADAPTER}" names the site's own adapter, not a pool one`,
    );
  }
  if ((site.pool ?? []).some((p) => p.name === name)) {
    throw new Error(`site ${site.name}: the pool already has an adapter "${name}"`);
  }
  const prefix = `${scopeOf(site)}${site.name}.pool.${name}`;
  const a = makeVariable(options.a, [rank, site.dIn], { name: `${prefix}.lora_a`, trainable });
  let b: Variable;
  try {
    b = makeVariable(options.b, [site.dOut, rank], { name: `${prefix}.lora_b`, trainable });
  } catch (err) {
    a.dispose();
    throw err;
  }
  const adapter: PoolAdapter = { name, a, b };
  site.pool = [...(site.pool ?? []), adapter];
  return adapter;
}

/**
 * Remove every pool adapter of `site` and free its variables.
 *
 * @example
 * ```ts ignore
 * clearPool(site); // site.pool is now empty
 * ```
 */
export function clearPool(site: LoraSite): void {
  for (const p of site.pool ?? []) tf.dispose([p.a, p.b]);
  site.pool = [];
}

/**
 * Re-initialise the live adapter like a fresh LoRA: A = `a` when given, else
 * U(±1/√dIn) from `rng`; B = 0.
 *
 * @example
 * ```ts ignore
 * resetLiveAdapter(site, { rng }); // a new adapter for the next task
 * ```
 */
export function resetLiveAdapter(site: LoraSite, options: { rng?: Rng; a?: Float32Array }): void {
  let a = options.a;
  if (!a) {
    if (!options.rng) throw new Error(`resetLiveAdapter ${site.name}: needs rng or a`);
    a = uniformArray(site.a.size, { rng: options.rng, bound: 1 / Math.sqrt(site.dIn) });
  }
  const values = a;
  tf.tidy(() => {
    site.a.assign(tf.tensor(values, site.a.shape, "float32"));
    site.b.assign(tf.zeros(site.b.shape));
  });
}

interface Frozen {
  site: string;
  name: string;
  rank: number;
  a: Float32Array;
  b: Float32Array;
}

/**
 * Frozen per-task adapters on a model's sites, with a JS copy for
 * checkpoints (`state()` must be synchronous).
 *
 * @example
 * ```ts ignore
 * const pool = new TaskAdapters();
 * await pool.freezeLive(sites, "task0"); // live A, B of every site → frozen pool adapter
 * pool.dispose();
 * ```
 */
export class TaskAdapters {
  #frozen: Frozen[] = [];
  #sites: LoraSite[] = [];
  #attached = 0;

  /** Number of frozen adapters per site (distinct names, e.g. finished tasks). */
  get count(): number {
    return new Set(this.#frozen.map((f) => f.name)).size;
  }

  /** Whether a frozen adapter called `name` exists (e.g. `task0`). */
  has(name: string): boolean {
    return this.#frozen.some((f) => f.name === name);
  }

  /** Put restored adapters that are not yet on the model into the sites' pools. */
  attach(sites: LoraSite[]): void {
    this.#sites = sites;
    for (; this.#attached < this.#frozen.length; this.#attached++) {
      const f = this.#frozen[this.#attached];
      const site = sites.find((s) => s.name === f.site);
      if (!site) throw new Error(`adapter pool: the model has no site ${f.site}`);
      addPoolAdapter(site, f.name, { rank: f.rank, a: f.a, b: f.b, trainable: false });
    }
  }

  /** Copy the live adapter of every site into a frozen pool adapter called `name`. */
  async freezeLive(sites: LoraSite[], name: string): Promise<void> {
    this.attach(sites);
    const values = await Promise.all(
      sites.map((s) => Promise.all([s.a.data(), s.b.data()]) as Promise<Float32Array[]>),
    );
    sites.forEach((s, i) => {
      const [a, b] = values[i];
      this.#frozen.push({ site: s.name, name, rank: s.a.shape[0], a, b });
    });
    this.attach(sites);
  }

  /** The frozen adapters as named arrays (`pool/<site>/<index>/<name>/a|b`). */
  arrays(): Record<string, { shape: number[]; data: Float32Array }> {
    const out: Record<string, { shape: number[]; data: Float32Array }> = {};
    this.#frozen.forEach((f, i) => {
      const key = `pool/${f.site}/${i}/${f.name}`;
      out[`${key}/a`] = { shape: [f.rank, f.a.length / f.rank], data: f.a };
      out[`${key}/b`] = { shape: [f.b.length / f.rank, f.rank], data: f.b };
    });
    return out;
  }

  /** Replace the JS copy by `arrays` (from {@link TaskAdapters.arrays}); the next `attach` adds them. */
  restore(arrays: Record<string, { shape: number[]; data: Float32Array }>): void {
    this.dispose();
    const keys = Object.keys(arrays).filter((k) => k.startsWith("pool/") && k.endsWith("/a"));
    const parsed = keys.map((k) => {
      const [, site, index, name] = k.split("/");
      return { k, site, index: Number(index), name };
    }).sort((x, y) => x.index - y.index);
    for (const p of parsed) {
      const a = arrays[p.k];
      const b = arrays[`${p.k.slice(0, -2)}/b`];
      if (!b) throw new Error(`adapter pool state: ${p.k} has no matching B`);
      this.#frozen.push({ site: p.site, name: p.name, rank: a.shape[0], a: a.data, b: b.data });
    }
  }

  /** Remove the pool adapters from the sites, free them and forget the JS copy. */
  dispose(): void {
    for (const s of this.#sites) clearPool(s);
    this.#sites = [];
    this.#attached = 0;
    this.#frozen = [];
  }
}
