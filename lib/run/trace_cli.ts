/**
 * Command-line flags of `deno task exp:trace`, mapped onto a {@link TraceSpec}.
 *
 * @module
 */

import { parseTaskList, TASK_ORDERS, type TaskOrderName } from "../data/trace.ts";
import { applyCommonFlags, COMMON_FLAGS, parseShard, runExperimentCli } from "./experiment.ts";
import type { FlagSpec, FlagValues } from "./flags.ts";
import { runTrace, type TraceSpec } from "./trace.ts";

const TRACK = "lm" as const;

/** The flags of the TRACE experiment. */
export const TRACE_FLAGS: Record<string, FlagSpec> = {
  ...COMMON_FLAGS,
  "data-dir": {
    type: "string-list",
    help:
      "TRACE-format directories (<Task>/{train,eval,test}.json), first match wins; default: synthetic tasks",
  },
  tasks: {
    type: "string",
    help: "task names and/or order names, comma-separated (with --data-dir)",
  },
  order: {
    type: "string",
    help: `a named order: ${Object.keys(TASK_ORDERS).join(", ")} (with --data-dir)`,
  },
  orders: {
    type: "string-list",
    help:
      "several named orders with the same number of tasks (e.g. olora-1,olora-2,olora-3; with --data-dir)",
  },
  "max-train": { type: "number", help: "cap training examples per task" },
  "max-test": { type: "number", help: "cap test examples per task" },
  "missing-train": {
    type: "string",
    help: "error | eval: train on eval.json when train.json is missing",
  },
  epochs: {
    type: "int-list",
    help: "epochs per task for the baseline budget (one number or one per task)",
  },
  "reduced-epochs": { type: "int-list", help: "TreeLoRA's reduced epochs per task" },
  "batch-size": { type: "number", help: "training batch size" },
  lr: { type: "number", help: "Adam learning rate (constant)" },
  "max-new-tokens": { type: "number", help: "generation length cap" },
  temperature: { type: "number", help: "0 = greedy (default); > 0 samples with the method seed" },
  preset: { type: "string", help: "decoder preset (byte-tiny, byte-micro, …)" },
  tokenizer: { type: "string", help: "byte (default) or a path to a Hugging Face tokenizer.json" },
  model: {
    type: "string",
    help:
      "a Hugging Face LLaMA-family checkpoint directory (config.json, safetensors, tokenizer.json)",
  },
  "pretrain-steps": { type: "number", help: "LM pre-training steps (cached by config hash)" },
  "max-steps-per-epoch": { type: "number", help: "cap steps per epoch (smoke runs; recorded)" },
  seed: { type: "number", help: "run seed: sets the data, init and method seeds" },
};

function positive(name: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) {
    throw new Error(`--${name} must be a positive integer, got ${v}`);
  }
  return v;
}

/**
 * Apply parsed flag values to a copy of `spec`.
 *
 * @example
 * ```ts ignore
 * const spec = applyTraceFlags(SPEC, parseFlags(["--order", "olora-1"], TRACE_FLAGS));
 * ```
 */
export function applyTraceFlags(base: TraceSpec, f: FlagValues): TraceSpec {
  const spec: TraceSpec = structuredClone(base);
  const num = (k: string) => f[k] as number | undefined;
  if (f["data-dir"]) spec.data.dirs = f["data-dir"] as string[];
  if (f.order !== undefined) {
    const name = f.order as string;
    if (!(name in TASK_ORDERS)) {
      throw new Error(`--order ${name}: known orders ${Object.keys(TASK_ORDERS).join(", ")}`);
    }
    spec.data.tasks = [...TASK_ORDERS[name as TaskOrderName]];
    spec.data.order = name;
  }
  if (f.tasks !== undefined) {
    spec.data.tasks = parseTaskList(f.tasks as string);
    spec.data.order = null;
  }
  if (f.orders !== undefined) {
    const list = f.orders as string[];
    for (const name of list) {
      if (!(name in TASK_ORDERS)) {
        throw new Error(`--orders ${name}: known orders ${Object.keys(TASK_ORDERS).join(", ")}`);
      }
    }
    if (new Set(list).size !== list.length) throw new Error("--orders lists an order twice");
    if (f.order !== undefined || f.tasks !== undefined) {
      throw new Error("--orders replaces --order / --tasks; give one");
    }
    spec.orderList = list;
    spec.data.order = list[0];
    spec.data.tasks = [...TASK_ORDERS[list[0] as TaskOrderName]];
  }
  if (
    (f.tasks !== undefined || f.order !== undefined || f.orders !== undefined) && !f["data-dir"]
  ) {
    throw new Error("--tasks, --order and --orders select real tasks and need --data-dir");
  }
  if (num("max-train") !== undefined) spec.data.maxTrain = positive("max-train", num("max-train")!);
  if (num("max-test") !== undefined) spec.data.maxTest = positive("max-test", num("max-test")!);
  if (f["missing-train"] !== undefined) {
    const v = f["missing-train"] as string;
    if (v !== "error" && v !== "eval") {
      throw new Error(`--missing-train must be error or eval, got ${v}`);
    }
    spec.data.missingTrain = v;
  }
  const numTasks = spec.data.dirs === null ? 8 : spec.data.tasks.length;
  const fit = (name: string, e: number[]) => {
    e.forEach((v) => positive(name, v));
    if (e.length !== 1 && e.length !== numTasks) {
      throw new Error(
        `--${name} lists ${e.length} numbers; give one, or one per task (${numTasks})`,
      );
    }
    return e.length === 1 ? e[0] : e;
  };
  if (f.epochs) spec.train.epochs = fit("epochs", f.epochs as number[]);
  if (f["reduced-epochs"]) {
    const reduced = fit("reduced-epochs", f["reduced-epochs"] as number[]);
    for (const m of spec.methods) if (m.epochs !== undefined) m.epochs = reduced;
  }
  if (num("batch-size") !== undefined) {
    spec.train.batchSize = positive("batch-size", num("batch-size")!);
  }
  if (num("lr") !== undefined) spec.train.lr = num("lr")!;
  if (num("max-new-tokens") !== undefined) {
    spec.train.maxNewTokens = positive("max-new-tokens", num("max-new-tokens")!);
  }
  if (num("temperature") !== undefined) spec.train.temperature = num("temperature")!;
  if (f.model !== undefined) {
    if (f.preset !== undefined || f.tokenizer !== undefined) {
      throw new Error("--model brings its own shape and tokenizer: drop --preset / --tokenizer");
    }
    spec.model.dir = f.model as string;
  }
  if (f.preset !== undefined) spec.model.preset = f.preset as string;
  if (f.tokenizer !== undefined) spec.model.tokenizer = f.tokenizer as string;
  if (num("pretrain-steps") !== undefined) {
    spec.model.pretrain.steps = positive("pretrain-steps", num("pretrain-steps")!);
  }
  if (num("max-steps-per-epoch") !== undefined) {
    spec.train.maxStepsPerEpoch = positive("max-steps-per-epoch", num("max-steps-per-epoch")!);
  }
  if (f.seeds !== undefined) {
    const list = f.seeds as number[];
    if (new Set(list).size !== list.length) {
      throw new Error(`--seeds lists a seed twice: ${list.join(",")}`);
    }
    if (f.seed !== undefined) throw new Error("--seeds and --seed cannot be combined");
    spec.seedList = list;
  }
  if (f.shard !== undefined) spec.shard = parseShard(f.shard as string);
  if (num("seed") !== undefined) {
    spec.seed = num("seed")!;
    spec.seeds = { data: spec.seed, init: spec.seed, method: spec.seed };
  }
  applyCommonFlags(spec, f, { track: TRACK });
  return spec;
}

/**
 * Parse `args`, run the experiment, return an exit code (0 ok, 2 bad flags, 1 failure).
 *
 * @example
 * ```ts ignore
 * Deno.exit(await runTraceCli(SPEC, Deno.args));
 * ```
 */
export function runTraceCli(base: TraceSpec, args: string[]): Promise<number> {
  return runExperimentCli(args, {
    usage: "deno task exp:trace [flags]",
    flags: TRACE_FLAGS,
    spec: (flags) => applyTraceFlags(base, flags),
    run: runTrace,
  });
}
