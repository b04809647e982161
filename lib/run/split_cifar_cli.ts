/**
 * Command-line flags of `deno task exp:split-cifar`, mapped onto a
 * {@link SplitCifarSpec}. Every flag is declared; unknown flags are errors.
 *
 * @module
 */

import { applyCommonFlags, COMMON_FLAGS, parseShard, runExperimentCli } from "./experiment.ts";
import type { FlagSpec, FlagValues } from "./flags.ts";
import { runSplitCifar, type SplitCifarSpec } from "./split_cifar.ts";
import type { LoraTarget } from "../models/vit.ts";

const TRACK = "vit" as const;

/** The flags of the Split CIFAR-100 experiment. */
export const SPLIT_CIFAR_FLAGS: Record<string, FlagSpec> = {
  ...COMMON_FLAGS,
  epochs: { type: "int-list", help: "epochs per task: one number, or one per task" },
  "batch-size": { type: "number", help: "training batch size" },
  lr: { type: "number", help: "Adam learning rate (constant)" },
  clip: { type: "number", help: "global gradient-norm clip (0 disables)" },
  tasks: { type: "number", help: "number of tasks (classes split evenly)" },
  "order-seed": { type: "string", help: "class-order seed, or 'natural' for the natural order" },
  seed: { type: "number", help: "run seed: sets the data, init and method seeds" },
  orders: {
    type: "string-list",
    help:
      "several class orders: order seeds and/or 'natural' (e.g. 0,1,2); tables get an order column",
  },
  "data-seed": { type: "number", help: "seed of the data stream (shuffles) only" },
  "init-seed": { type: "number", help: "seed of the init stream (LoRA, head) only" },
  "method-seed": { type: "number", help: "seed of the method stream (dropout, sampling) only" },
  "data-dir": {
    type: "string",
    help: "read CIFAR-100-layout train.bin/test.bin from DIR instead of synthetic data",
  },
  "train-per-class": { type: "number", help: "synthetic data: training images per class" },
  "test-per-class": { type: "number", help: "synthetic data: test images per class" },
  preset: {
    type: "string",
    help: "ViT preset (micro, tiny, tiny-p8, small; vit-b16 with --weights)",
  },
  backbone: {
    type: "string",
    help: "the same as --preset (e.g. --backbone vit-b16 --weights DIR)",
  },
  weights: {
    type: "string",
    help:
      "a Hugging Face ViT checkpoint directory (config.json + model.safetensors) instead of pre-training",
  },
  "lora-rank": { type: "number", help: "LoRA rank r" },
  "lora-alpha": { type: "number", help: "LoRA alpha (scale alpha/r)" },
  "lora-dropout": { type: "number", help: "dropout on the LoRA input" },
  "lora-blocks": {
    type: "string",
    help:
      "blocks with LoRA: 'all', 'first:N' (blocks 0..N-1, clipped to the depth) or indices like 0,2,4",
  },
  "lora-targets": {
    type: "string",
    help: "attention projections with LoRA in those blocks: a subset of q,k,v (HiDe-LoRA: k,v)",
  },
  "pretrain-steps": { type: "number", help: "backbone pre-training steps (cached by config hash)" },
  "max-steps-per-epoch": { type: "number", help: "cap steps per epoch (smoke runs; recorded)" },
  "curve-every": {
    type: "number",
    help: "learning curve (Fig. 1): probe the current task every K steps (0 = off)",
  },
  "curve-images": { type: "number", help: "learning-curve subset: first N test images of a task" },
};

/**
 * Apply parsed flag values to a copy of `spec`.
 *
 * @example
 * ```ts ignore
 * const spec = applySplitCifarFlags(SPEC, parseFlags(["--epochs", "1"], SPLIT_CIFAR_FLAGS));
 * ```
 */
export function applySplitCifarFlags(base: SplitCifarSpec, f: FlagValues): SplitCifarSpec {
  const spec: SplitCifarSpec = structuredClone(base);
  const num = (k: string) => f[k] as number | undefined;
  const posInt = (k: string, v: number) => {
    if (!Number.isInteger(v) || v <= 0) {
      throw new Error(`--${k} must be a positive integer, got ${v}`);
    }
    return v;
  };
  if (f.epochs) {
    const e = f.epochs as number[];
    e.forEach((v) => posInt("epochs", v));
    spec.train.epochs = e.length === 1 ? e[0] : e;
  }
  if (num("batch-size") !== undefined) {
    spec.train.batchSize = posInt("batch-size", num("batch-size")!);
  }
  if (num("lr") !== undefined) spec.train.lr = num("lr")!;
  if (num("clip") !== undefined) spec.train.clipNorm = num("clip")!;
  if (num("tasks") !== undefined) spec.data.numTasks = posInt("tasks", num("tasks")!);
  if (f["order-seed"] !== undefined) {
    const v = f["order-seed"] as string;
    if (v === "natural") spec.data.orderSeed = null;
    else {
      const n = Number(v);
      if (!Number.isInteger(n)) {
        throw new Error(`--order-seed must be an integer or 'natural', got ${v}`);
      }
      spec.data.orderSeed = n;
    }
  }
  if (num("seed") !== undefined) {
    const s = num("seed")!;
    spec.seed = s;
    spec.seeds = { data: s, init: s, method: s };
  }
  if (f.seeds !== undefined) {
    const list = f.seeds as number[];
    if (new Set(list).size !== list.length) {
      throw new Error(`--seeds lists a seed twice: ${list.join(",")}`);
    }
    for (const k of ["seed", "data-seed", "init-seed", "method-seed"]) {
      if (f[k] !== undefined) throw new Error(`--seeds and --${k} cannot be combined`);
    }
    spec.seedList = list;
  }
  if (f.orders !== undefined) {
    const list = (f.orders as string[]).map((v) => {
      if (v === "natural") return null;
      const n = Number(v);
      if (!Number.isInteger(n)) {
        throw new Error(`--orders: "${v}" is neither an integer seed nor 'natural'`);
      }
      return n;
    });
    if (new Set(list).size !== list.length) throw new Error(`--orders lists an order twice`);
    if (f["order-seed"] !== undefined) {
      throw new Error("--orders and --order-seed cannot be combined");
    }
    spec.orderList = list;
  }
  if (f.shard !== undefined) spec.shard = parseShard(f.shard as string);
  if (num("data-seed") !== undefined) spec.seeds.data = num("data-seed")!;
  if (num("init-seed") !== undefined) spec.seeds.init = num("init-seed")!;
  if (num("method-seed") !== undefined) spec.seeds.method = num("method-seed")!;
  if (f["data-dir"] !== undefined) spec.data.dir = f["data-dir"] as string;
  if (num("train-per-class") !== undefined) {
    spec.data.synthetic.trainPerClass = posInt("train-per-class", num("train-per-class")!);
  }
  if (num("test-per-class") !== undefined) {
    spec.data.synthetic.testPerClass = posInt("test-per-class", num("test-per-class")!);
  }
  if (f.preset !== undefined && f.backbone !== undefined) {
    throw new Error("--preset and --backbone name the same thing; give one");
  }
  if (f.preset !== undefined || f.backbone !== undefined) {
    spec.backbone.preset = (f.preset ?? f.backbone) as string;
  }
  if (f.weights !== undefined) spec.backbone.weights = f.weights as string;
  if (num("lora-rank") !== undefined) {
    spec.backbone.lora.rank = posInt("lora-rank", num("lora-rank")!);
  }
  if (num("lora-alpha") !== undefined) spec.backbone.lora.alpha = num("lora-alpha")!;
  if (num("lora-dropout") !== undefined) spec.backbone.lora.dropout = num("lora-dropout")!;
  if (f["lora-blocks"] !== undefined) {
    const v = f["lora-blocks"] as string;
    spec.backbone.loraBlocks = v === "all"
      ? "all"
      : /^first:\d+$/.test(v)
      ? v as `first:${number}`
      : v.split(",").map((x) => {
        const n = Number(x);
        if (!Number.isInteger(n) || n < 0) {
          throw new Error(`--lora-blocks: "${x}" is not a block index`);
        }
        return n;
      });
  }
  if (f["lora-targets"] !== undefined) {
    const list = (f["lora-targets"] as string).split(",").map((x) => x.trim());
    for (const t of list) {
      if (t !== "q" && t !== "k" && t !== "v") {
        throw new Error(`--lora-targets: "${t}" is not one of q, k, v`);
      }
    }
    if (new Set(list).size !== list.length) {
      throw new Error(`--lora-targets: "${f["lora-targets"]}" names a projection twice`);
    }
    spec.backbone.loraTargets = list as LoraTarget[];
  }
  if (num("pretrain-steps") !== undefined) {
    spec.backbone.pretrain.steps = posInt("pretrain-steps", num("pretrain-steps")!);
  }
  if (num("curve-every") !== undefined) {
    const k = num("curve-every")!;
    spec.train.curveEvery = k === 0 ? 0 : posInt("curve-every", k);
  }
  if (num("curve-images") !== undefined) {
    spec.train.curveImages = posInt("curve-images", num("curve-images")!);
  }
  if (num("max-steps-per-epoch") !== undefined) {
    spec.train.maxStepsPerEpoch = posInt("max-steps-per-epoch", num("max-steps-per-epoch")!);
  }
  applyCommonFlags(spec, f, { track: TRACK });
  return spec;
}

/**
 * Parse `args`, run the experiment and return a process exit code (0 ok, 2 bad flags, 1 failure).
 *
 * @example
 * ```ts ignore
 * Deno.exit(await runSplitCifarCli(SPEC, Deno.args));
 * ```
 */
export function runSplitCifarCli(base: SplitCifarSpec, args: string[]): Promise<number> {
  return runExperimentCli(args, {
    usage: "deno task exp:split-cifar [flags]",
    flags: SPLIT_CIFAR_FLAGS,
    spec: (flags) => applySplitCifarFlags(base, flags),
    run: runSplitCifar,
  });
}
