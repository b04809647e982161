/**
 * Training-step benchmarks of the standard configurations, and the PyTorch
 * peer that runs the same models (`deno task bench`, issue 9).
 *
 * Read top to bottom:
 *
 * - statistics and formatting ({@link median}, {@link ratio});
 * - the standard configurations: a {@link BenchSpec} holds everything both
 *   sides need (the harness's model config, batch, mode, optimiser), built by
 *   {@link standardSpecs};
 * - the TensorFlow.js side: {@link timeTfjsSteps} builds the harness model and
 *   times `optimizerStep` (Adam, clipping) on synthetic inputs;
 * - the PyTorch side: {@link probeTorch} and {@link runTorchPeer} run
 *   `experiments/torch_peer.py` as a child process with the same spec (JSON),
 *   and {@link parseTorchPeerOutput} / {@link compareParamCounts} check what it
 *   printed (parameter-count parity with the harness's model);
 * - the report: {@link summarizeRows} and {@link stepTable}.
 *
 * Modes: `lora` trains the LoRA matrices (plus the ViT head), as the
 * continual-learning trainers do; `full` trains every base weight (plus the
 * ViT head), as the harness's pre-training does. The LoRA branches stay in the
 * forward pass in both.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { LoraConfig } from "../models/backbone.ts";
import { createDecoder, DECODER_PRESETS, type DecoderConfig } from "../models/decoder.ts";
import { VIT_PRESETS, type VitConfig } from "../models/vit.ts";
import { createVitClassifier } from "../models/vit_classifier.ts";
import { Rng } from "../random.ts";
import { lmLoss } from "../train/lm_loss.ts";
import { createAdam, optimizerStep } from "../train/step.ts";

// ---------------------------------------------------------------------------
// Statistics and formatting

/**
 * The median of a non-empty list (the mean of the two middle values for an even length).
 *
 * @example
 * ```ts
 * import { median } from "./bench.ts";
 * median([3, 1, 2]); // 2
 * median([4, 1, 2, 3]); // 2.5
 * ```
 */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error("median: empty list");
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * `a / b` rounded to 2 decimals, or null when either side is missing or b is not positive.
 *
 * @example
 * ```ts
 * import { ratio } from "./bench.ts";
 * ratio(150, 100); // 1.5
 * ratio(150, null); // null
 * ```
 */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || !(b > 0) || !Number.isFinite(a)) return null;
  return Math.round((a / b) * 100) / 100;
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

// ---------------------------------------------------------------------------
// Standard configurations

/** Which parameters train: the LoRA matrices (+ head), or every base weight (+ head). */
export type BenchMode = "lora" | "full";

/** Optimiser settings shared by both sides. */
export interface BenchOptimizer {
  /** Adam learning rate. */
  lr: number;
  /** Adam β₁. */
  beta1: number;
  /** Adam β₂. */
  beta2: number;
  /** Global-norm gradient clipping (0 = off). */
  clipNorm: number;
}

/** A ViT classifier configuration (images [batch, size, size, 3], `numClasses` outputs). */
export interface VitBenchSpec extends BenchOptimizer {
  /** Discriminant. */
  model: "vit";
  /** Display name, e.g. `vit tiny-p8`. */
  name: string;
  /** The harness's ViT config (preset plus LoRA), passed verbatim to the peer. */
  config: VitConfig;
  /** Classifier outputs. */
  numClasses: number;
  /** Images per step. */
  batch: number;
  /** Trainable set. */
  mode: BenchMode;
}

/** A decoder LM configuration (ids [batch, seqLength], next-token loss). */
export interface LmBenchSpec extends BenchOptimizer {
  /** Discriminant. */
  model: "lm";
  /** Display name, e.g. `lm byte-tiny`. */
  name: string;
  /** The harness's decoder config (preset plus LoRA), passed verbatim to the peer. */
  config: DecoderConfig;
  /** Sequences per step. */
  batch: number;
  /** Tokens per sequence. */
  seqLength: number;
  /** Trainable set. */
  mode: BenchMode;
}

/** One benchmarked configuration. */
export type BenchSpec = VitBenchSpec | LmBenchSpec;

/** The standard configuration names: ViT presets and decoder presets. */
export const STANDARD_CONFIGS: readonly string[] = ["tiny-p8", "tiny", "small", "byte-tiny"];

/** Settings of {@link standardSpecs}: the harness's training settings of each track. */
export interface StandardSpecOptions {
  /** ViT LoRA (split-cifar's). */
  vitLora: LoraConfig;
  /** ViT batch size. */
  vitBatch: number;
  /** ViT classifier outputs (100 for CIFAR-100). */
  numClasses: number;
  /** ViT optimiser. */
  vitOptimizer: BenchOptimizer;
  /** LM LoRA (trace's). */
  lmLora: LoraConfig;
  /** LM batch size. */
  lmBatch: number;
  /** LM sequence length. */
  lmSeqLength: number;
  /** LM optimiser. */
  lmOptimizer: BenchOptimizer;
}

/**
 * Specs for configuration names × modes, in that order. A name is a ViT preset
 * (`tiny-p8`, `tiny`, `small`, …) or a decoder preset (`byte-tiny`, …).
 *
 * @example
 * ```ts
 * import { standardSpecs } from "./bench.ts";
 * const opt = { lr: 1e-3, beta1: 0.9, beta2: 0.999, clipNorm: 1 };
 * const lora = { rank: 8, alpha: 32, dropout: 0.1 };
 * const specs = standardSpecs(["tiny-p8", "byte-tiny"], ["lora", "full"], {
 *   vitLora: lora, vitBatch: 32, numClasses: 100, vitOptimizer: opt,
 *   lmLora: lora, lmBatch: 8, lmSeqLength: 128, lmOptimizer: { ...opt, beta2: 0.95 },
 * });
 * specs.length; // 4
 * ```
 */
export function standardSpecs(
  names: readonly string[],
  modes: readonly BenchMode[],
  options: StandardSpecOptions,
): BenchSpec[] {
  const out: BenchSpec[] = [];
  for (const name of names) {
    for (const mode of modes) {
      if (mode !== "lora" && mode !== "full") {
        throw new Error(`bench: unknown mode "${mode}" (lora, full)`);
      }
      if (VIT_PRESETS[name]) {
        const base = VIT_PRESETS[name];
        out.push({
          model: "vit",
          name: `vit ${name}`,
          config: {
            ...base,
            lora: { ...options.vitLora },
            loraBlocks: [...base.loraBlocks],
          },
          numClasses: options.numClasses,
          batch: options.vitBatch,
          mode,
          ...options.vitOptimizer,
        });
      } else if (DECODER_PRESETS[name]) {
        out.push({
          model: "lm",
          name: `lm ${name}`,
          config: { ...DECODER_PRESETS[name], lora: { ...options.lmLora } },
          batch: options.lmBatch,
          seqLength: options.lmSeqLength,
          mode,
          ...options.lmOptimizer,
        });
      } else {
        throw new Error(
          `bench: unknown configuration "${name}"; ViT presets: ${
            Object.keys(VIT_PRESETS).join(", ")
          }; decoder presets: ${Object.keys(DECODER_PRESETS).join(", ")}`,
        );
      }
    }
  }
  return out;
}

/** The key of a spec in tables: `<name> <mode>`. */
export function specKey(spec: Pick<BenchSpec, "name" | "mode">): string {
  return `${spec.name} ${spec.mode}`;
}

/** Samples (images or sequences) per step, and the unit. */
export function samplesPerStep(spec: BenchSpec): { samples: number; unit: string } {
  return spec.model === "vit"
    ? { samples: spec.batch, unit: "img" }
    : { samples: spec.batch, unit: `seq of ${spec.seqLength} tokens` };
}

// ---------------------------------------------------------------------------
// Parameter counts

/** Parameter counts by role. */
export interface ParamCounts {
  /** Base (non-LoRA, non-head) weights; includes the LM head. */
  base: number;
  /** LoRA A and B matrices. */
  lora: number;
  /** The ViT classifier head (0 for the LM). */
  head: number;
  /** base + lora + head. */
  total: number;
  /** Parameters the optimiser updates in this mode. */
  trainable: number;
}

const COUNT_KEYS = ["base", "lora", "head", "total", "trainable"] as const;

/**
 * Differences between the harness's and the peer's parameter counts, one
 * line per differing role; empty when they agree exactly.
 *
 * @example
 * ```ts
 * import { compareParamCounts } from "./bench.ts";
 * const a = { base: 10, lora: 2, head: 1, total: 13, trainable: 3 };
 * compareParamCounts(a, { ...a }); // []
 * compareParamCounts(a, { ...a, lora: 4, total: 15 }); // ["lora: tfjs 2, torch 4", "total: tfjs 13, torch 15"]
 * ```
 */
export function compareParamCounts(tfjs: ParamCounts, torch: ParamCounts): string[] {
  return COUNT_KEYS.filter((k) => tfjs[k] !== torch[k]).map((k) =>
    `${k}: tfjs ${tfjs[k]}, torch ${torch[k]}`
  );
}

// ---------------------------------------------------------------------------
// The TensorFlow.js side

/** What {@link timeTfjsSteps} measured. */
export interface TfjsTiming {
  /** ms of each timed step (after warm-up). */
  msPerStep: number[];
  /** Parameter counts of the model as built. */
  params: ParamCounts;
  /** Peak tensor bytes during one extra profiled step (`tf.profile`), when asked for. */
  peakTensorBytes?: number;
  /** Tensors alive after the steps minus before building the model (0 = no leak). */
  leakedTensors: number;
  /** Loss of the first and last step (a sanity check that training moves). */
  loss: { first: number; last: number };
}

/**
 * Build the harness model of `spec` (seed 0), then run `warmup` + `steps`
 * optimiser steps (Adam, clipping, LoRA dropout on) on a fixed synthetic
 * batch, timing each of the last `steps`; optionally one more step under
 * `tf.profile` for its peak tensor memory. The batch tensors are made inside
 * each step from typed arrays, as the trainers do. Everything is disposed,
 * and the tensors left over are counted.
 *
 * @example
 * ```ts ignore
 * const t = await timeTfjsSteps(spec, { steps: 5, warmup: 2, profile: true });
 * ```
 */
export async function timeTfjsSteps(
  spec: BenchSpec,
  options: { steps: number; warmup: number; profile?: boolean },
): Promise<TfjsTiming> {
  const before = tf.memory().numTensors;
  const t = await runTfjsSteps(spec, options);
  return { ...t, leakedTensors: tf.memory().numTensors - before };
}

async function runTfjsSteps(
  spec: BenchSpec,
  options: { steps: number; warmup: number; profile?: boolean },
): Promise<Omit<TfjsTiming, "leakedTensors">> {
  const rng = new Rng(0);
  const built = buildTfjs(spec, rng);
  const optimizer = createAdam({ lr: spec.lr, beta1: spec.beta1, beta2: spec.beta2 });
  try {
    const step = () =>
      optimizerStep(built.variables, () => ({ total: built.loss(rng.seed()), terms: {} }), {
        optimizer,
        clipNorm: spec.clipNorm,
      });
    const losses: number[] = [];
    for (let i = 0; i < options.warmup; i++) losses.push((await step()).total);
    const ms: number[] = [];
    for (let i = 0; i < options.steps; i++) {
      const t0 = performance.now();
      const r = await step();
      ms.push(performance.now() - t0);
      losses.push(r.total);
    }
    let peakTensorBytes: number | undefined;
    if (options.profile) {
      const info = await tf.profile(async () => {
        await step();
      });
      peakTensorBytes = info.peakBytes;
    }
    return {
      msPerStep: ms,
      params: built.params,
      ...(peakTensorBytes !== undefined ? { peakTensorBytes } : {}),
      loss: { first: losses[0] ?? NaN, last: losses[losses.length - 1] ?? NaN },
    };
  } finally {
    optimizer.dispose();
    built.dispose();
  }
}

interface BuiltTfjs {
  variables: tf.Variable[];
  params: ParamCounts;
  loss(seed: number): tf.Scalar;
  dispose(): void;
}

function sizeOf(vars: tf.Variable[]): number {
  return vars.reduce((a, v) => a + v.size, 0);
}

function buildTfjs(spec: BenchSpec, rng: Rng): BuiltTfjs {
  const dataRng = new Rng(1);
  if (spec.model === "vit") {
    const c = spec.config;
    const model = createVitClassifier(c, { numOutputs: spec.numClasses, rng });
    const lora = model.loraSites().flatMap((s) => [s.a, s.b]);
    const head = model.headVariables();
    const base = [...model.vit.baseWeights().values()];
    if (spec.mode === "full") model.vit.setBaseTrainable(true);
    const variables = spec.mode === "lora" ? [...lora, ...head] : [...base, ...head];
    const n = spec.batch * c.imageSize * c.imageSize * c.channels;
    const x = Float32Array.from({ length: n }, () => dataRng.normal());
    const y = Int32Array.from({ length: spec.batch }, () => dataRng.int(spec.numClasses));
    const counts = { base: sizeOf(base), lora: sizeOf(lora), head: sizeOf(head) };
    return {
      variables,
      params: {
        ...counts,
        total: counts.base + counts.lora + counts.head,
        trainable: sizeOf(variables),
      },
      loss: (seed) => {
        const images = tf.tensor4d(x, [spec.batch, c.imageSize, c.imageSize, c.channels]);
        const logits = model.logits(images, { training: true, seed });
        const onehot = tf.oneHot(tf.tensor1d(y, "int32"), spec.numClasses);
        return tf.losses.softmaxCrossEntropy(onehot, logits) as tf.Scalar;
      },
      dispose: () => model.dispose(),
    };
  }
  const c = spec.config;
  const model = createDecoder(c, { rng });
  const lora = model.loraSites().flatMap((s) => [s.a, s.b]);
  const base = [...model.baseWeights().values()];
  if (spec.mode === "full") model.setBaseTrainable(true);
  const variables = spec.mode === "lora" ? lora : base;
  const ids = Int32Array.from(
    { length: spec.batch * spec.seqLength },
    () => dataRng.int(c.vocabSize),
  );
  const counts = { base: sizeOf(base), lora: sizeOf(lora), head: 0 };
  return {
    variables,
    params: { ...counts, total: counts.base + counts.lora, trainable: sizeOf(variables) },
    loss: (seed) => {
      const t = tf.tensor2d(ids, [spec.batch, spec.seqLength], "int32");
      return lmLoss(model.logits(t, { training: true, seed }), ids);
    },
    dispose: () => model.dispose(),
  };
}

// ---------------------------------------------------------------------------
// The PyTorch side

/** torch and BLAS of the peer, as `torch_peer.py` reports them. */
export interface TorchRuntime {
  /** `torch.__version__`. */
  torch: string;
  /** Python version. */
  python: string;
  /** The interpreter. */
  executable: string;
  /** `torch.get_num_threads()`. */
  threads: number;
  /** `torch.get_num_interop_threads()`. */
  interopThreads: number;
  /** BLAS: torch's build setting, the libraries mapped, OpenBLAS threads and config. */
  blas: Record<string, unknown>;
  /** RSS right after `import torch` (MiB; probe only): the floor of the peer's peak RSS. */
  rssAfterImportMiB?: number;
}

/** One run of the peer. */
export interface TorchPeerResult extends TorchRuntime {
  /** Parameter counts of the torch model. */
  params: ParamCounts;
  /** ms of each timed step. */
  msPerStep: number[];
  /** Their median. */
  medianMs: number;
  /** Samples per second at the median. */
  samplesPerSecond: number;
  /** RSS after building the model and optimiser (MiB). */
  rssAfterBuildMiB: number;
  /** Peak RSS of the peer process (MiB). */
  peakRssMiB: number;
  /** First and last loss. */
  loss: { first: number; last: number };
}

function lastJsonObject(stdout: string): Record<string, unknown> {
  const lines = stdout.split("\n").map((l) => l.trim()).filter((l) => l.startsWith("{"));
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const v = JSON.parse(lines[i]);
      if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch { /* not this line */ }
  }
  throw new Error(
    `torch peer: no JSON object in its output: ${JSON.stringify(stdout.slice(-300))}`,
  );
}

function need<T>(o: Record<string, unknown>, key: string, type: string): T {
  const v = o[key];
  const ok = type === "array" ? Array.isArray(v) : typeof v === type && v !== null;
  if (!ok) throw new Error(`torch peer: field "${key}" missing or not ${type}`);
  return v as T;
}

function parseRuntime(o: Record<string, unknown>): TorchRuntime {
  return {
    torch: need<string>(o, "torch", "string"),
    python: need<string>(o, "python", "string"),
    executable: need<string>(o, "executable", "string"),
    threads: need<number>(o, "threads", "number"),
    interopThreads: need<number>(o, "interopThreads", "number"),
    blas: need<Record<string, unknown>>(o, "blas", "object"),
  };
}

/**
 * Parse and check the JSON line `torch_peer.py --probe` printed. Throws the
 * peer's own error when it reports `ok: false`.
 *
 * @example
 * ```ts
 * import { parseTorchProbe } from "./bench.ts";
 * const r = parseTorchProbe(
 *   '{"ok": true, "torch": "1.13.0", "python": "3.11.2", "executable": "/usr/bin/python3", ' +
 *     '"threads": 1, "interopThreads": 1, "blas": {}}',
 * );
 * r.torch; // "1.13.0"
 * ```
 */
export function parseTorchProbe(stdout: string): TorchRuntime {
  const o = lastJsonObject(stdout);
  if (o.ok !== true) throw new Error(`torch peer: ${String(o.error ?? "reported failure")}`);
  const rt = parseRuntime(o);
  return typeof o.rssAfterImportMiB === "number"
    ? { ...rt, rssAfterImportMiB: o.rssAfterImportMiB }
    : rt;
}

/**
 * Parse and check the JSON line of a `torch_peer.py --spec` run: runtime info,
 * parameter counts (every role an integer), per-step times and memory.
 * Throws the peer's own error when it reports `ok: false`.
 *
 * @example
 * ```ts ignore
 * const r = parseTorchPeerOutput(stdout);
 * console.log(r.medianMs, r.params.trainable);
 * ```
 */
export function parseTorchPeerOutput(stdout: string): TorchPeerResult {
  const o = lastJsonObject(stdout);
  if (o.ok !== true) throw new Error(`torch peer: ${String(o.error ?? "reported failure")}`);
  const p = need<Record<string, unknown>>(o, "params", "object");
  const params = {} as ParamCounts;
  for (const k of COUNT_KEYS) {
    const v = p[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      throw new Error(`torch peer: params.${k} missing or not a count (${JSON.stringify(v)})`);
    }
    params[k] = v;
  }
  const ms = need<unknown[]>(o, "msPerStep", "array");
  if (ms.length === 0 || !ms.every((x) => typeof x === "number" && x > 0)) {
    throw new Error(`torch peer: msPerStep must be a non-empty list of positive numbers`);
  }
  const loss = need<Record<string, unknown>>(o, "loss", "object");
  return {
    ...parseRuntime(o),
    params,
    msPerStep: ms as number[],
    medianMs: need<number>(o, "medianMs", "number"),
    samplesPerSecond: need<number>(o, "samplesPerSecond", "number"),
    rssAfterBuildMiB: need<number>(o, "rssAfterBuildMiB", "number"),
    peakRssMiB: need<number>(o, "peakRssMiB", "number"),
    loss: { first: Number(loss.first), last: Number(loss.last) },
  };
}

/** Where the peer script is. */
export const TORCH_PEER_SCRIPT: string =
  new URL("../../experiments/torch_peer.py", import.meta.url).pathname;

async function runPython(python: string, args: string[]): Promise<{ code: number; out: string }> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(python, {
      args,
      stdout: "piped",
      stderr: "piped",
      env: { PYTHONUNBUFFERED: "1" },
    }).output();
  } catch (err) {
    throw new Error(`cannot run ${python}: ${(err as Error).message}`);
  }
  const out = new TextDecoder().decode(output.stdout);
  if (output.code !== 0) {
    const err = new TextDecoder().decode(output.stderr).trim().split("\n").slice(-3).join(" | ");
    let reported = "";
    try {
      const o = lastJsonObject(out);
      if (typeof o.error === "string") reported = o.error;
    } catch { /* no JSON */ }
    throw new Error(
      `${python} ${args[0]} exited with code ${output.code}: ${reported || err || "no output"}`,
    );
  }
  return { code: output.code, out };
}

/**
 * Whether `python` can run the peer: `{ ok: true, runtime }` when it imports
 * torch, otherwise `{ ok: false, reason }` (never throws).
 *
 * @example
 * ```ts ignore
 * const p = await probeTorch("/usr/bin/python3");
 * if (!p.ok) console.log(`no PyTorch peer: ${p.reason}`);
 * ```
 */
export async function probeTorch(
  python: string,
  options: { threads?: number } = {},
): Promise<{ ok: true; runtime: TorchRuntime } | { ok: false; reason: string }> {
  try {
    const { out } = await runPython(python, [
      TORCH_PEER_SCRIPT,
      "--probe",
      "--threads",
      String(options.threads ?? 1),
    ]);
    return { ok: true, runtime: parseTorchProbe(out) };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/**
 * Run the peer on `spec` (same model config, batch, mode and optimiser) in a
 * fresh process: `warmup` untimed and `steps` timed steps.
 *
 * @example
 * ```ts ignore
 * const r = await runTorchPeer("/usr/bin/python3", spec, { steps: 5, warmup: 2 });
 * ```
 */
export async function runTorchPeer(
  python: string,
  spec: BenchSpec,
  options: { steps: number; warmup: number; threads?: number; seed?: number },
): Promise<TorchPeerResult> {
  const payload = {
    ...spec,
    steps: options.steps,
    warmup: options.warmup,
    seed: options.seed ?? 0,
  };
  const { out } = await runPython(python, [
    TORCH_PEER_SCRIPT,
    "--spec",
    JSON.stringify(payload),
    "--threads",
    String(options.threads ?? 1),
  ]);
  return parseTorchPeerOutput(out);
}

// ---------------------------------------------------------------------------
// The report

/** One measured (configuration, variant) pair over all rounds. */
export interface BenchSamples {
  /** {@link specKey} of the configuration. */
  key: string;
  /** Backend variant (`wasm`, `wasm+blas`, …) or `pytorch`. */
  variant: string;
  /** Median ms/step of each round. */
  roundMedians: number[];
  /** Peak memory in MiB: tfjs peak tensor bytes of a step, or the peer's peak RSS. */
  peakMiB?: number;
}

/** One row of the step table: a configuration with every variant's median. */
export interface StepRow {
  /** {@link specKey}. */
  key: string;
  /** Samples per step. */
  samples: number;
  /** Parameter counts (tfjs side). */
  params?: ParamCounts;
  /** Median over rounds of the per-round medians, ms/step, by variant (null = not run). */
  ms: Record<string, number | null>;
  /** Samples per second at that median, by variant. */
  samplesPerSecond: Record<string, number | null>;
  /** Peak memory MiB by variant. */
  peakMiB: Record<string, number | null>;
  /** ms/step of each tfjs variant divided by PyTorch's (null without a peer). */
  ratioVsTorch: Record<string, number | null>;
  /** Parameter-count differences with the peer ([] = parity; null = no peer). */
  parity: string[] | null;
}

/**
 * Fold samples into one row per configuration (in `keys` order), with the
 * median over rounds per variant and the ratio of each non-`pytorch` variant
 * to `pytorch`.
 *
 * @example
 * ```ts
 * import { summarizeRows } from "./bench.ts";
 * const rows = summarizeRows(["vit tiny lora"], ["wasm"], [
 *   { key: "vit tiny lora", variant: "wasm", roundMedians: [300, 320, 310] },
 *   { key: "vit tiny lora", variant: "pytorch", roundMedians: [100, 110, 105] },
 * ], { samples: { "vit tiny lora": 32 } });
 * rows[0].ratioVsTorch.wasm; // 2.95
 * ```
 */
export function summarizeRows(
  keys: readonly string[],
  variants: readonly string[],
  samples: readonly BenchSamples[],
  info: {
    samples: Record<string, number>;
    params?: Record<string, ParamCounts>;
    parity?: Record<string, string[]>;
  },
): StepRow[] {
  const all = [...variants, "pytorch"];
  return keys.map((key) => {
    const ms: Record<string, number | null> = {};
    const sps: Record<string, number | null> = {};
    const peak: Record<string, number | null> = {};
    for (const v of all) {
      const s = samples.find((x) => x.key === key && x.variant === v);
      const m = s && s.roundMedians.length > 0 ? median(s.roundMedians) : null;
      ms[v] = m === null ? null : round1(m);
      sps[v] = m === null ? null : round1((1000 * info.samples[key]) / m);
      peak[v] = s?.peakMiB === undefined ? null : round1(s.peakMiB);
    }
    const ratios: Record<string, number | null> = {};
    for (const v of variants) ratios[v] = ratio(ms[v], ms.pytorch);
    return {
      key,
      samples: info.samples[key],
      ...(info.params?.[key] ? { params: info.params[key] } : {}),
      ms,
      samplesPerSecond: sps,
      peakMiB: peak,
      ratioVsTorch: ratios,
      parity: info.parity?.[key] ?? null,
    };
  });
}

function cell(x: number | null | undefined, suffix = ""): string {
  return x === null || x === undefined ? "–" : `${x}${suffix}`;
}

/**
 * The markdown table of step rows: configuration, trainable/total parameters,
 * ms/step (samples/s) per variant, PyTorch's, the ratios, peak memory and the
 * parameter-count parity check. The PyTorch and ratio columns are left out
 * when `withTorch` is false.
 *
 * @example
 * ```ts
 * import { stepTable, summarizeRows } from "./bench.ts";
 * const rows = summarizeRows(["lm byte-tiny lora"], ["wasm"], [
 *   { key: "lm byte-tiny lora", variant: "wasm", roundMedians: [500] },
 * ], { samples: { "lm byte-tiny lora": 8 } });
 * console.log(stepTable(rows, ["wasm"], { withTorch: false }));
 * ```
 */
export function stepTable(
  rows: readonly StepRow[],
  variants: readonly string[],
  options: { withTorch: boolean },
): string {
  const head = ["config", "trainable / total params"];
  for (const v of variants) head.push(`${v} ms/step (samples/s)`);
  if (options.withTorch) {
    head.push("PyTorch ms/step (samples/s)");
    for (const v of variants) head.push(`${v} / PyTorch`);
  }
  for (const v of variants) head.push(`${v} peak tensors MiB`);
  if (options.withTorch) head.push("PyTorch peak RSS MiB", "param parity");
  const lines = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  for (const r of rows) {
    const cells = [
      r.key,
      r.params
        ? `${r.params.trainable.toLocaleString("en-US")} / ${
          r.params.total.toLocaleString("en-US")
        }`
        : "–",
    ];
    const msCell = (v: string) =>
      r.ms[v] === null ? "–" : `${r.ms[v]} (${cell(r.samplesPerSecond[v])})`;
    for (const v of variants) cells.push(msCell(v));
    if (options.withTorch) {
      cells.push(msCell("pytorch"));
      for (const v of variants) cells.push(cell(r.ratioVsTorch[v], "×"));
    }
    for (const v of variants) cells.push(cell(r.peakMiB[v]));
    if (options.withTorch) {
      cells.push(cell(r.peakMiB.pytorch));
      cells.push(
        r.parity === null
          ? "–"
          : r.parity.length === 0
          ? "equal"
          : `DIFFERS: ${r.parity.join("; ")}`,
      );
    }
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}
