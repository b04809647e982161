/**
 * Backend selection for TensorFlow.js.
 *
 * {@link initBackend} picks and initialises a tfjs backend, installs the fast
 * `BatchMatMul` gradient (see `models/fast_grads.ts`) and returns a
 * {@link BackendInfo} record that the caller prints and stores with the run.
 *
 * - `"wasm"` (`@tensorflow/tfjs-backend-wasm`, XNNPACK + SIMD) is the fast
 *   backend on this project's machines.
 * - `"cpu"` (pure JS, bundled with `@tensorflow/tfjs`) is the numeric reference.
 * - `"tensorflow"` (`@tensorflow/tfjs-node-gpu` or `@tensorflow/tfjs-node`) and
 *   `"webgpu"` (`@tensorflow/tfjs-backend-webgpu`) are optional. They are not
 *   dependencies of the harness and are loaded only if already installed in the
 *   project's `node_modules`: a runtime `import("npm:…")` of a package that is
 *   not installed would make Deno download it and record it in `deno.lock`, so
 *   {@link initBackend} checks for an installed copy first and otherwise fails
 *   (or, under `"auto"`, moves on) with a message saying how to install it.
 * - `"auto"` tries tensorflow (gpu, then cpu build), then wasm, then cpu.
 *
 * On the wasm and cpu backends the `BatchMatMul` kernel calls the system BLAS
 * (`cblas_sgemm` through Deno FFI; see `native_blas.ts`) when a library is
 * found and `--allow-ffi` is granted (option `blas`, default `"auto"`); the
 * record of what ran is {@link BackendInfo.blas}.
 *
 * tfjs is a global singleton: the backend chosen here serves every model in
 * the process. Tensors follow a backend switch lazily, except out of webgpu,
 * which cannot read data synchronously (dispose webgpu tensors before switching).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { registerFastMatMulGradient, restoreStockMatMulGradient } from "../models/fast_grads.ts";
import { type BlasRequest, type BlasStatus, configureNativeMatMul } from "../native_blas.ts";

export {
  type BlasRequest,
  type BlasStatus,
  nativeMatMulStatus,
  setNativeMatMul,
} from "../native_blas.ts";

/** A backend request. */
export type BackendName = "auto" | "tensorflow" | "wasm" | "cpu" | "webgpu";

/** The backend names {@link initBackend} accepts. */
export const BACKEND_NAMES: readonly BackendName[] = [
  "auto",
  "tensorflow",
  "wasm",
  "cpu",
  "webgpu",
];

/** What {@link initBackend} did, for the log and the run's `config.json`. */
export interface BackendInfo {
  /** The request. */
  requested: BackendName;
  /** The active backend, as `tf.getBackend()` reports it. */
  name: string;
  /** Version of `@tensorflow/tfjs`. */
  tfjsVersion: string;
  /** Worker threads of the backend (wasm only). */
  threads?: number;
  /** Whether the wasm backend runs its SIMD build (wasm only). */
  simd?: boolean;
  /** Whether the fast BatchMatMul gradient is installed. */
  fastMatMulGradient: boolean;
  /** Native BLAS matmul: whether it runs, the library, its threads, the kernels, or why not. */
  blas: BlasStatus;
  /** Human-readable account: fallbacks taken and why. */
  note: string;
}

/** Options of {@link initBackend}. */
export interface InitBackendOptions {
  /** Install the fast BatchMatMul gradient (default true); false restores the stock one. */
  fastGradients?: boolean;
  /** Silence tfjs's "Hi, looks like you are running TensorFlow.js in Node.js" banner (default true). */
  quiet?: boolean;
  /**
   * wasm worker threads. tfjs disables wasm threads when it detects Node (as under Deno),
   * so values above 1 normally have no effect; the actual count is reported.
   */
  threads?: number;
  /**
   * Native BLAS matmul on the wasm and cpu backends: `"auto"` (default) finds the system
   * library (OpenBLAS, MKL, Accelerate), `"off"` keeps the stock kernels, anything else is a
   * library path. A library that cannot be opened is not an error: the stock kernels run and
   * {@link BackendInfo.blas} says why.
   */
  blas?: BlasRequest;
  /** BLAS threads (default `navigator.hardwareConcurrency`). */
  blasThreads?: number;
}

const WASM_SPECIFIER = "@tensorflow/tfjs-backend-wasm";

/**
 * Select and initialise a tfjs backend; install the fast BatchMatMul gradient.
 *
 * @example
 * ```ts
 * import { initBackend } from "./backend.ts";
 * const info = await initBackend("wasm");
 * console.log(`backend ${info.name} (requested ${info.requested}): ${info.note}`);
 * ```
 */
export async function initBackend(
  name: BackendName,
  options: InitBackendOptions = {},
): Promise<BackendInfo> {
  if (!BACKEND_NAMES.includes(name)) {
    throw new Error(`initBackend: unknown backend "${name}"; known: ${BACKEND_NAMES.join(", ")}`);
  }
  if (options.blas !== undefined && (typeof options.blas !== "string" || options.blas === "")) {
    throw new Error(
      `initBackend: blas must be "auto", "off" or a library path, got ${options.blas}`,
    );
  }
  const bt = options.blasThreads;
  if (bt !== undefined && (!Number.isInteger(bt) || bt < 1)) {
    throw new Error(`initBackend: blasThreads must be a positive integer, got ${bt}`);
  }
  const fast = options.fastGradients ?? true;
  if (fast) registerFastMatMulGradient();
  else restoreStockMatMulGradient();
  const quiet = options.quiet ?? true;

  let result: { threads?: number; simd?: boolean; note: string };
  switch (name) {
    case "cpu":
      result = await useCpu(quiet);
      break;
    case "wasm":
      result = await useWasm(options.threads);
      break;
    case "tensorflow":
      result = await useTensorflow();
      break;
    case "webgpu":
      result = await useWebgpu();
      break;
    case "auto":
      result = await useAuto(options.threads, quiet);
      break;
  }
  const blas = configureNativeMatMul(tf.getBackend(), {
    blas: options.blas,
    threads: options.blasThreads,
  });
  return {
    requested: name,
    name: tf.getBackend(),
    tfjsVersion: tf.version.tfjs,
    ...(result.threads !== undefined ? { threads: result.threads } : {}),
    ...(result.simd !== undefined ? { simd: result.simd } : {}),
    fastMatMulGradient: fast,
    blas,
    note: result.note + (fast ? "; fast BatchMatMul gradient" : "; stock BatchMatMul gradient") +
      `; ${blas.note}`,
  };
}

async function useCpu(quiet: boolean): Promise<{ note: string }> {
  if (!(await tf.setBackend("cpu"))) {
    throw new Error("initBackend: the cpu backend failed to start");
  }
  if (quiet) silenceCpuBanner();
  return { note: "pure-JS cpu backend (numeric reference; slow)" };
}

/** The cpu backend prints its banner on its first write; mark it as already used. */
function silenceCpuBanner(): void {
  const cpu = tf.findBackend("cpu") as unknown as { firstUse?: boolean } | null;
  if (cpu && "firstUse" in cpu) cpu.firstUse = false;
}

async function useWasm(
  threads?: number,
): Promise<{ threads: number; simd: boolean; note: string }> {
  const wasm = await import(WASM_SPECIFIER);
  if (threads !== undefined && threads > 0) wasm.setThreadsCount(threads);
  let ok = false;
  let reason = "";
  try {
    ok = await tf.setBackend("wasm");
  } catch (err) {
    reason = `: ${(err as Error).message}`;
  }
  if (!ok) throw new Error(`initBackend: the wasm backend failed to initialise${reason}`);
  const simd = Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"));
  const count = wasm.getThreadsCount() as number;
  return {
    threads: count,
    simd,
    note: `wasm backend (XNNPACK${simd ? ", SIMD" : ", no SIMD"}, ${count} thread${
      count === 1 ? "" : "s"
    })`,
  };
}

/**
 * Find an installed copy of an optional npm package in a `node_modules`
 * folder (the project's, next to this file, or the working directory's).
 * Returns its version, or null when none is installed.
 */
async function installedVersion(pkg: string): Promise<string | null> {
  const roots: string[] = [];
  if (import.meta.url.startsWith("file:")) {
    roots.push(new URL("../node_modules/", import.meta.url).pathname);
  }
  try {
    roots.push(`${Deno.cwd()}/node_modules/`);
  } catch { /* no read permission for cwd */ }
  const prefix = pkg.replace("/", "+") + "@";
  for (const root of roots) {
    try {
      for await (const entry of Deno.readDir(`${root}.deno`)) {
        if (entry.name.startsWith(prefix)) return entry.name.slice(prefix.length).split("_")[0];
      }
    } catch { /* no such folder or no permission */ }
    try {
      const meta = JSON.parse(await Deno.readTextFile(`${root}${pkg}/package.json`));
      if (typeof meta.version === "string") return meta.version;
    } catch { /* not there */ }
  }
  return null;
}

function notInstalled(pkg: string): Error {
  return new Error(
    `${pkg} is not installed (it is optional and not a dependency of the harness; to use it, ` +
      `add it with \`deno add npm:${pkg}@${tf.version.tfjs}\` and run \`deno install\`` +
      (pkg.includes("tfjs-node") ? ` --allow-scripts=npm:${pkg}` : "") + ")",
  );
}

/**
 * Import an installed optional package. The specifier is built at run time so
 * that `deno install` and the lock file never see it.
 */
async function importInstalled(pkg: string, version: string): Promise<void> {
  const specifier = ["npm:", pkg, "@", version].join("");
  try {
    await import(specifier);
  } catch (err) {
    throw new Error(`${pkg}@${version} is installed but failed to load: ${(err as Error).message}`);
  }
}

/** Import an optional package if it is installed; otherwise throw {@link notInstalled}. */
async function importOptional(pkg: string): Promise<{ version: string }> {
  const version = await installedVersion(pkg);
  if (version === null) throw notInstalled(pkg);
  await importInstalled(pkg, version);
  return { version };
}

async function useTensorflow(): Promise<{ note: string }> {
  const reasons: string[] = [];
  for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
    try {
      const { version } = await importOptional(pkg);
      if (!tf.findBackendFactory("tensorflow")) {
        throw new Error(
          `${pkg}@${version} loaded but registered no "tensorflow" backend with this ` +
            `@tensorflow/tfjs@${tf.version.tfjs} (version or instance mismatch)`,
        );
      }
      if (!(await tf.setBackend("tensorflow"))) {
        throw new Error(`${pkg}@${version}: the tensorflow backend failed to initialise`);
      }
      return { note: `tensorflow backend from ${pkg}@${version} (native TensorFlow)` };
    } catch (err) {
      reasons.push((err as Error).message);
    }
  }
  throw new Error(`initBackend("tensorflow"): no native TensorFlow backend: ${reasons.join("; ")}`);
}

async function useWebgpu(): Promise<{ note: string }> {
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) throw new Error(`initBackend("webgpu"): this runtime has no navigator.gpu`);
  const pkg = "@tensorflow/tfjs-backend-webgpu";
  const version = await installedVersion(pkg);
  if (version === null) throw new Error(`initBackend("webgpu"): ${notInstalled(pkg).message}`);
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error(`initBackend("webgpu"): navigator.gpu.requestAdapter() gave null`);
  try {
    await importInstalled(pkg, version);
  } catch (err) {
    throw new Error(`initBackend("webgpu"): ${(err as Error).message}`);
  }
  if (!(await tf.setBackend("webgpu"))) {
    throw new Error(`initBackend("webgpu"): the webgpu backend failed to initialise`);
  }
  const info = (adapter as { info?: { description?: string; vendor?: string } }).info;
  const label = info?.description || info?.vendor || "unknown adapter";
  return {
    note:
      `webgpu backend from @tensorflow/tfjs-backend-webgpu@${version} on ${label}; read tensors ` +
      `with await t.data() (dataSync fails on webgpu)`,
  };
}

/** "X is not installed (…how to install…)" → "X not installed", for the compact auto note. */
function shortReason(message: string): string {
  return message
    .replace(/^initBackend\("tensorflow"\): no native TensorFlow backend: /, "")
    .replace(/(@tensorflow\/[\w-]+) is not installed \([^)]*\)/g, "$1 not installed");
}

async function useAuto(
  threads: number | undefined,
  quiet: boolean,
): Promise<{ threads?: number; simd?: boolean; note: string }> {
  const skipped: string[] = [];
  try {
    const r = await useTensorflow();
    return { note: `auto: ${r.note}` };
  } catch (err) {
    skipped.push(shortReason((err as Error).message));
  }
  try {
    const r = await useWasm(threads);
    return { ...r, note: `auto: ${r.note} (skipped: ${skipped.join("; ")})` };
  } catch (err) {
    skipped.push((err as Error).message);
  }
  const r = await useCpu(quiet);
  return { note: `auto: ${r.note} (skipped: ${skipped.join("; ")})` };
}
