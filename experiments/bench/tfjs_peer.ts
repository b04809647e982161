/**
 * One bench job in a process of its own, for the process's peak resident memory, measured as
 * the PyTorch peer measures its own (VmHWM of /proc/self/status): the figure to set beside
 * PyTorch's peak RSS. tfjs's "peak tensor bytes" is not that figure: tfjs counts the bytes of
 * every tensor, so views that share a buffer (reshapes, the gradient tape's aliased clones) are
 * counted once per view, and the wasm heap, JavaScript arrays and the runtime are not counted.
 *
 * Run by `deno task bench` (never by hand needed):
 * `deno run --allow-read --allow-env --allow-run=cat --allow-ffi=<BLAS dirs> experiments/bench/tfjs_peer.ts
 * --spec JSON --variant NAME --steps N --warmup W`; prints one JSON line:
 * `{ deno, peakRssMiB, rssAfterInitMiB, msPerStep, leakedTensors }`.
 *
 * @module
 */

import { initBackend } from "../../lib/run/backend.ts";
import { setFusedOps } from "../../lib/models/fused_ops.ts";
import { setNativeMatMul } from "../../lib/native_blas.ts";
import { parseFlags } from "../../lib/flags.ts";
import type { BenchSpec } from "./specs.ts";
import { timeTfjsSteps } from "./tfjs_steps.ts";
import { variantOf } from "./variants.ts";

/** What one peer run printed. */
export interface TfjsPeerResult {
  /** The Deno version of the peer process. */
  deno: string;
  /** Peak resident set size of the peer process, MiB (VmHWM). */
  peakRssMiB: number;
  /** Resident set size after the backend started, before the model was built, MiB. */
  rssAfterInitMiB: number;
  /** ms of each timed step. */
  msPerStep: number[];
  /** Tensors left over (0 = no leak). */
  leakedTensors: number;
}

/**
 * VmHWM (peak resident set size) of this process in MiB, from /proc/<pid>/status read by `cat`
 * (needs `--allow-run=cat`); null where that file does not exist (not Linux).
 *
 * @example
 * ```ts ignore
 * import { peakRssMiB } from "./tfjs_peer.ts";
 * await peakRssMiB(); // e.g. 212.4 on Linux, null on macOS
 * ```
 */
export async function peakRssMiB(): Promise<number | null> {
  // Through `cat`: Deno lets a script read /proc/self only with --allow-all.
  let text: string;
  try {
    const out = await new Deno.Command("cat", {
      args: [`/proc/${Deno.pid}/status`],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return null;
    text = new TextDecoder().decode(out.stdout);
  } catch {
    return null;
  }
  const line = text.split("\n").find((l) => l.startsWith("VmHWM:"));
  const kib = line ? Number(line.split(/\s+/)[1]) : NaN;
  return Number.isFinite(kib) ? Number((kib / 1024).toFixed(1)) : null;
}

/**
 * Read the peer's one JSON line (the last line of its output that parses as an object) and
 * check its fields.
 *
 * @example
 * ```ts
 * import { parseTfjsPeerOutput } from "./tfjs_peer.ts";
 * parseTfjsPeerOutput('{"deno":"2.9.6","peakRssMiB":210,"rssAfterInitMiB":90,"msPerStep":[5],"leakedTensors":0}');
 * ```
 */
export function parseTfjsPeerOutput(out: string): TfjsPeerResult {
  const line = out.trim().split("\n").reverse().find((l) => l.trim().startsWith("{"));
  if (!line) throw new Error(`tfjs peer: no JSON line in its output: ${out.slice(-300)}`);
  const o = JSON.parse(line) as Record<string, unknown>;
  if (typeof o.deno !== "string") throw new Error(`tfjs peer: field deno is not a string: ${line}`);
  for (const k of ["peakRssMiB", "rssAfterInitMiB", "leakedTensors"]) {
    if (typeof o[k] !== "number") throw new Error(`tfjs peer: field ${k} is not a number: ${line}`);
  }
  if (!Array.isArray(o.msPerStep) || !o.msPerStep.every((x) => typeof x === "number")) {
    throw new Error(`tfjs peer: field msPerStep is not a list of numbers: ${line}`);
  }
  return o as unknown as TfjsPeerResult;
}

/**
 * Run one job in a peer process (`deno` from PATH, the permissions of the module doc) and
 * return what it printed; an error carries the peer's stderr tail.
 *
 * @example
 * ```ts ignore
 * const r = await runTfjsPeer(spec, { variant: "wasm+blas", steps: 5, warmup: 2, ffi: "/usr/lib" });
 * ```
 */
export async function runTfjsPeer(
  spec: BenchSpec,
  options: { variant: string; steps: number; warmup: number; ffi: string },
): Promise<TfjsPeerResult> {
  const script = new URL("./tfjs_peer.ts", import.meta.url).pathname;
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      "--allow-run=cat",
      `--allow-ffi=${options.ffi}`,
      script,
      "--spec",
      JSON.stringify(spec),
      "--variant",
      options.variant,
      "--steps",
      String(options.steps),
      "--warmup",
      String(options.warmup),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr);
    throw new Error(`tfjs peer (${options.variant}) failed (exit ${out.code}): ${err.slice(-500)}`);
  }
  return parseTfjsPeerOutput(stdout);
}

async function main(args: string[]): Promise<void> {
  const f = parseFlags(args, {
    spec: { type: "string", help: "the BenchSpec as JSON" },
    variant: { type: "string", help: "the backend variant (wasm, wasm+blas, …-unfused)" },
    steps: { type: "number", help: "timed steps" },
    warmup: { type: "number", help: "untimed steps before them" },
  });
  const spec = JSON.parse(f.spec as string) as BenchSpec;
  const variant = variantOf(f.variant as string);
  if (variant.backend !== "wasm" && variant.backend !== "cpu") {
    throw new Error(`tfjs peer: ${variant.name}: process memory is measured on cpu/wasm only`);
  }
  await initBackend(variant.backend, { blas: variant.blas ? "auto" : "off" });
  setNativeMatMul(variant.blas);
  setFusedOps(variant.fused);
  const rssAfterInitMiB = (await peakRssMiB()) ?? NaN;
  const t = await timeTfjsSteps(spec, {
    steps: f.steps as number,
    warmup: f.warmup as number,
  });
  console.log(JSON.stringify({
    deno: Deno.version.deno,
    peakRssMiB: (await peakRssMiB()) ?? NaN,
    rssAfterInitMiB,
    msPerStep: t.msPerStep.map((x) => Number(x.toFixed(2))),
    leakedTensors: t.leakedTensors,
  }));
}

if (import.meta.main) await main(Deno.args);
