/**
 * The levels of TreeLoRA's tree: which LoRA sites one level (one row of the
 * M×D signature, one bandit arm set, one regulariser term) stands for.
 *
 * ```
 * "site"   one level per LoRA site, in site order (the released code: one per module)
 * "block"  one level per transformer block: the block's sites, their flattened A values
 *          concatenated in site order (the paper's ViT "tree depth 5": blocks 0–4, with a
 *          block's k and v pooled into one signature)
 * ```
 *
 * A block is the site name's first `<word>.<index>` prefix: `blocks.3.attn.k` → `blocks.3`,
 * `layers.0.attn.q` → `layers.0`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { TreeLevels } from "./options.ts";
import type { Tensor } from "../../tensor.ts";

/** One tree level: a name and the indices of its sites in the model's site order. */
export interface TreeLevel {
  /** The site name (`"site"`) or the block prefix (`"block"`). */
  name: string;
  /** Indices into the model's LoRA sites, ascending. */
  sites: number[];
}

/**
 * The block a site belongs to: the first `<word>.<index>` of its name.
 *
 * @example
 * ```ts
 * import { siteBlock } from "./levels.ts";
 * siteBlock("blocks.3.attn.k"); // "blocks.3"
 * ```
 */
export function siteBlock(siteName: string): string {
  const m = /^([A-Za-z_]+\.\d+)\./.exec(siteName);
  if (!m) {
    throw new Error(
      `TreeLoRA levels "block": site "${siteName}" has no block prefix (expected e.g. blocks.3.attn.k)`,
    );
  }
  return m[1];
}

/**
 * Group sites into tree levels, in order of first appearance. Every level must hold the same
 * number of A values (`sizes`: each site's A size), since the signatures stack into an M×D
 * matrix; the error names the first level that differs.
 *
 * @example
 * ```ts
 * import { treeLevels } from "./levels.ts";
 * const names = ["blocks.0.attn.k", "blocks.0.attn.v", "blocks.1.attn.k", "blocks.1.attn.v"];
 * treeLevels(names, { levels: "block", sizes: [4, 4, 4, 4] });
 * // [{ name: "blocks.0", sites: [0, 1] }, { name: "blocks.1", sites: [2, 3] }]
 * ```
 */
export function treeLevels(
  siteNames: readonly string[],
  options: { levels: TreeLevels; sizes: readonly number[] },
): TreeLevel[] {
  if (siteNames.length === 0) throw new Error("TreeLoRA: the model has no LoRA sites");
  let out: TreeLevel[];
  if (options.levels === "site") {
    out = siteNames.map((name, i) => ({ name, sites: [i] }));
  } else {
    const byBlock = new Map<string, number[]>();
    siteNames.forEach((name, i) => {
      const b = siteBlock(name);
      byBlock.set(b, [...(byBlock.get(b) ?? []), i]);
    });
    out = [...byBlock].map(([name, sites]) => ({ name, sites }));
  }
  const size = (l: TreeLevel) => l.sites.reduce((a, i) => a + options.sizes[i], 0);
  const dim = size(out[0]);
  for (const l of out) {
    if (size(l) !== dim) {
      throw new Error(
        `treelora: every tree level must have the same number of A values (level ${out[0].name} ` +
          `has ${dim}, level ${l.name} has ${size(l)}); the tree stacks them into an M×D matrix`,
      );
    }
  }
  return out;
}

/**
 * Concatenate per-site flat arrays into one array per level (the level's sites in order).
 *
 * @example
 * ```ts
 * import { levelValues } from "./levels.ts";
 * levelValues([Float32Array.of(1), Float32Array.of(2)], [{ name: "b", sites: [0, 1] }]);
 * // [Float32Array [1, 2]]
 * ```
 */
export function levelValues(
  perSite: readonly Float32Array[],
  levels: readonly TreeLevel[],
): Float32Array[] {
  return levels.map((l) => {
    if (l.sites.length === 1) return perSite[l.sites[0]];
    const n = l.sites.reduce((a, i) => a + perSite[i].length, 0);
    const out = new Float32Array(n);
    let o = 0;
    for (const i of l.sites) {
      out.set(perSite[i], o);
      o += perSite[i].length;
    }
    return out;
  });
}

/**
 * The tensors the regulariser sees, one per level: a single site's A as it is, or the level's
 * A matrices flattened and concatenated (differentiable; call inside the tape). With
 * `initial` (per level, the values at task start), each tensor is A − A_init.
 *
 * @example
 * ```ts ignore
 * const live = levelTensors(sites.map((s) => s.a), levels, { initial: null });
 * ```
 */
export function levelTensors(
  aPerSite: readonly Tensor[],
  levels: readonly TreeLevel[],
  options: { initial: readonly Float32Array[] | null },
): Tensor[] {
  return levels.map((l, d) => {
    const a = l.sites.length === 1
      ? aPerSite[l.sites[0]]
      : tf.concat(l.sites.map((i) => tf.reshape(aPerSite[i], [-1])), 0);
    if (options.initial === null) return a;
    return tf.sub(a, tf.tensor(options.initial[d], a.shape, "float32"));
  });
}
