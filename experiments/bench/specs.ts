/**
 * The standard configurations of `deno task bench` and the parameter counts
 * both sides report (issue 9).
 *
 * A {@link BenchSpec} holds everything the TensorFlow.js side
 * (`tfjs_steps.ts`) and the PyTorch peer (`torch_peer.ts`) need: the
 * harness's model config, batch, mode and optimiser; {@link standardSpecs}
 * builds them. {@link compareParamCounts} checks parameter-count parity of the
 * two sides.
 *
 * Modes: `lora` trains the LoRA matrices (plus the ViT head), as the
 * continual-learning trainers do; `full` trains every base weight (plus the
 * ViT head), as the harness's pre-training does. The LoRA branches stay in the
 * forward pass in both.
 *
 * @module
 */

import type { LoraConfig } from "../../lib/models/backbone.ts";
import { DECODER_PRESETS, type DecoderConfig } from "../../lib/models/decoder.ts";
import { VIT_PRESETS, type VitConfig } from "../../lib/models/vit.ts";
import { SPEC as CIFAR_SPEC } from "../split_cifar.ts";
import { SPEC as TRACE_SPEC } from "../trace.ts";

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

/** The batch-shape flags of `deno task bench` and `bench:profile`. */
export const SHAPE_FLAGS = {
  "batch-size": { type: "number" as const, help: "ViT batch size", default: "32" },
  "lm-batch-size": { type: "number" as const, help: "LM batch size", default: "8" },
  "lm-seq-length": { type: "number" as const, help: "LM tokens per sequence", default: "128" },
};

/**
 * The batch shapes given by {@link SHAPE_FLAGS} (defaults 32, 8, 128); each must be a positive
 * integer.
 *
 * @example
 * ```ts
 * import { shapesFromFlags } from "./specs.ts";
 * shapesFromFlags({ "lm-batch-size": 4 }); // { vitBatch: 32, lmBatch: 4, lmSeqLength: 128 }
 * ```
 */
export function shapesFromFlags(
  f: Record<string, unknown>,
): { vitBatch: number; lmBatch: number; lmSeqLength: number } {
  const read = (name: keyof typeof SHAPE_FLAGS) => {
    const v = (f[name] as number | undefined) ?? Number(SHAPE_FLAGS[name].default);
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
    return v;
  };
  return {
    vitBatch: read("batch-size"),
    lmBatch: read("lm-batch-size"),
    lmSeqLength: read("lm-seq-length"),
  };
}

/**
 * The {@link StandardSpecOptions} of the harness's default experiments: split-cifar's ViT LoRA
 * and optimiser, trace's LM LoRA and optimiser, 100 classes, and the given batch shapes.
 *
 * @example
 * ```ts
 * import { harnessSpecOptions } from "./specs.ts";
 * harnessSpecOptions({ vitBatch: 32, lmBatch: 8, lmSeqLength: 128 }).lmLora.rank; // 8
 * ```
 */
export function harnessSpecOptions(
  shapes: { vitBatch: number; lmBatch: number; lmSeqLength: number },
): StandardSpecOptions {
  const optimizer = (t: { lr: number; beta1: number; beta2: number; clipNorm: number }) => ({
    lr: t.lr,
    beta1: t.beta1,
    beta2: t.beta2,
    clipNorm: t.clipNorm,
  });
  return {
    vitLora: CIFAR_SPEC.backbone.lora,
    vitBatch: shapes.vitBatch,
    numClasses: 100,
    vitOptimizer: optimizer(CIFAR_SPEC.train),
    lmLora: TRACE_SPEC.model.lora,
    lmBatch: shapes.lmBatch,
    lmSeqLength: shapes.lmSeqLength,
    lmOptimizer: optimizer(TRACE_SPEC.train),
  };
}

/**
 * Specs for configuration names × modes, in that order. A name is a ViT preset
 * (`tiny-p8`, `tiny`, `small`, …) or a decoder preset (`byte-tiny`, …).
 *
 * @example
 * ```ts
 * import { standardSpecs } from "./specs.ts";
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

/** The roles of {@link ParamCounts}, in table order. */
export const COUNT_KEYS = ["base", "lora", "head", "total", "trainable"] as const;

/**
 * Differences between the harness's and the peer's parameter counts, one
 * line per differing role; empty when they agree exactly.
 *
 * @example
 * ```ts
 * import { compareParamCounts } from "./specs.ts";
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
