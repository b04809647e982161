/**
 * `deno task bench:profile` — where a training step's time goes, per op
 * family, for the configurations issue 20 names (ViT `tiny` with LoRA, ViT
 * `small` fully fine-tuned, the LM `byte-tiny` with LoRA), on the backend
 * variant the bench compares with PyTorch (`wasm+blas`).
 *
 * For each configuration the harness's model (seed 0, the bench's synthetic
 * batch, split-cifar's / trace's LoRA and optimiser settings) runs three
 * nested phases — forward, forward + backward, the whole `optimizerStep`
 * (clipping, Adam) — first timed by the wall clock, then under `tf.profile`
 * for each kernel's time (`tfjs_steps.ts`, `profileTfjsStep`). The report
 * (`profile_report.ts`) gives the phases with the time spent outside kernels,
 * the step's op families and its top kernels. Results go to
 * `results/bench/<out>.json` and `.md` with provenance. When `/usr/bin/python3`
 * (or `--python`) imports torch, each configuration is also profiled in
 * PyTorch (`torch_peer.py`, torch.profiler) and the two are set side by side
 * family by family (`torch_profile.ts`).
 *
 * Example: `deno task bench:profile --out step_profile`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { join } from "@std/path";
import { initBackend } from "../../lib/run/backend.ts";
import { writeFileAtomic, writeJsonAtomic } from "../../lib/io.ts";
import { registerFastMatMulGradient } from "../../lib/models/fast_grads.ts";
import { nativeMatMulStatus, setNativeMatMul } from "../../lib/native_blas.ts";
import { setFusedOps } from "../../lib/models/fused_ops.ts";
import { collectProvenance, dependencyVersions } from "../../lib/run/provenance.ts";
import { flagHelp, parseFlags } from "../../lib/flags.ts";
import { cpuModel, loadAverage } from "./machine.ts";
import { familyShares, phaseRows, profileMarkdown } from "./profile_report.ts";
import {
  type BenchMode,
  harnessSpecOptions,
  SHAPE_FLAGS,
  shapesFromFlags,
  specKey,
  standardSpecs,
} from "./specs.ts";
import { profileTfjsStep, type StepProfile } from "./tfjs_steps.ts";
import { probeTorch, runTorchPeer, type TorchPeerResult } from "./torch_peer.ts";
import { compareFamilies, comparisonMarkdown } from "./torch_profile.ts";

const FLAGS = {
  configs: {
    type: "string-list" as const,
    help: "configuration:mode pairs (ViT or decoder preset : lora|full)",
    default: "tiny:lora,small:full,byte-tiny:lora",
  },
  variant: {
    type: "string" as const,
    help: "wasm or wasm+blas, either with -unfused (the plain tfjs compositions, tf.train.adam)",
    default: "wasm+blas",
  },
  steps: { type: "number" as const, help: "timed and profiled steps per phase", default: "5" },
  warmup: { type: "number" as const, help: "untimed steps before them", default: "2" },
  top: { type: "number" as const, help: "kernels listed per configuration", default: "12" },
  ...SHAPE_FLAGS,
  blas: { type: "string" as const, help: "BLAS library (auto or a path)", default: "auto" },
  python: {
    type: "string" as const,
    help: "python with torch: the same models profiled in PyTorch, family by family",
    default: "/usr/bin/python3",
  },
  "no-torch": { type: "boolean" as const, help: "skip the PyTorch side" },
  out: {
    type: "string" as const,
    help: "result name under results/bench/",
    default: "a timestamp",
  },
  help: { type: "boolean" as const, help: "print this help" },
};

function positive(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
  return v;
}

async function main(args: string[]): Promise<number> {
  const f = parseFlags(args, FLAGS);
  if (f.help) {
    console.log(flagHelp("deno task bench:profile [flags]", FLAGS));
    return 0;
  }
  const pairs = ((f.configs as string[] | undefined) ?? FLAGS.configs.default.split(",")).map(
    (p) => {
      const [config, mode] = p.split(":");
      if (!config || (mode !== "lora" && mode !== "full")) {
        throw new Error(`--configs: "${p}" is not configuration:lora or configuration:full`);
      }
      return { config, mode: mode as BenchMode };
    },
  );
  const variant = (f.variant as string | undefined) ?? "wasm+blas";
  const fused = !variant.endsWith("-unfused");
  const base = variant.replace(/-unfused$/, "");
  if (base !== "wasm" && base !== "wasm+blas") {
    throw new Error(
      `--variant must be wasm or wasm+blas, either with -unfused, got ${variant}`,
    );
  }
  const steps = positive("steps", (f.steps as number | undefined) ?? 5);
  const warmup = (f.warmup as number | undefined) ?? 2;
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error("--warmup must be an integer ≥ 0");
  const top = positive("top", (f.top as number | undefined) ?? 12);
  const shapes = shapesFromFlags(f);

  const id = (f.out as string | undefined) ?? new Date().toISOString().replace(/[:.]/g, "-");

  const loadBefore = await loadAverage();
  const backend = await initBackend("wasm", { blas: (f.blas as string | undefined) ?? "auto" });
  if (base === "wasm+blas" && !nativeMatMulStatus().enabled) {
    throw new Error(`--variant wasm+blas: no native BLAS (${nativeMatMulStatus().note})`);
  }
  registerFastMatMulGradient();
  setNativeMatMul(base === "wasm+blas");
  setFusedOps(fused);

  const python = (f.python as string | undefined) ?? "/usr/bin/python3";
  const probe = f["no-torch"]
    ? { ok: false as const, reason: "--no-torch" }
    : await probeTorch(python);
  if (!probe.ok) console.error(`bench:profile: no PyTorch side (${probe.reason})`);

  const results: { key: string; profile: StepProfile; torch?: TorchPeerResult }[] = [];
  const t0 = performance.now();
  for (const { config, mode } of pairs) {
    const [spec] = standardSpecs([config], [mode], harnessSpecOptions(shapes));
    const key = specKey(spec);
    const profile = await profileTfjsStep(spec, { steps, warmup });
    // The same model in PyTorch, in a process of its own after the tfjs profile: `steps` timed
    // steps (unprofiled median), then `steps` under torch.profiler.
    const torch = probe.ok
      ? await runTorchPeer(python, spec, { steps, warmup, profileSteps: steps })
      : undefined;
    results.push({ key, profile, ...(torch ? { torch } : {}) });
    console.error(
      `bench:profile ${key} [${variant}]: step ${profile.step.wallMs.toFixed(1)} ms` +
        (torch ? `, PyTorch ${torch.medianMs.toFixed(1)} ms` : ""),
    );
  }
  setNativeMatMul(false);
  const minutes = (performance.now() - t0) / 60000;
  const loadAfter = await loadAverage();

  const command = `deno task bench:profile ${args.join(" ")}`.trim();
  const machine = {
    cpu: await cpuModel(),
    cpus: navigator.hardwareConcurrency,
    loadAverageBefore: loadBefore,
    loadAverageAfter: loadAfter,
    minutes: Number(minutes.toFixed(1)),
  };
  await writeJsonAtomic(join("results", "bench", `${id}.json`), {
    what: `per-kernel time of one training step in three nested phases (forward, ` +
      `forward + backward, optimizerStep), ${steps} wall-timed then ${steps} profiled steps ` +
      `after ${warmup} warm-up steps per phase, variant ${variant}`,
    command,
    flags: { configs: pairs, variant, steps, warmup, top, ...shapes, blas: f.blas ?? "auto" },
    provenance: await collectProvenance("."),
    dependencies: await dependencyVersions("."),
    machine,
    backend,
    torch: probe.ok ? probe.runtime : { unavailable: probe.reason },
    results: results.map(({ key, profile, torch }) => ({
      key,
      phases: phaseRows(profile),
      families: familyShares(profile.step.kernels, { wallMs: profile.step.wallMs }),
      profile,
      ...(torch?.profile
        ? {
          torch: {
            medianMs: torch.medianMs,
            params: torch.params,
            families: compareFamilies(profile.step, torch.profile),
            profile: torch.profile,
          },
        }
        : {}),
    })),
  });

  const md: string[] = [
    `# bench ${id}: where a training step's time goes`,
    "",
    `\`${command}\``,
    "",
    `Machine: ${machine.cpu}, ${machine.cpus} CPUs; load average ${loadBefore ?? "?"} before, ` +
    `${loadAfter ?? "?"} after; ${machine.minutes} min. tfjs ${tf.version.tfjs}, Deno ` +
    `${Deno.version.deno}. Backend: ${backend.note}; variant ${variant}.`,
    "",
    `Each phase ran ${warmup} warm-up steps, ${steps} steps timed by the wall clock (median ` +
    `shown) and ${steps} steps under \`tf.profile\` (mean kernel time per step). ` +
    "`backward` = forward + backward − forward and `clip + Adam` = step − forward + backward, " +
    "as differences of medians. Forward + backward computes the gradients as `optimizerStep` " +
    "does (with the fused ops on, the releasing backward pass of lib/train/variable_grads.ts). " +
    "Kernel time is the wall clock around each kernel's synchronous " +
    "call; outside kernels is the rest: the gradient tape, tensor allocation and disposal, " +
    "`tf.tidy` bookkeeping and JavaScript glue. Profiling adds its own overhead per kernel, so " +
    "the in-kernel times are upper bounds and the shares are what to read.",
    "",
    probe.ok
      ? `PyTorch side: torch ${probe.runtime.torch} (${python}), ${probe.runtime.threads} ` +
        "intra-op thread(s), the same model, batch and optimiser (`torch_peer.py`), in a " +
        `process of its own after each tfjs profile: ${steps} timed steps, then ${steps} under ` +
        "torch.profiler (self CPU time per op, which includes the profiler's own cost per op). " +
        "Its ops are grouped into the same families (`torch_profile.ts`: layer norm, one " +
        "kernel there, counts as element-wise; `framework` is autograd's engine and the " +
        "optimiser's Python, set beside tfjs's time outside kernels: the step's median wall " +
        "time less its profiled kernel time, 0 when negative). Both profilers add a cost per op, " +
        "so the families' sums exceed the unprofiled steps; read the ratios and differences."
      : `PyTorch side: not run (${probe.reason}).`,
    "",
  ];
  for (const { key, profile, torch } of results) {
    md.push(profileMarkdown(`${key} (${variant})`, profile, { top }));
    if (torch?.profile) {
      md.push(comparisonMarkdown(profile, torch.profile, { torchMedianMs: torch.medianMs, top }));
    }
  }
  await writeFileAtomic(join("results", "bench", `${id}.md`), md.join("\n") + "\n");
  console.log(md.join("\n"));
  console.error(`bench:profile: wrote results/bench/${id}.json and .md`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    console.error(`bench:profile: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
