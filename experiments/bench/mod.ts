/**
 * `deno task bench` — training-step throughput, interleaved in one run:
 *
 * - **standard** suite: the standard configurations (ViT `tiny-p8`, `tiny`,
 *   `small`; decoder LM `byte-tiny`) × {LoRA-only, full fine-tuning} under
 *   each backend variant (`wasm`: stock wasm kernels; `wasm+blas`: the
 *   BatchMatMul kernel on the system BLAS through FFI; optionally `cpu`,
 *   `cpu+blas`), with the fast BatchMatMul gradient; and, when
 *   `/usr/bin/python3` (or `--python`) imports torch, the same models in
 *   PyTorch (`experiments/bench/torch_peer.py`, one process per configuration and
 *   round) with the ratio tfjs / PyTorch. Parameter counts of both sides are
 *   compared. ms/step, samples/s and peak memory (tfjs: peak tensor bytes of
 *   one profiled step; PyTorch: peak RSS of its process).
 * - **overhead** suite, on the default backbone (`--preset`, batch 32,
 *   synthetic data, 2 tasks, the steps of task 2 so TreeLoRA's search and
 *   regulariser are active): SeqLoRA vs TreeLoRA (code mode), and SeqLoRA
 *   with tfjs's stock BatchMatMul gradient vs the harness's replacement.
 *
 * Every round runs every job once (the order rotates between rounds); a
 * job times `--steps` steps after `--warmup` warm-up steps and keeps their
 * median; the reported value is the median over `--repeats` rounds. Results
 * go to `results/bench/<out>.json` and `.md` with provenance (versions,
 * backend and BLAS, torch and its BLAS, flags, machine load).
 *
 * Quick run: `deno task bench --configs tiny-p8 --modes lora --steps 3 --repeats 1`.
 *
 * This file is the command (flags, the overhead suite, the interleaved
 * rounds, the outputs); beside it: `specs.ts` (the standard configurations
 * and parameter counts), `tfjs_steps.ts` (the TensorFlow.js timing),
 * `torch_peer.ts` (runs and checks the PyTorch peer), `report.ts`
 * (statistics and the step table); `search.ts` is `deno task bench:search`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { join } from "@std/path";
import { type BackendInfo, initBackend } from "../../lib/run/backend.ts";
import { splitClassIncremental } from "../../lib/data/class_split.ts";
import { generateSyntheticImages } from "../../lib/data/synthetic_images.ts";
import { writeFileAtomic, writeJsonAtomic } from "../../lib/io.ts";
import { createMethod } from "../../lib/methods/registry.ts";
import type { ContinualMethod } from "../../lib/methods/method.ts";
import {
  registerFastMatMulGradient,
  restoreStockMatMulGradient,
} from "../../lib/models/fast_grads.ts";
import { setFusedOps } from "../../lib/models/fused_ops.ts";
import { VIT_PRESETS } from "../../lib/models/vit.ts";
import { createVitClassifier } from "../../lib/models/vit_classifier.ts";
import { BLAS_DIRS, nativeMatMulStatus, setNativeMatMul } from "../../lib/native_blas.ts";
import { Rng } from "../../lib/random.ts";
import { collectProvenance, dependencyVersions } from "../../lib/run/provenance.ts";
import { flagHelp, parseFlags } from "../../lib/flags.ts";
import { trainClassIncremental } from "../../lib/train/class_incremental.ts";
import { SPEC as CIFAR_SPEC } from "../split_cifar.ts";
import { SPEC as TRACE_SPEC } from "../trace.ts";
import { type BenchSamples, median, stepTable, summarizeRows } from "./report.ts";
import { peakRssMiB, runTfjsPeer } from "./tfjs_peer.ts";
import { chooseVariants, GPU_BACKENDS, type Variant, variantOf } from "./variants.ts";
import {
  type BenchMode,
  type BenchSpec,
  compareParamCounts,
  harnessSpecOptions,
  type ParamCounts,
  samplesPerStep,
  SHAPE_FLAGS,
  shapesFromFlags,
  specKey,
  STANDARD_CONFIGS,
  standardSpecs,
} from "./specs.ts";
import { timeTfjsSteps } from "./tfjs_steps.ts";
import { cpuModel, loadAverage } from "./machine.ts";
import { probeTorch, runTorchPeer, type TorchRuntime } from "./torch_peer.ts";

const FLAGS = {
  suites: { type: "string-list" as const, help: "standard, overhead", default: "both" },
  configs: {
    type: "string-list" as const,
    help: "standard configurations (ViT or decoder presets)",
    default: STANDARD_CONFIGS.join(","),
  },
  modes: { type: "string-list" as const, help: "lora, full", default: "lora,full" },
  variants: {
    type: "string-list" as const,
    help:
      "backend variants: wasm, wasm+blas, cpu, cpu+blas, webgpu, tensorflow (GPU: skipped with the reason where they do not start); each with -unfused for the plain tfjs compositions and tf.train.adam (the code before the fused ops)",
    default: "wasm,wasm+blas",
  },
  steps: { type: "number" as const, help: "timed steps per job and round", default: "5" },
  warmup: { type: "number" as const, help: "untimed steps before them", default: "2" },
  repeats: { type: "number" as const, help: "interleaved rounds", default: "3" },
  ...SHAPE_FLAGS,
  python: {
    type: "string" as const,
    help: "python with torch for the PyTorch peer",
    default: "/usr/bin/python3",
  },
  "no-torch": { type: "boolean" as const, help: "skip the PyTorch peer" },
  "no-rss": {
    type: "boolean" as const,
    help:
      "skip the memory pass (each tfjs job once more in a process of its own, for its peak RSS)",
  },
  "torch-threads": {
    type: "number" as const,
    help: "torch intra-op threads (1 lets OpenBLAS use the cores)",
    default: "1",
  },
  blas: {
    type: "string" as const,
    help: "BLAS library of the +blas variants (auto or a path)",
    default: "auto",
  },
  "blas-threads": { type: "number" as const, help: "BLAS threads", default: "all cores" },
  preset: { type: "string" as const, help: "ViT preset of the overhead suite", default: "tiny-p8" },
  out: {
    type: "string" as const,
    help: "result name under results/bench/",
    default: "a timestamp",
  },
  help: { type: "boolean" as const, help: "print this help" },
};

/** The BLAS directories the tasks' `--allow-ffi` lists (and the memory pass's peers get). */
const BLAS_FFI = [...new Set([...BLAS_DIRS.linux, ...BLAS_DIRS.darwin])].join(",");

async function enterVariant(v: Variant): Promise<void> {
  if (tf.getBackend() !== v.backend && !(await tf.setBackend(v.backend))) {
    throw new Error(`bench: backend ${v.backend} failed to start`);
  }
  registerFastMatMulGradient();
  setNativeMatMul(v.blas);
  setFusedOps(v.fused);
}

// ---------------------------------------------------------------------------
// Overhead suite (TreeLoRA vs SeqLoRA; stock vs fast matmul gradient)

interface OverheadConfig {
  label: string;
  method: string;
  fastGrad: boolean;
}

const OVERHEAD_CONFIGS: OverheadConfig[] = [
  { label: "seqlora", method: "seqlora", fastGrad: true },
  { label: "treelora", method: "treelora", fastGrad: true },
  { label: "seqlora (stock matmul grad)", method: "seqlora", fastGrad: false },
];

async function timeOverhead(
  config: OverheadConfig,
  options: { preset: string; batch: number; steps: number; warmup: number },
): Promise<number> {
  if (config.fastGrad) registerFastMatMulGradient();
  else restoreStockMatMulGradient();
  const { train, test } = generateSyntheticImages({ seed: 0, trainPerClass: 8, testPerClass: 1 });
  const stream = splitClassIncremental(train, test, { numTasks: 2, orderSeed: 0 });
  const model = createVitClassifier({
    ...VIT_PRESETS[options.preset],
    lora: CIFAR_SPEC.backbone.lora,
  }, {
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
  const total = options.steps + options.warmup + 1;
  try {
    await trainClassIncremental(stream, {
      model,
      method,
      config: { ...CIFAR_SPEC.train, epochs: 1, batchSize: options.batch, maxStepsPerEpoch: total },
      rngs: { data: new Rng(1), method: new Rng(2) },
      recorder: { taskDone: () => Promise.resolve(), losses: () => Promise.resolve() },
    });
  } finally {
    inner.dispose();
    model.dispose();
    registerFastMatMulGradient();
  }
  // stamps[warmup] ends the last warm-up step; the next `steps` intervals are timed.
  const times = stamps.slice(options.warmup, options.warmup + options.steps + 1);
  if (times.length < 2) {
    throw new Error(`bench overhead: only ${stamps.length} steps of task 2 ran (batch too large?)`);
  }
  const per: number[] = [];
  for (let i = 1; i < times.length; i++) per.push(times[i] - times[i - 1]);
  return median(per);
}

// ---------------------------------------------------------------------------
// The run

function rotate<T>(xs: T[], by: number): T[] {
  if (xs.length === 0) return xs;
  const k = by % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

function fmt(x: number): string {
  return x.toFixed(1);
}

async function main(args: string[]): Promise<number> {
  const f = parseFlags(args, FLAGS);
  if (f.help) {
    console.log(flagHelp("deno task bench [flags]", FLAGS));
    return 0;
  }
  const suites = (f.suites as string[] | undefined) ?? ["standard", "overhead"];
  for (const s of suites) {
    if (s !== "standard" && s !== "overhead") {
      throw new Error(`--suites: unknown suite "${s}" (standard, overhead)`);
    }
  }
  const configs = (f.configs as string[] | undefined) ?? [...STANDARD_CONFIGS];
  const modes = ((f.modes as string[] | undefined) ?? ["lora", "full"]) as BenchMode[];
  const requested = ((f.variants as string[] | undefined) ?? ["wasm", "wasm+blas"]).map(variantOf);
  const steps = (f.steps as number | undefined) ?? 5;
  const warmup = (f.warmup as number | undefined) ?? 2;
  const repeats = (f.repeats as number | undefined) ?? 3;
  for (const [name, v] of [["steps", steps], ["repeats", repeats]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
  }
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error("--warmup must be an integer ≥ 0");
  const { vitBatch, lmBatch, lmSeqLength } = shapesFromFlags(f);
  const python = (f.python as string | undefined) ?? "/usr/bin/python3";
  const torchThreads = (f["torch-threads"] as number | undefined) ?? 1;
  const preset = (f.preset as string | undefined) ?? "tiny-p8";
  if (!VIT_PRESETS[preset]) throw new Error(`--preset: unknown ViT preset "${preset}"`);
  const id = (f.out as string | undefined) ?? new Date().toISOString().replace(/[:.]/g, "-");
  const standard = suites.includes("standard");

  const loadBefore = await loadAverage();
  // GPU backends first: each is started once here (and so registered for enterVariant), or
  // its variants are skipped with the reason.
  const gpuFailures = new Map<string, string>();
  const gpuNotes = new Map<string, string>();
  for (const name of new Set(requested.map((v) => v.backend))) {
    if (!GPU_BACKENDS.includes(name)) continue;
    try {
      gpuNotes.set(name, (await initBackend(name, { blas: "off" })).note);
    } catch (err) {
      gpuFailures.set(name, (err as Error).message);
    }
  }
  const backend: BackendInfo = await initBackend("wasm", {
    blas: (f.blas as string | undefined) ?? "auto",
    ...(f["blas-threads"] !== undefined ? { blasThreads: f["blas-threads"] as number } : {}),
  });
  const blasStatus = nativeMatMulStatus();
  const { variants, skipped } = chooseVariants(requested, { blas: blasStatus, gpuFailures });
  for (const [name, note] of gpuNotes) console.error(`bench: ${name}: ${note}`);
  for (const s of skipped) console.error(`bench: variant ${s.variant} skipped: ${s.reason}`);
  if (variants.length === 0) throw new Error("bench: no backend variant can run");
  setNativeMatMul(false);

  const specs: BenchSpec[] = standard
    ? standardSpecs(configs, modes, harnessSpecOptions({ vitBatch, lmBatch, lmSeqLength }))
    : [];

  let torch: { available: true; runtime: TorchRuntime } | { available: false; reason: string };
  if (!standard) torch = { available: false, reason: "standard suite not run" };
  else if (f["no-torch"]) torch = { available: false, reason: "--no-torch" };
  else {
    const p = await probeTorch(python, { threads: torchThreads });
    torch = p.ok ? { available: true, runtime: p.runtime } : { available: false, reason: p.reason };
  }
  if (standard) {
    console.error(
      torch.available
        ? `bench: PyTorch peer: torch ${torch.runtime.torch} (${python}), ${torch.runtime.threads} ` +
          `torch thread(s), BLAS ${
            String(torch.runtime.blas.openblasConfig ?? torch.runtime.blas.buildBlas)
          }`
        : `bench: no PyTorch peer (${torch.reason}); tfjs columns only`,
    );
  }
  console.error(`bench: backend ${backend.note}`);

  const samples = new Map<string, BenchSamples>();
  const stepSamples: Record<string, number[][]> = {};
  const params: Record<string, ParamCounts> = {};
  const parity: Record<string, string[]> = {};
  const leaks: string[] = [];
  const torchInfo: Record<string, { loss: { first: number; last: number } }> = {};
  const overhead: Record<string, number[]> = {};
  let peakRss = Deno.memoryUsage().rss;
  const record = (
    key: string,
    variant: string,
    ms: number[],
    memory: { peakMiB?: number; savedMiB?: number },
  ) => {
    const k = `${key}|${variant}`;
    const s = samples.get(k) ?? { key, variant, roundMedians: [] };
    s.roundMedians.push(median(ms));
    if (memory.peakMiB !== undefined) s.peakMiB = Math.max(s.peakMiB ?? 0, memory.peakMiB);
    if (memory.savedMiB !== undefined) s.savedMiB = memory.savedMiB;
    samples.set(k, s);
    (stepSamples[k] ??= []).push(ms.map((x) => Number(x.toFixed(2))));
  };
  const t0 = performance.now();
  const roundLoads: (string | null)[] = [];
  try {
    for (let r = 0; r < repeats; r++) {
      const tag = `round ${r + 1}/${repeats}`;
      roundLoads.push(await loadAverage());
      for (const spec of specs) {
        const key = specKey(spec);
        const jobs: string[] = rotate(
          [...variants.map((v) => v.name), ...(torch.available ? ["pytorch"] : [])],
          r,
        );
        for (const job of jobs) {
          if (job === "pytorch") {
            const res = await runTorchPeer(python, spec, { steps, warmup, threads: torchThreads });
            if (!parity[key]) {
              parity[key] = compareParamCounts(params[key] ?? res.params, res.params);
              if (parity[key].length > 0) {
                console.error(
                  `bench: WARNING ${key}: PyTorch model differs: ${parity[key].join("; ")}`,
                );
              }
            }
            torchInfo[key] = { loss: res.loss };
            record(key, "pytorch", res.msPerStep, {
              peakMiB: res.peakRssMiB,
              ...(res.savedForBackwardMiB !== undefined
                ? { savedMiB: res.savedForBackwardMiB }
                : {}),
            });
            console.error(`${tag} ${key} [pytorch]: ${fmt(res.medianMs)} ms/step`);
            continue;
          }
          const v = variants.find((x) => x.name === job)!;
          await enterVariant(v);
          const t = await timeTfjsSteps(spec, { steps, warmup, profile: r === 0 });
          if (t.leakedTensors !== 0) leaks.push(`${key} [${v.name}]: ${t.leakedTensors} tensors`);
          params[key] ??= t.params;
          record(key, v.name, t.msPerStep, {
            ...(t.peakTensorBytes !== undefined ? { peakMiB: t.peakTensorBytes / 2 ** 20 } : {}),
            ...(t.savedForBackwardBytes !== undefined
              ? { savedMiB: t.savedForBackwardBytes / 2 ** 20 }
              : {}),
          });
          peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
          console.error(`${tag} ${key} [${v.name}]: ${fmt(median(t.msPerStep))} ms/step`);
        }
      }
      if (suites.includes("overhead")) {
        await enterVariant(variants[0]);
        for (const c of rotate([...OVERHEAD_CONFIGS], r)) {
          const ms = await timeOverhead(c, { preset, batch: vitBatch, steps, warmup });
          (overhead[c.label] ??= []).push(ms);
          peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
          console.error(`${tag} overhead ${c.label} [${variants[0].name}]: ${fmt(ms)} ms/step`);
        }
      }
    }
  } finally {
    // Back to the defaults on every exit path.
    setNativeMatMul(false);
    setFusedOps(true);
  }
  const minutes = (performance.now() - t0) / 60000;
  // The memory pass: each cpu/wasm job once more in a process of its own (tfjs_peer.ts), for a
  // peak RSS that compares with the PyTorch peer's. After the timed rounds, so no timing sees it.
  const rssNotes: string[] = [];
  let rssAfterInitMiB: number | null = null;
  if (standard && !f["no-rss"]) {
    if ((await peakRssMiB()) === null) {
      rssNotes.push("memory pass skipped: no /proc/<pid>/status (peak RSS is read on Linux only)");
    } else {
      for (const spec of specs) {
        for (const v of variants.filter((x) => x.backend === "wasm" || x.backend === "cpu")) {
          try {
            const r = await runTfjsPeer(spec, { variant: v.name, steps, warmup, ffi: BLAS_FFI });
            if (r.deno !== Deno.version.deno) {
              throw new Error(`the peer ran Deno ${r.deno}, the bench ${Deno.version.deno}`);
            }
            const k = `${specKey(spec)}|${v.name}`;
            samples.get(k)!.rssMiB = r.peakRssMiB;
            rssAfterInitMiB = Math.max(rssAfterInitMiB ?? 0, r.rssAfterInitMiB);
            console.error(`memory ${specKey(spec)} [${v.name}]: peak RSS ${r.peakRssMiB} MiB`);
          } catch (err) {
            rssNotes.push(`${specKey(spec)} [${v.name}]: ${(err as Error).message}`);
          }
        }
      }
    }
  }
  for (const n of rssNotes) console.error(`bench: ${n}`);
  const loadAfter = await loadAverage();

  const keys = specs.map(specKey);
  const rows = summarizeRows(keys, variants.map((v) => v.name), [...samples.values()], {
    samples: Object.fromEntries(specs.map((s) => [specKey(s), samplesPerStep(s).samples])),
    params,
    ...(torch.available ? { parity } : {}),
  });
  const overheadBase = overhead.seqlora ? median(overhead.seqlora) : null;
  const overheadRows = OVERHEAD_CONFIGS.filter((c) => overhead[c.label]).map((c) => {
    const m = median(overhead[c.label]);
    return {
      config: c.label,
      median_ms_per_step: Number(m.toFixed(1)),
      images_per_second: Number(((1000 * vitBatch) / m).toFixed(1)),
      ratio_vs_seqlora: overheadBase ? Number((m / overheadBase).toFixed(3)) : null,
      samples_ms: overhead[c.label].map((x) => Number(x.toFixed(1))),
    };
  });

  const command = `deno task bench ${args.join(" ")}`.trim();
  const what = `median over ${repeats} interleaved round(s) of the median ms per training step ` +
    `(${steps} timed steps after ${warmup} warm-up steps per job and round)`;
  const result = {
    what,
    command,
    suites,
    flags: {
      configs,
      modes,
      variants: requested.map((v) => v.name),
      steps,
      warmup,
      repeats,
      vitBatch,
      lmBatch,
      lmSeqLength,
      python,
      torchThreads,
      blas: f.blas ?? "auto",
      blasThreads: f["blas-threads"] ?? null,
      preset,
    },
    provenance: await collectProvenance("."),
    dependencies: await dependencyVersions("."),
    machine: {
      cpu: await cpuModel(),
      cpus: navigator.hardwareConcurrency,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadAfter,
      loadAverageAtRoundStarts: roundLoads,
      minutes: Number(minutes.toFixed(1)),
    },
    backend,
    variants: variants.map((v) => v.name),
    skippedVariants: skipped,
    torch,
    specs,
    rows,
    stepSamplesMs: stepSamples,
    torchLosses: torchInfo,
    tfjsLeaks: leaks,
    tfjsPeakRssMiB: Number((peakRss / 2 ** 20).toFixed(1)),
    tfjsPeerRssAfterInitMiB: rssAfterInitMiB,
    memoryPassNotes: rssNotes,
    overhead: suites.includes("overhead")
      ? {
        what: `median ms per training step of task 2 (regulariser and search active for ` +
          `TreeLoRA), preset ${preset}, batch ${vitBatch}, variant ${variants[0].name}`,
        rows: overheadRows,
      }
      : null,
  };
  await writeJsonAtomic(join("results", "bench", `${id}.json`), result);

  const variantNames = variants.map((v) => v.name);
  const md: string[] = [`# bench ${id}`, "", `\`${command}\``, "", `${what}.`, ""];
  md.push(
    `Machine: ${result.machine.cpu}, ${result.machine.cpus} CPUs; load average ` +
      `${loadBefore ?? "?"} before, ${loadAfter ?? "?"} after (1-min at round starts: ${
        roundLoads.map((l) => l?.split(" ")[0] ?? "?").join(", ")
      }); ${result.machine.minutes} min. ` +
      `tfjs ${tf.version.tfjs}, Deno ${Deno.version.deno}.`,
    "",
    `- Backend: ${backend.note}.`,
    `- Variants: ${variantNames.join(", ")}` +
      (skipped.length > 0
        ? `; skipped: ${skipped.map((s) => `${s.variant} (${s.reason})`).join("; ")}`
        : "") +
      ". Every variant uses the fast BatchMatMul gradient.",
  );
  if (standard) {
    md.push(
      torch.available
        ? `- PyTorch peer: torch ${torch.runtime.torch}, Python ${torch.runtime.python} ` +
          `(${torch.runtime.executable}), ${torch.runtime.threads} intra-op thread(s); BLAS: ` +
          `${String(torch.runtime.blas.openblasConfig ?? torch.runtime.blas.buildBlas)}, ` +
          `${String(torch.runtime.blas.openblasThreads ?? "?")} BLAS thread(s).`
        : `- No PyTorch peer: ${torch.reason}.`,
      `- Models: ViT with LoRA r ${CIFAR_SPEC.backbone.lora.rank} / α ` +
        `${CIFAR_SPEC.backbone.lora.alpha} / dropout ${CIFAR_SPEC.backbone.lora.dropout} on q, v ` +
        `of every block, 100-class head, batch ${vitBatch} (32×32×3); LM with LoRA r ` +
        `${TRACE_SPEC.model.lora.rank} / α ${TRACE_SPEC.model.lora.alpha} / dropout ` +
        `${TRACE_SPEC.model.lora.dropout} on q, v of every layer, batch ${lmBatch} × ` +
        `${lmSeqLength} tokens. \`lora\` trains LoRA (+ ViT head); \`full\` trains every base ` +
        `weight (+ ViT head). Adam, clip 1.0, synthetic inputs.`,
      `- samples/s: images (ViT) or sequences (LM). Peak memory: tfjs = peak tensor bytes of ` +
        `one profiled step (weights, optimiser state and activations; FlatAdam's moments, ` +
        `kept in JavaScript arrays, added at 8 bytes per trainable parameter); PyTorch = peak RSS of ` +
        `its process (${
          torch.available
            ? `of which ${
              torch.runtime.rssAfterImportMiB ?? "?"
            } MiB is Python and torch after import`
            : "no peer"
        }). tfjs process peak RSS: ${result.tfjsPeakRssMiB} MiB (all jobs). tfjs peak tensor ` +
        `bytes count every view of a shared buffer (reshapes, the tape's aliased clones) once ` +
        `per view and leave out the runtime: the column to set beside PyTorch's RSS is ` +
        `"peak RSS": each tfjs job run once more, after the timed rounds, in a Deno process of ` +
        `its own (experiments/bench/tfjs_peer.ts; ${
          rssAfterInitMiB === null
            ? "not run"
            : `≤ ${rssAfterInitMiB} MiB of it is Deno and tfjs after start-up`
        }${rssNotes.length > 0 ? `; ${rssNotes.join("; ")}` : ""}).`,
      `- Saved for backward: the activations one step holds for its backward pass, measured at ` +
        `the end of the forward pass, each buffer once, the model's weights left out; tfjs = the ` +
        `tensors its gradient tape saved (tapeSavedBytes, tfjs_steps.ts), PyTorch = the storages ` +
        `autograd saved (saved_tensors_hooks, torch_peer.py). Both free each node's saved ` +
        `tensors as soon as that node's backward has run (tfjs: with the fused ops on, through ` +
        `lib/train/variable_grads.ts; the -unfused variants use tf.variableGrads, which holds ` +
        `them, and every intermediate gradient, to the end of the backward pass).`,
      "",
      stepTable(rows, variantNames, { withTorch: torch.available }),
      "",
    );
    if (leaks.length > 0) md.push(`Tensor leaks: ${leaks.join("; ")}`, "");
  }
  if (result.overhead) {
    md.push(
      `## TreeLoRA overhead and matmul gradient`,
      "",
      `${result.overhead.what}.`,
      "",
      "| config | median ms/step | img/s | ratio vs seqlora | samples (ms) |",
      "| --- | --- | --- | --- | --- |",
      ...overheadRows.map((r) =>
        `| ${r.config} | ${r.median_ms_per_step} | ${r.images_per_second} | ${
          r.ratio_vs_seqlora ?? "–"
        } | ${r.samples_ms.join(", ")} |`
      ),
      "",
    );
  }
  md.push(
    "Times are wall clock on a shared machine; compare columns of the same run (the jobs are " +
      "interleaved, so background load hits all of them alike), not runs on different days. " +
      "The BLAS-backed columns (+blas, PyTorch) run BLAS threads on every core and lose most " +
      "when other processes compete for the cores; single-threaded wasm loses least.",
  );
  await writeFileAtomic(join("results", "bench", `${id}.md`), md.join("\n") + "\n");
  console.log(md.join("\n"));
  console.error(`bench: wrote results/bench/${id}.json and .md`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    console.error(`bench: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
