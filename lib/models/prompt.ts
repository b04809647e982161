/**
 * Prompt-method building blocks, model-agnostic: what a prompted forward pass
 * takes ({@link Prompts}: prompt-tuning tokens and per-block prefixes), the
 * key–query matching of L2P and DualPrompt (cosine similarity, top-N choice,
 * batch-wise choice), row selection by a one-hot matMul, the key-pull term,
 * and attention with a key/value prefix (prefix-tuning).
 *
 * Selection is done in JavaScript on the similarity values (read with
 * `dataSync`) and applied as a one-hot matMul, so the chosen rows stay
 * differentiable with respect to the pool and no gather is needed (the wasm
 * fast paths are plain matMuls; `layers.ts`).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Rng } from "../random.ts";
import { makeVariable } from "./init.ts";
import { multiHeadAttention } from "./layers.ts";
import type { Scalar, Tensor, Tensor2D, Tensor3D, Variable } from "../tensor.ts";

/** Key and value prefixes of one attention layer, each [B, P, dim] (post-projection space). */
export interface PrefixPrompt {
  /** Prepended to the keys (after the key projection). */
  key: Tensor3D;
  /** Prepended to the values (after the value projection). */
  value: Tensor3D;
}

/**
 * Prompts for one forward pass. Both parts are optional; a part with length 0
 * (or absent) changes nothing.
 */
export interface Prompts {
  /** Prompt-tuning tokens [B, P, dim] added to the input sequence (L2P). */
  tokens?: Tensor3D;
  /** Prefix-tuning: by 0-based block (layer) index, key/value prefixes (DualPrompt). */
  prefixes?: ReadonlyMap<number, PrefixPrompt>;
}

/**
 * Row-wise cosine similarity: a [n, d], b [m, d] → [n, m]. Rows are scaled by
 * 1/√max(‖x‖², 1e-12) (L2P's `l2_normalize`), so a zero row gives 0.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { cosineSimilarity } from "./prompt.ts";
 * const s = cosineSimilarity(tf.tensor2d([[1, 0]]), tf.tensor2d([[1, 1], [0, 2]])); // [[0.7071, 0]]
 * ```
 */
export function cosineSimilarity(a: Tensor2D, b: Tensor2D): Tensor2D {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[1]) {
    throw new Error(
      `cosineSimilarity: expected [n, d] and [m, d], got [${a.shape}] and [${b.shape}]`,
    );
  }
  return tf.tidy(() => {
    const unit = (x: Tensor2D) =>
      tf.mul(x, tf.rsqrt(tf.maximum(tf.sum(tf.square(x), 1, true), 1e-12))) as Tensor2D;
    return tf.matMul(unit(a), tf.transpose(unit(b)));
  });
}

/**
 * For each row of a row-major score matrix [rows, cols], the indices of its
 * `k` largest scores, best first (ties: the lower index). Only the first
 * `columns` columns are candidates when given (e.g. the prompts trained so far).
 * Returns [rows·k] indices.
 *
 * @example
 * ```ts
 * import { topKIndices } from "./prompt.ts";
 * topKIndices([0.1, 0.9, 0.5, 0.3, 0.2, 0.8], { rows: 2, cols: 3, k: 2 }); // [1, 2, 2, 0]
 * ```
 */
export function topKIndices(
  scores: ArrayLike<number>,
  options: { rows: number; cols: number; k: number; columns?: number },
): Int32Array {
  const { rows, cols, k } = options;
  const n = options.columns ?? cols;
  if (scores.length !== rows * cols) {
    throw new Error(`topKIndices: ${scores.length} scores for [${rows}, ${cols}]`);
  }
  if (!(Number.isInteger(k) && k >= 1 && Number.isInteger(n) && k <= n && n <= cols)) {
    throw new Error(`topKIndices: need 1 ≤ k (${k}) ≤ candidate columns (${n}) ≤ ${cols}`);
  }
  const out = new Int32Array(rows * k);
  const taken = new Uint8Array(n);
  for (let r = 0; r < rows; r++) {
    taken.fill(0);
    for (let j = 0; j < k; j++) {
      let best = -1;
      for (let c = 0; c < n; c++) {
        if (taken[c]) continue;
        if (best < 0 || scores[r * cols + c] > scores[r * cols + best]) best = c;
      }
      taken[best] = 1;
      out[r * k + j] = best;
    }
  }
  return out;
}

/**
 * Batch-wise choice (L2P's `batchwise_prompt`): the `k` indices chosen most
 * often over all rows of `indices` [rows·k] (ties: the lower index), given to
 * every row. Returns [rows·k].
 *
 * @example
 * ```ts
 * import { batchwiseIndices } from "./prompt.ts";
 * batchwiseIndices(new Int32Array([0, 1, 1, 2, 1, 3]), { rows: 3, k: 2 }); // [1, 0, 1, 0, 1, 0]
 * ```
 */
export function batchwiseIndices(
  indices: Int32Array,
  options: { rows: number; k: number },
): Int32Array {
  const { rows, k } = options;
  if (indices.length !== rows * k) {
    throw new Error(`batchwiseIndices: ${indices.length} indices for ${rows} rows × ${k}`);
  }
  const counts = new Map<number, number>();
  for (const i of indices) counts.set(i, (counts.get(i) ?? 0) + 1);
  const order = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]).map((e) => e[0]);
  const major = order.slice(0, k);
  const out = new Int32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) out[r * k + j] = major[j % major.length];
  }
  return out;
}

/**
 * Rows `indices` of `table` [m, ...rest] → [n, ...rest], as a one-hot [n, m]
 * matMul on the flattened table (differentiable with respect to `table`).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { selectRows } from "./prompt.ts";
 * const t = tf.tensor3d([[[1, 2]], [[3, 4]], [[5, 6]]]); // [3, 1, 2]
 * const s = selectRows(t, new Int32Array([2, 0])); // [[[5, 6]], [[1, 2]]]
 * ```
 */
export function selectRows<T extends Tensor>(table: T, indices: Int32Array): T {
  const m = table.shape[0];
  for (const i of indices) {
    if (!(i >= 0 && i < m)) throw new Error(`selectRows: index ${i} outside 0..${m - 1}`);
  }
  const rest = table.shape.slice(1);
  const width = rest.reduce((a, b) => a * b, 1);
  const hot = new Float32Array(indices.length * m);
  indices.forEach((i, r) => hot[r * m + i] = 1);
  return tf.tidy(() => {
    const oneHot = tf.tensor2d(hot, [indices.length, m]); // (tf.oneHot refuses m = 1)
    const flat = tf.reshape(table, [m, width]) as Tensor2D;
    return tf.reshape(tf.matMul(oneHot, flat), [indices.length, ...rest]) as T;
  });
}

/**
 * The key-pull term (1/B)·Σ_b Σ_j (1 − s[b, i_bj]) for a similarity matrix
 * s [B, M] and chosen indices [B·k]: the surrogate of L2P/DualPrompt's
 * `−reduce_sim` (their Σ s / B), shifted by k so that it is ≥ 0 and 0 when
 * every chosen key points along its query. Differentiable with respect to s.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { keyPullLoss } from "./prompt.ts";
 * const s = tf.tensor2d([[1, 0.5], [0, 0.25]]);
 * keyPullLoss(s, new Int32Array([0, 1]), { k: 1 }); // ((1 − 1) + (1 − 0.25)) / 2 = 0.375
 * ```
 */
export function keyPullLoss(
  similarity: Tensor2D,
  indices: Int32Array,
  options: { k: number },
): Scalar {
  const [b, m] = similarity.shape;
  const k = options.k;
  if (indices.length !== b * k) {
    throw new Error(`keyPullLoss: ${indices.length} indices for ${b} rows × ${k}`);
  }
  const mask = new Float32Array(b * m);
  for (let r = 0; r < b; r++) {
    for (let j = 0; j < k; j++) mask[r * m + indices[r * k + j]] += 1;
  }
  return tf.tidy(() => {
    const chosen = tf.sum(tf.mul(similarity, tf.tensor2d(mask, [b, m])));
    return tf.sub(k, tf.div(chosen, b)) as Scalar;
  });
}

/**
 * A float32 variable of uniform draws in [low, high) (the prompt and key
 * initialisation of L2P, U[0, 1), and DualPrompt, U[−1, 1)).
 *
 * @example
 * ```ts
 * import { Rng } from "../random.ts";
 * import { uniformVariable } from "./prompt.ts";
 * const v = uniformVariable([30, 64], { rng: new Rng(0), low: 0, high: 1, name: "l2p0/keys" });
 * v.dispose();
 * ```
 */
export function uniformVariable(
  shape: number[],
  options: { rng: Rng; low: number; high: number; name: string; trainable?: boolean },
): Variable {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = options.rng.uniform(options.low, options.high);
  return makeVariable(data, shape, { name: options.name, trainable: options.trainable ?? true });
}

/**
 * Multi-head attention with a key/value prefix (prefix-tuning): q, k, v are
 * rows [B·T, dim] as in {@link multiHeadAttention}; `prefix.key` and
 * `prefix.value` [B, P, dim] are prepended to each sequence's keys and values
 * (they do not pass through the projections), so each query attends over
 * P + T positions. With `causal`, query t sees every prefix position and the
 * tokens ≤ t. With P = 0 this is exactly {@link multiHeadAttention}.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { prefixAttention } from "./prompt.ts";
 * const x = tf.randomNormal([2 * 5, 8]) as tf.Tensor2D;
 * const p = tf.zeros([2, 3, 8]) as tf.Tensor3D;
 * const y = prefixAttention({ q: x, k: x, v: x }, { key: p, value: p }, {
 *   batch: 2,
 *   tokens: 5,
 *   heads: 2,
 * }); // [10, 8]
 * ```
 */
export function prefixAttention(
  qkv: { q: Tensor2D; k: Tensor2D; v: Tensor2D },
  prefix: PrefixPrompt,
  options: { batch: number; tokens: number; heads: number; causal?: boolean },
): Tensor2D {
  const { q, k, v } = qkv;
  const { batch: b, tokens: t, heads: h } = options;
  const dim = q.shape[1];
  const p = prefix.key.shape[1];
  for (const [name, x] of [["key", prefix.key], ["value", prefix.value]] as const) {
    if (x.rank !== 3 || x.shape[0] !== b || x.shape[1] !== p || x.shape[2] !== dim) {
      throw new Error(
        `prefixAttention: expected ${name} prefix [${b}, ${p}, ${dim}], got [${x.shape}]`,
      );
    }
  }
  if (p === 0) return multiHeadAttention(qkv, options);
  if (dim % h !== 0) throw new Error(`attention: width ${dim} is not divisible by ${h} heads`);
  if (q.shape[0] !== b * t) {
    throw new Error(`attention: expected ${b}·${t} rows, got q [${q.shape}]`);
  }
  const dh = dim / h;
  return tf.tidy(() => {
    // [B, n, dim] → [B, H, n, dh] → [B·H, n, dh]
    const heads = (x: Tensor, n: number) =>
      tf.reshape(tf.transpose(tf.reshape(x, [b, n, h, dh]), [0, 2, 1, 3]), [b * h, n, dh]);
    const qh = tf.mul(heads(q, t), 1 / Math.sqrt(dh)) as Tensor3D;
    const keys = tf.concat([heads(prefix.key, p), heads(k, t)], 1); // [B·H, P+T, dh]
    const vals = tf.concat([heads(prefix.value, p), heads(v, t)], 1) as Tensor3D;
    let scores: Tensor3D = tf.matMul(qh, tf.transpose(keys, [0, 2, 1]) as Tensor3D);
    if (options.causal) {
      const allowed = tf.concat([tf.ones([t, p]), tf.linalg.bandPart(tf.ones([t, t]), -1, 0)], 1);
      scores = tf.add(scores, tf.mul(tf.sub(1, allowed), -1e9));
    }
    const out = tf.matMul(tf.softmax(scores, -1), vals); // [B·H, T, dh]
    return tf.reshape(tf.transpose(tf.reshape(out, [b, h, t, dh]), [0, 2, 1, 3]), [b * t, dim]);
  });
}
