/**
 * Pre-training of the decoder's base on a generic text corpus.
 *
 * No weights can be downloaded here, so the language-model track can
 * pre-train its own small base (like `pretrain.ts` does for the ViT): the
 * whole decoder, without LoRA, is trained on next-token prediction over the
 * caller's corpus, then frozen for every CL method.
 *
 * The corpus (`string[]`, one document per entry) is tokenised as
 * BOS + document + EOS per document and concatenated (GPT-style packing).
 * The last `heldOutFraction` of the documents is held out for the reported
 * loss. Each step draws `batchSize` windows of `seqLength` tokens at random
 * offsets of the training stream; every position counts in the loss (no
 * padding). Adam (0.9, 0.95), clip 1.0, linear warm-up then cosine decay to
 * 10 % of `lr`.
 *
 * The result is cached in `<cacheDir>/backbones/decoder-<hash>.safetensors`
 * (`backbone_cache.ts`), keyed by the architecture (LoRA settings excluded),
 * the tokenizer, the pre-training config and a hash of the corpus.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { hashJson } from "../data/synthetic_cache.ts";
import { createDecoder, type Decoder, type DecoderConfig } from "../models/decoder.ts";
import type { TensorData } from "../models/safetensors.ts";
import { Rng } from "../random.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import { backbonePath, cachedBackbone, readVariables } from "./backbone_cache.ts";
import { lmLoss } from "./lm_loss.ts";
import type { Progress } from "./progress.ts";
import { createAdam, optimizerStep } from "./step.ts";

/** Settings of decoder pre-training. */
export interface LmPretrainConfig {
  /** Seed of the initialisation and the window draws. */
  seed: number;
  /** Optimiser steps. */
  steps: number;
  /** Windows per step. */
  batchSize: number;
  /** Tokens per window (at most the stream length). */
  seqLength: number;
  /** Peak Adam learning rate. */
  lr: number;
  /** Steps of linear warm-up. */
  warmupSteps: number;
  /** Fraction of the documents (the last ones) held out for the reported loss; 0 = none. */
  heldOutFraction: number;
}

/** What pre-training reports (stored in the cache file's metadata). */
export interface LmPretrainReport {
  /** Mean training loss over the last 10 % of steps. */
  finalLoss: number;
  /** Mean next-token loss on the held-out documents (null when none are held out). */
  heldOutLoss: number | null;
  /** Tokens in the training stream. */
  trainStreamTokens: number;
  /** Tokens in the held-out stream. */
  heldOutTokens: number;
  /** Seconds spent pre-training (of the run that created the cache). */
  seconds: number;
}

/** A pre-trained decoder base: named weights plus provenance. */
export interface PretrainedDecoder {
  /** Base weights by Hugging Face name (no LoRA). */
  weights: Map<string, TensorData>;
  /** The cache file. */
  path: string;
  /** True when loaded from the cache. */
  cached: boolean;
  /** Losses and timing. */
  report: LmPretrainReport;
}

/** Options of {@link pretrainedDecoder}. */
export interface LmPretrainOptions {
  /** Documents to train on. */
  corpus: readonly string[];
  /** Tokenizer (its name and vocabulary size are part of the cache key). */
  tokenizer: Tokenizer;
  /** Schedule. */
  pretrain: LmPretrainConfig;
  /** Cache root; weights go to `<cacheDir>/backbones/`. */
  cacheDir: string;
  /** Progress line. */
  progress?: Progress;
}

function validate(p: LmPretrainConfig): void {
  for (const k of ["steps", "batchSize", "seqLength"] as const) {
    if (!Number.isInteger(p[k]) || p[k] < 1) {
      throw new Error(`LmPretrainConfig: ${k} must be an integer >= 1, got ${p[k]}`);
    }
  }
  if (!Number.isInteger(p.warmupSteps) || p.warmupSteps < 0) {
    throw new Error(`LmPretrainConfig: warmupSteps must be an integer >= 0, got ${p.warmupSteps}`);
  }
  if (!(p.lr > 0)) throw new Error(`LmPretrainConfig: lr must be > 0, got ${p.lr}`);
  if (!(p.heldOutFraction >= 0 && p.heldOutFraction < 1)) {
    throw new Error(
      `LmPretrainConfig: heldOutFraction must be in [0, 1), got ${p.heldOutFraction}`,
    );
  }
}

/**
 * The learning rate at `step`: linear warm-up to `lr`, then cosine decay to `lr / 10`.
 *
 * @example
 * ```ts
 * import { pretrainLearningRate } from "./lm_pretrain.ts";
 * pretrainLearningRate(0, { lr: 1e-3, warmupSteps: 10, steps: 100 }); // 1e-4
 * ```
 */
export function pretrainLearningRate(
  step: number,
  p: Pick<LmPretrainConfig, "lr" | "warmupSteps" | "steps">,
): number {
  if (step < p.warmupSteps) return (p.lr * (step + 1)) / p.warmupSteps;
  const span = Math.max(1, p.steps - p.warmupSteps);
  const progress = Math.min(1, (step - p.warmupSteps) / span);
  return p.lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/**
 * Pack documents into one token stream: BOS + tokens + EOS per document.
 *
 * @example
 * ```ts ignore
 * const stream = packDocuments(["ab", "c"], tokenizer); // [BOS, 97, 98, EOS, BOS, 99, EOS]
 * ```
 */
export function packDocuments(docs: readonly string[], tokenizer: Tokenizer): Int32Array {
  const out: number[] = [];
  for (const d of docs) out.push(tokenizer.bosId, ...tokenizer.encode(d), tokenizer.eosId);
  return Int32Array.from(out);
}

/**
 * Return pre-trained base weights for `config`, training and caching them on first use.
 *
 * @example
 * ```ts ignore
 * const pre = await pretrainedDecoder(DECODER_PRESETS["byte-tiny"], {
 *   corpus, tokenizer: new ByteTokenizer(), cacheDir: ".cache",
 *   pretrain: { seed: 0, steps: 2000, batchSize: 16, seqLength: 128, lr: 1e-3, warmupSteps: 100, heldOutFraction: 0.05 },
 * });
 * const lm = createDecoder(DECODER_PRESETS["byte-tiny"], { rng, weights: pre.weights });
 * ```
 */
export async function pretrainedDecoder(
  config: DecoderConfig,
  options: LmPretrainOptions,
): Promise<PretrainedDecoder> {
  validate(options.pretrain);
  const { lora: _lora, loraLayers: _layers, ...arch } = config;
  const key = {
    v: 1,
    arch,
    tokenizer: { name: options.tokenizer.name, vocabSize: options.tokenizer.vocabSize },
    pretrain: options.pretrain,
    corpus: await hashJson(options.corpus),
  };
  const path = await backbonePath(options.cacheDir, { kind: "decoder", key });
  return await cachedBackbone(path, {
    metadata: {
      format: "treelora-decoder-base",
      arch: JSON.stringify(arch),
      tokenizer: JSON.stringify(key.tokenizer),
      pretrain: JSON.stringify(options.pretrain),
      corpus: `${options.corpus.length} documents, sha256/64 ${key.corpus}`,
    },
    build: () => pretrain({ ...config, loraLayers: [] }, options),
  });
}

async function heldOutLoss(
  model: Decoder,
  stream: Int32Array,
  options: { seqLength: number; batchSize: number },
): Promise<number | null> {
  const len = Math.min(options.seqLength, stream.length);
  if (len < 2) return null;
  const windows: Int32Array[] = [];
  for (let s = 0; s + len <= stream.length && windows.length < 64; s += len) {
    windows.push(stream.subarray(s, s + len));
  }
  let sum = 0;
  let count = 0;
  for (let b = 0; b < windows.length; b += options.batchSize) {
    const chunk = windows.slice(b, b + options.batchSize);
    const ids = new Int32Array(chunk.length * len);
    chunk.forEach((w, i) => ids.set(w, i * len));
    const loss = tf.tidy(() =>
      lmLoss(
        model.logits(tf.tensor2d(ids, [chunk.length, len], "int32"), { training: false }),
        ids,
      )
    );
    const value = (await loss.data())[0];
    loss.dispose();
    const counted = chunk.length * (len - 1);
    sum += value * counted;
    count += counted;
  }
  return count > 0 ? sum / count : null;
}

async function pretrain(
  config: DecoderConfig,
  options: LmPretrainOptions,
): Promise<{ weights: Map<string, TensorData>; report: LmPretrainReport }> {
  const p = options.pretrain;
  const t0 = performance.now();
  const docs = options.corpus;
  const held = p.heldOutFraction > 0 && docs.length > 1
    ? Math.max(1, Math.round(docs.length * p.heldOutFraction))
    : 0;
  const train = packDocuments(docs.slice(0, docs.length - held), options.tokenizer);
  const test = packDocuments(docs.slice(docs.length - held), options.tokenizer);
  const len = Math.min(p.seqLength, train.length);
  if (len < 2) {
    throw new Error(`pretrainedDecoder: the training corpus has ${train.length} tokens; need >= 2`);
  }
  const rng = new Rng(p.seed);
  const model = createDecoder(config, { rng });
  model.setBaseTrainable(true);
  const variables = [...model.baseWeights().values()];
  const optimizer = createAdam({ lr: p.lr, beta1: 0.9, beta2: 0.95 });
  const losses: number[] = [];
  try {
    for (let step = 0; step < p.steps; step++) {
      // deno-lint-ignore no-explicit-any
      (optimizer as any).learningRate = pretrainLearningRate(step, p);
      const ids = new Int32Array(p.batchSize * len);
      for (let i = 0; i < p.batchSize; i++) {
        const start = rng.int(train.length - len + 1);
        ids.set(train.subarray(start, start + len), i * len);
      }
      const seed = rng.seed();
      const r = await optimizerStep(variables, () => {
        const x = tf.tensor2d(ids, [p.batchSize, len], "int32");
        return { total: lmLoss(model.logits(x, { training: true, seed }), ids), terms: {} };
      }, { optimizer, clipNorm: 1.0 });
      if (!Number.isFinite(r.total)) {
        throw new Error(`pretrainedDecoder: non-finite loss ${r.total} at step ${step + 1}`);
      }
      losses.push(r.total);
      const elapsed = (performance.now() - t0) / 1000;
      options.progress?.update({
        label: "lm-pretrain",
        task: 1,
        tasks: 1,
        epoch: 1,
        epochs: 1,
        step: step + 1,
        steps: p.steps,
        loss: r.total,
        // Progress's throughput field: windows per second here.
        imagesPerSecond: ((step + 1) * p.batchSize) / elapsed,
        unit: "seq",
        etaSeconds: (elapsed / (step + 1)) * (p.steps - step - 1),
      });
    }
    const tail = losses.slice(Math.floor(losses.length * 0.9));
    const report: LmPretrainReport = {
      finalLoss: tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length),
      heldOutLoss: await heldOutLoss(model, test, p),
      trainStreamTokens: train.length,
      heldOutTokens: test.length,
      seconds: (performance.now() - t0) / 1000,
    };
    return { weights: await readVariables(model.baseWeights()), report };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}
