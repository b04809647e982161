/**
 * The PyTorch side of `deno task bench`: {@link probeTorch} and
 * {@link runTorchPeer} run `experiments/bench/torch_peer.py` as a child process with
 * the same {@link BenchSpec} (JSON), and {@link parseTorchProbe} /
 * {@link parseTorchPeerOutput} check what it printed.
 *
 * @module
 */

import { type BenchSpec, COUNT_KEYS, type ParamCounts } from "./specs.ts";

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

/** One op of the peer's profile: calls and self CPU ms per step. */
export interface TorchOpTime {
  /** The profiler's row: `aten::mm`, `autograd::engine::evaluate_function: MmBackward0`, … */
  name: string;
  /** Calls per step. */
  calls: number;
  /** Self CPU milliseconds per step (the op's time less the ops it calls). */
  ms: number;
}

/** The peer's profile of `steps` training steps under torch.profiler (per-step averages). */
export interface TorchProfile {
  /** Profiled steps. */
  steps: number;
  /** Every op with a self time, largest first. */
  ops: TorchOpTime[];
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
  /** MiB of the distinct storages autograd saves for backward in one forward pass (weights left out). */
  savedForBackwardMiB?: number;
  /** First and last loss. */
  loss: { first: number; last: number };
  /** Per-op self CPU time under torch.profiler, when the run asked for `profileSteps`. */
  profile?: TorchProfile;
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
 * import { parseTorchProbe } from "./torch_peer.ts";
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
    ...(typeof o.savedForBackwardMiB === "number"
      ? { savedForBackwardMiB: o.savedForBackwardMiB }
      : {}),
    loss: { first: Number(loss.first), last: Number(loss.last) },
    ...(o.profile !== undefined ? { profile: parseTorchProfile(o.profile) } : {}),
  };
}

function parseTorchProfile(v: unknown): TorchProfile {
  const p = v as Record<string, unknown>;
  if (!p || typeof p !== "object" || !Array.isArray(p.ops)) {
    throw new Error(`torch peer: profile must be an object with an ops list`);
  }
  if (typeof p.steps !== "number" || !Number.isInteger(p.steps) || p.steps < 1) {
    throw new Error(`torch peer: profile.steps must be a positive integer`);
  }
  const ops = (p.ops as unknown[]).map((x, i) => {
    const op = x as Record<string, unknown>;
    if (
      !op || typeof op.name !== "string" || typeof op.calls !== "number" || op.calls < 0 ||
      typeof op.ms !== "number" || !(op.ms >= 0)
    ) {
      throw new Error(
        `torch peer: profile.ops[${i}] must be { name: string, calls: number ≥ 0, ms: number ≥ 0 }`,
      );
    }
    return { name: op.name, calls: op.calls, ms: op.ms };
  });
  return { steps: p.steps, ops };
}

/** Where the peer script is. */
export const TORCH_PEER_SCRIPT: string = new URL("./torch_peer.py", import.meta.url).pathname;

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
    const denied = err instanceof Deno.errors.NotCapable ||
      err instanceof Deno.errors.PermissionDenied;
    throw new Error(
      denied
        ? `cannot run ${python}: \`deno task bench\` may start only /usr/bin/python3 (and cat); ` +
          `for another interpreter run \`deno run --allow-read --allow-write=results --allow-env ` +
          `--allow-ffi --allow-run=cat,${python} experiments/bench/mod.ts --python ${python}\``
        : `cannot run ${python}: ${(err as Error).message}`,
    );
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
  options: {
    steps: number;
    warmup: number;
    threads?: number;
    seed?: number;
    /** Steps to run under torch.profiler after the timed ones (0, the default: none). */
    profileSteps?: number;
  },
): Promise<TorchPeerResult> {
  const payload = {
    ...spec,
    steps: options.steps,
    warmup: options.warmup,
    seed: options.seed ?? 0,
    ...(options.profileSteps ? { profileSteps: options.profileSteps } : {}),
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
