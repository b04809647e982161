/**
 * Batched text generation with the decoder (and its LoRA adapter), spec §4.8.
 *
 * Prompts are tokenised as BOS + prompt (left-truncated, left-padded: see
 * `lm_batches.ts`), sorted by length and cut into batches so rows of similar
 * length share a batch (less padding), and generated until every row has
 * produced EOS or `maxNewTokens` tokens, and never past the model's context
 * length: a batch of prompt length T with an input prefix of P embeddings
 * generates at most `contextLength − T − P + 1` tokens (the last token is
 * never fed back). Only the new tokens are returned,
 * decoded with special tokens skipped; EOS ends a row and is not part of it.
 *
 * Decoding is greedy (argmax, lowest id on ties) unless `temperature > 0`,
 * in which case the next token is drawn from softmax(logits / temperature)
 * with the caller's seeded {@link Rng} (the released code samples at 0.1).
 *
 * By default each step runs only the new token against a key/value cache of
 * the earlier ones ({@link Decoder.extend}); `kvCache: false` recomputes the
 * whole sequence every step (the reference the cache is tested against).
 * Token choice happens in JavaScript on the read-back logits [B, V].
 *
 * **Input prefix** (prompt methods). `inputPrefix`, when given, is called once
 * per prompt batch with the batch's ids and mask and may return input
 * embeddings to put before the tokens ([P, dim] or [B, P, dim]; see
 * `Decoder.logits`). It is computed once from the prompt and kept for every
 * generated token: the cached loop runs it with the prompt only (its keys and
 * values stay in the cache), the recompute loop prepends it at every step.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { type Decoder, disposeKvCache, type KvCache } from "../models/decoder.ts";
import type { Rng } from "../random.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import { promptBatch } from "./lm_batches.ts";
import type { Tensor, Tensor2D } from "../tensor.ts";

/** Options of {@link generate} and {@link generateTokens}. */
export interface GenerateOptions {
  /** Turns prompts into ids and new ids back into text. */
  tokenizer: Tokenizer;
  /** Upper bound on new tokens per prompt (EOS excluded). */
  maxNewTokens: number;
  /** Prompt tokens kept, BOS included (left truncation). */
  maxPromptLength: number;
  /** Prompts per forward batch (default 16). */
  batchSize?: number;
  /** 0 or absent: greedy; > 0: sample from softmax(logits / temperature) with `rng`. */
  temperature?: number;
  /** Required when sampling. */
  rng?: Rng;
  /** Use the key/value cache (default true); false recomputes every step. */
  kvCache?: boolean;
  /** Prompt rows are padded to a multiple of this (default 8). */
  padMultiple?: number;
  /**
   * Input embeddings before each prompt batch's tokens (see the module doc): called with
   * the batch's int32 ids [B, T] and attention mask [B, T] (1 = BOS or prompt token); returns
   * [P, dim], [B, P, dim] or undefined (no prefix). Runs inside `tf.tidy`; the returned tensor
   * may be a variable (it is copied, never disposed).
   */
  inputPrefix?: (ids: Tensor2D, attentionMask: Tensor2D) => Tensor | undefined;
}

/** The batch's prefix (a copy the caller disposes), or undefined. */
function batchPrefix(
  batch: { ids: Int32Array; mask: Int32Array; shape: [number, number] },
  options: GenerateOptions,
): Tensor | undefined {
  const fn = options.inputPrefix;
  if (!fn) return undefined;
  return tf.tidy(() => {
    const p = fn(
      tf.tensor2d(batch.ids, batch.shape, "int32"),
      tf.tensor2d(batch.mask, batch.shape, "int32"),
    );
    return p === undefined ? undefined : tf.clone(p);
  });
}

/**
 * The next token of one row. Only ids the tokenizer can decode are candidates: a model's
 * embedding is often padded past the tokenizer's vocabulary (e.g. to a multiple of 8), and
 * those extra rows have no text.
 */
function pick(
  logits: Float32Array,
  row: number,
  options: { vocab: number; temperature: number; rng?: Rng; tokenizer: { vocabSize: number } },
): number {
  const { vocab, temperature } = options;
  const usable = Math.min(vocab, options.tokenizer.vocabSize);
  const off = row * vocab;
  let best = 0;
  for (let v = 1; v < usable; v++) if (logits[off + v] > logits[off + best]) best = v;
  if (!(temperature > 0)) return best;
  const max = logits[off + best];
  const weights = new Float64Array(usable);
  for (let v = 0; v < usable; v++) weights[v] = Math.exp((logits[off + v] - max) / temperature);
  return options.rng!.categorical(weights);
}

/**
 * Generate new token ids for every prompt (EOS excluded), in prompt order.
 *
 * @example
 * ```ts ignore
 * const ids = await generateTokens(model, ["2+2="], { tokenizer, maxNewTokens: 4, maxPromptLength: 64 });
 * ```
 */
export async function generateTokens(
  model: Decoder,
  prompts: readonly string[],
  options: GenerateOptions,
): Promise<number[][]> {
  const tok = options.tokenizer;
  const batchSize = options.batchSize ?? 16;
  const temperature = options.temperature ?? 0;
  if (!Number.isInteger(options.maxNewTokens) || options.maxNewTokens < 0) {
    throw new Error(`generate: maxNewTokens must be an integer >= 0, got ${options.maxNewTokens}`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`generate: batchSize must be an integer >= 1, got ${batchSize}`);
  }
  if (temperature > 0 && !options.rng) throw new Error("generate: sampling needs an rng");
  if (model.config.vocabSize < tok.vocabSize) {
    throw new Error(
      `generate: the tokenizer has ${tok.vocabSize} ids but the model only ${model.config.vocabSize}`,
    );
  }
  const results: number[][] = prompts.map(() => []);
  if (options.maxNewTokens === 0 || prompts.length === 0) return results;
  // Longest prompts first, so each batch holds similar lengths (stable for ties).
  const lengths = prompts.map((p) => tok.encode(p).length);
  const order = prompts.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b);
  for (let start = 0; start < order.length; start += batchSize) {
    const idx = order.slice(start, start + batchSize);
    const batch = promptBatch(idx.map((i) => prompts[i]), {
      tokenizer: tok,
      maxPromptLength: options.maxPromptLength,
      padMultiple: options.padMultiple,
    });
    const out = options.kvCache === false
      ? await recomputeLoop(model, batch, { ...options, temperature })
      : await cachedLoop(model, batch, { ...options, temperature });
    idx.forEach((i, r) => (results[i] = out[r]));
  }
  return results;
}

/**
 * Generate text for every prompt: the decoded new tokens (special tokens
 * skipped, EOS ends a row), in prompt order.
 *
 * @example
 * ```ts ignore
 * const answers = await generate(model, ["2+2="], { tokenizer, maxNewTokens: 4, maxPromptLength: 64 });
 * ```
 */
export async function generate(
  model: Decoder,
  prompts: readonly string[],
  options: GenerateOptions,
): Promise<string[]> {
  const ids = await generateTokens(model, prompts, options);
  return ids.map((row) => options.tokenizer.decode(row));
}

type LoopOptions = GenerateOptions & { temperature: number };

/** Record each row's pick; true when every row is finished. */
function advance(
  logits: Float32Array,
  state: { out: number[][]; done: boolean[]; next: Int32Array },
  options: LoopOptions & { vocab: number },
): boolean {
  const { out, done, next } = state;
  const eos = options.tokenizer.eosId;
  for (let r = 0; r < out.length; r++) {
    if (done[r]) {
      next[r] = eos;
      continue;
    }
    const id = pick(logits, r, options);
    next[r] = id;
    if (id === eos) done[r] = true;
    else {
      out[r].push(id);
      if (out[r].length >= options.maxNewTokens) done[r] = true;
    }
  }
  return done.every((d) => d);
}

async function cachedLoop(
  model: Decoder,
  batch: { ids: Int32Array; mask: Int32Array; shape: [number, number] },
  options: LoopOptions,
): Promise<number[][]> {
  const [b] = batch.shape;
  const vocab = model.config.vocabSize;
  const state = {
    out: Array.from({ length: b }, () => [] as number[]),
    done: new Array<boolean>(b).fill(false),
    next: new Int32Array(b),
  };
  let cache: KvCache | undefined;
  let logits: Tensor2D | undefined;
  try {
    const prefix = batchPrefix(batch, options);
    const limit = contextLimit(model, batch.shape[1], prefix, options.maxNewTokens);
    if (limit <= 0) {
      prefix?.dispose();
      return state.out;
    }
    options = { ...options, maxNewTokens: limit };
    const ids = tf.tensor2d(batch.ids, batch.shape, "int32");
    const mask = tf.tensor2d(batch.mask, batch.shape, "int32");
    try {
      ({ logits, cache } = model.extend(ids, { attentionMask: mask, prefix }));
    } finally {
      tf.dispose([ids, mask]);
      prefix?.dispose();
    }
    for (;;) {
      const values = await logits!.data() as Float32Array;
      logits!.dispose();
      logits = undefined;
      if (advance(values, state, { ...options, vocab })) break;
      const step = tf.tensor2d(state.next, [b, 1], "int32");
      const c: KvCache = cache!;
      cache = undefined; // extend consumes it
      try {
        ({ logits, cache } = model.extend(step, { cache: c }));
      } catch (err) {
        disposeKvCache(c);
        throw err;
      } finally {
        step.dispose();
      }
    }
  } finally {
    logits?.dispose();
    if (cache) disposeKvCache(cache);
  }
  return state.out;
}

/**
 * New tokens a batch may generate: `maxNewTokens`, but no position past the model's context
 * (prompt length `t` plus the prefix's embeddings plus the fed-back tokens).
 */
function contextLimit(model: Decoder, t: number, prefix: Tensor | undefined, max: number): number {
  const p = prefix ? prefix.shape[prefix.rank - 2] : 0;
  return Math.min(max, model.config.contextLength - t - p + 1);
}

async function recomputeLoop(
  model: Decoder,
  batch: { ids: Int32Array; mask: Int32Array; shape: [number, number] },
  options: LoopOptions,
): Promise<number[][]> {
  const [b, t0] = batch.shape;
  const vocab = model.config.vocabSize;
  const state = {
    out: Array.from({ length: b }, () => [] as number[]),
    done: new Array<boolean>(b).fill(false),
    next: new Int32Array(b),
  };
  const rows = Array.from(
    { length: b },
    (_, r) => Array.from(batch.ids.subarray(r * t0, (r + 1) * t0)),
  );
  const masks = Array.from(
    { length: b },
    (_, r) => Array.from(batch.mask.subarray(r * t0, (r + 1) * t0)),
  );
  const prefix = batchPrefix(batch, options);
  const limit = contextLimit(model, t0, prefix, options.maxNewTokens);
  if (limit <= 0) {
    prefix?.dispose();
    return state.out;
  }
  options = { ...options, maxNewTokens: limit };
  try {
    for (;;) {
      const t = rows[0].length;
      const logits = tf.tidy(() =>
        model.logits(tf.tensor2d(rows.flat(), [b, t], "int32"), {
          training: false,
          attentionMask: tf.tensor2d(masks.flat(), [b, t], "int32"),
          lastOnly: true,
          prefix,
        })
      );
      const values = await logits.data() as Float32Array;
      logits.dispose();
      if (advance(values, state, { ...options, vocab })) break;
      for (let r = 0; r < b; r++) {
        rows[r].push(state.next[r]);
        masks[r].push(1);
      }
    }
  } finally {
    prefix?.dispose();
  }
  return state.out;
}
