/**
 * `deno task bench` — training-step throughput on the benchmark task, as
 * ratios against a baseline measured in the same run.
 *
 * Measures, on the `tiny-p8` ViT (the default backbone) at batch 32 (synthetic data, 2 tasks, the steps
 * of task 2, so TreeLoRA's search and regulariser are active):
 * - ms/step of SeqLoRA and TreeLoRA (code mode), and TreeLoRA's overhead ratio;
 * - ms/step with tfjs's stock BatchMatMul gradient vs the harness's
 *   replacement (explicit transposes), for SeqLoRA.
 * Configurations are interleaved over `--repeats` rounds; each round times
 * `--steps` steps after 2 warm-up steps; medians are reported. Results go to
 * `results/bench/<run-id>.json` and `.md`. Flags: --steps, --repeats,
 * --preset, --batch-size, --backend, --out.
 *
 * @module
 */

import { join } from "@std/path";
import { type BackendName, initBackend } from "../lib/backend.ts";
import { splitClassIncremental } from "../lib/data/class_split.ts";
import { generateSyntheticImages } from "../lib/data/synthetic_images.ts";
import { writeFileAtomic, writeJsonAtomic } from "../lib/io.ts";
import { createMethod } from "../lib/methods/registry.ts";
import type { ContinualMethod } from "../lib/methods/method.ts";
import {
  registerFastMatMulGradient,
  restoreStockMatMulGradient,
} from "../lib/models/fast_grads.ts";
import { VIT_PRESETS } from "../lib/models/vit.ts";
import { createVitClassifier } from "../lib/models/vit_classifier.ts";
import { Rng } from "../lib/random.ts";
import { collectProvenance } from "../lib/run/provenance.ts";
import { flagHelp, parseFlags } from "../lib/run/flags.ts";
import { trainClassIncremental } from "../lib/train/class_incremental.ts";
import { SPEC } from "./split_cifar.ts";

const FLAGS = {
  steps: { type: "number" as const, help: "timed steps per round", default: "8" },
  repeats: { type: "number" as const, help: "interleaved rounds", default: "3" },
  preset: { type: "string" as const, help: "ViT preset", default: "tiny-p8" },
  "batch-size": { type: "number" as const, help: "batch size", default: "32" },
  backend: { type: "string" as const, help: "backend", default: "wasm" },
  out: { type: "string" as const, help: "result name under results/bench/" },
  help: { type: "boolean" as const, help: "print this help" },
};

interface Config {
  label: string;
  method: string;
  fastGrad: boolean;
}

const CONFIGS: Config[] = [
  { label: "seqlora", method: "seqlora", fastGrad: true },
  { label: "treelora", method: "treelora", fastGrad: true },
  { label: "seqlora (stock matmul grad)", method: "seqlora", fastGrad: false },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function timeSteps(
  config: Config,
  options: { preset: string; batch: number; steps: number },
) {
  if (config.fastGrad) registerFastMatMulGradient();
  else restoreStockMatMulGradient();
  const { train, test } = generateSyntheticImages({ seed: 0, trainPerClass: 8, testPerClass: 1 });
  const stream = splitClassIncremental(train, test, { numTasks: 2, orderSeed: 0 });
  const model = createVitClassifier({ ...VIT_PRESETS[options.preset], lora: SPEC.backbone.lora }, {
    numOutputs: stream.classOrder.length,
    rng: new Rng(0),
  });
  const inner = createMethod(config.method, { track: "vit" });
  const stamps: number[] = [];
  const method: ContinualMethod = {
    ...inner,
    afterStep: async (ctx, info) => {
      await inner.afterStep?.(ctx, info);
      if (ctx.taskIndex === 1) stamps.push(performance.now());
    },
  };
  const total = options.steps + 3;
  try {
    await trainClassIncremental(stream, {
      model,
      method,
      config: { ...SPEC.train, epochs: 1, batchSize: options.batch, maxStepsPerEpoch: total },
      rngs: { data: new Rng(1), method: new Rng(2) },
      recorder: { taskDone: () => Promise.resolve(), losses: () => Promise.resolve() },
    });
  } finally {
    inner.dispose();
    model.dispose();
    registerFastMatMulGradient();
  }
  // stamps[2] ends the second warm-up step; the next `steps` intervals are timed.
  const times = stamps.slice(2, 2 + options.steps + 1);
  const per: number[] = [];
  for (let i = 1; i < times.length; i++) per.push(times[i] - times[i - 1]);
  return median(per);
}

if (import.meta.main) {
  const f = parseFlags(Deno.args, FLAGS);
  if (f.help) {
    console.log(flagHelp("deno task bench [flags]", FLAGS));
    Deno.exit(0);
  }
  const steps = (f.steps as number | undefined) ?? 8;
  const repeats = (f.repeats as number | undefined) ?? 3;
  const preset = (f.preset as string | undefined) ?? "tiny-p8";
  const batch = (f["batch-size"] as number | undefined) ?? 32;
  const backend = await initBackend(((f.backend as string | undefined) ?? "wasm") as BackendName);
  const samples: Record<string, number[]> = {};
  for (let r = 0; r < repeats; r++) {
    for (const c of CONFIGS) {
      const ms = await timeSteps(c, { preset, batch, steps });
      (samples[c.label] ??= []).push(ms);
      console.error(`round ${r + 1}/${repeats} ${c.label}: ${ms.toFixed(1)} ms/step`);
    }
  }
  const base = median(samples.seqlora);
  const rows = CONFIGS.map((c) => {
    const m = median(samples[c.label]);
    return {
      config: c.label,
      median_ms_per_step: Number(m.toFixed(1)),
      images_per_second: Number(((1000 * batch) / m).toFixed(1)),
      ratio_vs_seqlora: Number((m / base).toFixed(3)),
      samples_ms: samples[c.label].map((x) => Number(x.toFixed(1))),
    };
  });
  const id = (f.out as string | undefined) ?? new Date().toISOString().replace(/[:.]/g, "-");
  const result = {
    what: "median ms per training step of task 2 (regulariser and search active for TreeLoRA), " +
      `${steps} steps per round after 2 warm-up steps, ${repeats} interleaved rounds`,
    preset,
    batchSize: batch,
    backend,
    provenance: await collectProvenance("."),
    rows,
  };
  await writeJsonAtomic(join("results", "bench", `${id}.json`), result);
  const md = [
    `# bench ${id}`,
    "",
    `${result.what}; preset ${preset}, batch ${batch}, backend ${backend.name}.`,
    "",
    "| config | median ms/step | img/s | ratio vs seqlora | samples (ms) |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map((r) =>
      `| ${r.config} | ${r.median_ms_per_step} | ${r.images_per_second} | ${r.ratio_vs_seqlora} | ${
        r.samples_ms.join(", ")
      } |`
    ),
  ].join("\n");
  await writeFileAtomic(join("results", "bench", `${id}.md`), md + "\n");
  console.log(md);
}
