/**
 * `deno task bench:parity --backend NAME` — does the harness's training step give the numeric
 * reference's losses on another backend? The check to run first on a machine with a GPU
 * (issue 20): the same step code (model, fused ops, clipping, Adam) on `--backend` and on the
 * cpu backend (stock kernels, no BLAS), for the micro ViT and byte-micro LM, LoRA and full
 * fine-tuning, fused ops on and off; each configuration trains `--steps` steps from the same
 * seed and the losses of every step are compared.
 *
 * A GPU backend is optional and not a dependency of the harness, so the recipe adds it to a
 * local checkout first (do not commit the edited deno.json / deno.lock):
 *
 *     deno add npm:@tensorflow/tfjs-backend-webgpu@4.22.0 && deno install
 *     deno task bench:parity --backend webgpu
 *
 * (`tensorflow`: `deno add npm:@tensorflow/tfjs-node-gpu@4.22.0`, then
 * `deno install --allow-scripts=npm:@tensorflow/tfjs-node-gpu`, then
 * `deno run -A experiments/bench/parity.ts --backend tensorflow`.) Where the backend does not
 * start, the task says so in one line and exits 0. Results go to `results/bench/<out>.json`
 * and `.md`; the largest relative difference of a loss is the verdict (tolerance `--tolerance`,
 * default 1e-4: float32 kernels that add in another order differ in the last bits, and the
 * difference grows a little with the steps).
 *
 * @module
 */

import { join } from "@std/path";
import { type BackendName, initBackend } from "../../lib/run/backend.ts";
import { writeFileAtomic, writeJsonAtomic } from "../../lib/io.ts";
import { setFusedOps } from "../../lib/models/fused_ops.ts";
import { collectProvenance, dependencyVersions } from "../../lib/run/provenance.ts";
import { flagHelp, parseFlags } from "../../lib/flags.ts";
import { harnessSpecOptions, specKey, standardSpecs } from "./specs.ts";
import { withHarnessModel } from "./tfjs_steps.ts";

const FLAGS = {
  backend: { type: "string" as const, help: "the backend to check: webgpu, tensorflow, wasm" },
  steps: { type: "number" as const, help: "training steps per configuration", default: "5" },
  tolerance: {
    type: "number" as const,
    help: "largest relative loss difference that passes",
    default: "1e-4",
  },
  out: {
    type: "string" as const,
    help: "result name under results/bench/",
    default: "parity-<backend>",
  },
  help: { type: "boolean" as const, help: "print this help" },
};

/** The per-step losses of one configuration, fused ops on or off, on the current backend. */
async function losses(key: string, steps: number): Promise<number[]> {
  const spec = SPECS.find((s) => specKey(s) === key)!;
  const r = await withHarnessModel(spec, async ({ step }) => {
    const out: number[] = [];
    for (let i = 0; i < steps; i++) out.push((await step()).total);
    return { losses: out };
  });
  if (r.leakedTensors !== 0) throw new Error(`${key}: ${r.leakedTensors} tensors leaked`);
  return r.losses;
}

const SPECS = standardSpecs(
  ["micro", "byte-micro"],
  ["lora", "full"],
  harnessSpecOptions({ vitBatch: 8, lmBatch: 2, lmSeqLength: 32 }),
);

/**
 * The largest relative difference between two loss curves of the same length.
 *
 * @example
 * ```ts
 * import { maxRelativeDifference } from "./parity.ts";
 * maxRelativeDifference([2, 1], [2, 1.001]); // ≈ 0.001
 * ```
 */
export function maxRelativeDifference(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new Error(`loss curves of ${a.length} and ${b.length} steps`);
  return Math.max(0, ...a.map((x, i) => Math.abs(x - b[i]) / Math.max(Math.abs(b[i]), 1e-12)));
}

async function main(args: string[]): Promise<number> {
  const f = parseFlags(args, FLAGS);
  if (f.help) {
    console.log(flagHelp("deno task bench:parity --backend NAME [flags]", FLAGS));
    return 0;
  }
  const backend = f.backend as BackendName | undefined;
  if (!backend || !["webgpu", "tensorflow", "wasm"].includes(backend)) {
    throw new Error(`--backend must be webgpu, tensorflow or wasm, got ${backend}`);
  }
  const steps = (f.steps as number | undefined) ?? 5;
  const tolerance = (f.tolerance as number | undefined) ?? 1e-4;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer`);
  if (!(tolerance >= 0)) throw new Error(`--tolerance must be ≥ 0, got ${tolerance}`);
  let note: string;
  try {
    note = (await initBackend(backend, { blas: "off" })).note;
  } catch (err) {
    console.error(`bench:parity: no ${backend} backend here: ${(err as Error).message}`);
    return 0;
  }
  const rows: { config: string; fused: boolean; checked: number[]; reference: number[] }[] = [];
  for (const fused of [true, false]) {
    setFusedOps(fused);
    for (const s of SPECS) {
      rows.push({
        config: specKey(s),
        fused,
        checked: await losses(specKey(s), steps),
        reference: [],
      });
    }
  }
  await initBackend("cpu", { blas: "off" });
  for (const r of rows) {
    setFusedOps(r.fused);
    r.reference = await losses(r.config, steps);
  }
  setFusedOps(true);
  const table = rows.map((r) => ({
    ...r,
    maxRelDiff: maxRelativeDifference(r.checked, r.reference),
  }));
  const worst = Math.max(...table.map((r) => r.maxRelDiff));
  const pass = worst <= tolerance;
  const id = (f.out as string | undefined) ?? `parity-${backend}`;
  const result = {
    command: `deno task bench:parity ${args.join(" ")}`.trim(),
    backend: note,
    steps,
    tolerance,
    pass,
    rows: table,
    provenance: await collectProvenance("."),
    dependencies: await dependencyVersions("."),
  };
  await writeJsonAtomic(join("results", "bench", `${id}.json`), result);
  const md = [
    `# bench:parity ${backend}`,
    "",
    `\`${result.command}\``,
    "",
    `Backend checked: ${note}. Reference: the cpu backend, stock kernels, no BLAS. ${steps} ` +
    `steps per configuration from seed 0 (the bench's synthetic batch; ViT batch 8, LM 2 × 32 ` +
    `tokens), fused ops on and off. **${pass ? "Pass" : "FAIL"}**: the largest relative loss ` +
    `difference is ${worst.toExponential(2)} (tolerance ${tolerance}).`,
    "",
    "| config | fused ops | losses on the backend | losses on cpu | max relative difference |",
    "| --- | --- | --- | --- | --- |",
    ...table.map((r) =>
      `| ${r.config} | ${r.fused ? "on" : "off"} | ${
        r.checked.map((x) => x.toFixed(6)).join(", ")
      } | ${r.reference.map((x) => x.toFixed(6)).join(", ")} | ${r.maxRelDiff.toExponential(2)} |`
    ),
  ];
  await writeFileAtomic(join("results", "bench", `${id}.md`), md.join("\n") + "\n");
  console.error(
    `bench:parity: ${pass ? "pass" : "FAIL"} (max relative difference ${
      worst.toExponential(2)
    }); wrote results/bench/${id}.md`,
  );
  return pass ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
