/**
 * Native matrix multiply: the `BatchMatMul` kernel of the wasm and cpu
 * backends replaced by `cblas_sgemm` of the system BLAS, called through Deno
 * FFI (OpenBLAS on Linux, Accelerate on macOS, MKL when that is what is
 * installed).
 *
 * The wasm backend keeps every tensor in its WebAssembly heap
 * (`backend.dataIdMap.get(dataId).memoryOffset`, a byte offset into
 * `backend.wasm.HEAPU8.buffer`), always dense and row-major. The native kernel
 * allocates its output with `backend.makeOutput` first (an allocation may grow
 * the heap and detach the old `ArrayBuffer`), then takes `Float32Array` views
 * of the current heap at the three tensors' offsets and hands them to
 * `cblas_sgemm` with `CblasRowMajor`; `transposeA`/`transposeB` become
 * `CblasTrans` flags, so no transposed copy is made. Batch dimensions (with
 * broadcasting) become one sgemm call per output matrix, or a single call when
 * `b` has no batch and `a` is not transposed (the batch folds into the rows).
 * The cpu backend's tensors are plain `Float32Array`s and are passed directly.
 *
 * The BLAS thread count is set explicitly (`openblas_set_num_threads`,
 * `MKL_Set_Num_Threads`; default `navigator.hardwareConcurrency`) so that the
 * library does not oversubscribe the cores; products smaller than
 * {@link SMALL_PRODUCT_MACS} multiply-adds run on one thread.
 *
 * The module also removes a copy the gradient tape makes on wasm: tfjs saves
 * every tensor a gradient needs through `Identity` (a clone), the clone's
 * gradient is a `Cast` to float32, and every `Multiply` gradient casts its
 * inputs to float32. The wasm backend's `Identity` and `Cast` copy the whole
 * buffer even when the dtype does not change (about 10% of a ViT training
 * step's kernel time). {@link setAliasingCopies} (on by default from
 * {@link configureNativeMatMul}, whatever the BLAS request) registers versions
 * that share the input's buffer instead, reference counted as `Reshape` does
 * and as the cpu backend's `Identity` already does; tensors are immutable
 * (variables get new buffers on `assign`), so the results are bit-identical.
 *
 * {@link configureNativeMatMul} is what `initBackend` calls; when no library is
 * found, or `--allow-ffi` is not granted, it leaves the stock kernels in place
 * and prints one line saying why. {@link setNativeMatMul} switches between the
 * native and the stock kernels at run time (for interleaved comparisons) and
 * {@link nativeMatMulStatus} reports what is in use.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { DataType } from "./tensor.ts";
import { elfExports } from "./elf_symbols.ts";

/** `--blas` request: search the usual libraries, use none, or open this path. */
export type BlasRequest = "auto" | "off" | (string & Record<never, never>);

/** What native BLAS is doing (the `blas` field of `BackendInfo`). */
export interface BlasStatus {
  /** True when the active backend's matmul kernels call the native library. */
  enabled: boolean;
  /** The library opened (as given to `Deno.dlopen`: a soname or a path). */
  library?: string;
  /** BLAS threads (as read back from the library where it can tell). */
  threads?: number;
  /** Kernels of the active backend that run natively (empty when disabled). */
  kernels: string[];
  /** Human-readable account: library, version, threads, or why the stock kernels run. */
  note: string;
}

/** Options of {@link configureNativeMatMul}. */
export interface NativeMatMulOptions {
  /** `"auto"` (default) searches the usual libraries, `"off"` keeps the stock kernels, else a path. */
  blas?: BlasRequest;
  /** BLAS threads (default `navigator.hardwareConcurrency`). */
  threads?: number;
  /** Where the one-line fallback message goes (default `console.warn`). */
  warn?: (line: string) => void;
  /**
   * sgemm calls with fewer multiply-adds (m·n·k) than this run on one BLAS thread (default
   * {@link SMALL_PRODUCT_MACS}; null = every call on all threads).
   */
  smallProductMacs?: number | null;
}

/**
 * Default size (m·n·k multiply-adds of one sgemm call) below which the native
 * kernel runs the call on one BLAS thread, 2²⁶ (ViT-tiny, ViT-tiny-p8 and
 * the byte-tiny LM have no larger product; ViT-small's MLP has). A
 * training step interleaves matmuls with many other kernels; between calls
 * OpenBLAS's worker threads spin or sleep, competing for the cores with the
 * main thread or needing to be woken, which costs more than splitting a
 * product this small saves.
 */
export const SMALL_PRODUCT_MACS = 1 << 26;

/** The backends whose `BatchMatMul` the native kernel can replace. */
export const NATIVE_BLAS_BACKENDS: readonly string[] = ["wasm", "cpu"];

const KERNEL = "BatchMatMul";
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32", // order
      "i32", // transA
      "i32", // transB
      "i32", // M
      "i32", // N
      "i32", // K
      "f32", // alpha
      "buffer", // A
      "i32", // lda
      "buffer", // B
      "i32", // ldb
      "f32", // beta
      "buffer", // C
      "i32", // ldc
    ],
    result: "void",
  },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
  MKL_Set_Num_Threads: { parameters: ["i32"], result: "void", optional: true },
  MKL_Get_Max_Threads: { parameters: [], result: "i32", optional: true },
} as const;

type BlasLibrary = Deno.DynamicLibrary<typeof SYMBOLS>;
type Sgemm = BlasLibrary["symbols"]["cblas_sgemm"];

interface Loaded {
  lib: BlasLibrary;
  /** As given to dlopen. */
  path: string;
  /** "OpenBLAS 0.3.21 … SkylakeX", "MKL", "Accelerate", or "unknown BLAS". */
  flavour: string;
}

/** The library in use, if any. */
let loaded: Loaded | null = null;
/** BLAS threads as last set (or read back). */
let threadsInUse: number | undefined;
/** Threads the library runs with right now (small products run on one thread). */
let threadsNow: number | undefined;
/** sgemm calls with fewer multiply-adds run on one BLAS thread; null = always all threads. */
let smallProductMacs: number | null = null;
/** Stock kernel configs, per backend, captured before the first replacement. */
const stock = new Map<string, tf.KernelConfig>();
/** Native kernel configs, per backend. */
const native = new Map<string, tf.KernelConfig>();
/** Whether the native kernels are registered. */
let registered = false;
/** Why the native kernels are not in use (when they are not). */
let offReason = "native BLAS not configured (initBackend sets it up)";
/** Fallback lines already printed (each is printed once per process). */
const warned = new Set<string>();

/**
 * Directories where system BLAS libraries live, per OS: `"auto"` looks only here, and the
 * `exp:*`, `rerun` and `bench` tasks of deno.json grant `--allow-ffi` for exactly these paths
 * (a test checks the two lists agree). A library elsewhere needs the task's command with a
 * wider `--allow-ffi=DIR` typed by the user (docs/security.md).
 */
export const BLAS_DIRS: Readonly<Record<string, readonly string[]>> = {
  linux: [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
    "/opt/OpenBLAS/lib",
    "/opt/intel/oneapi/mkl/latest/lib",
  ],
  darwin: [
    "/System/Library/Frameworks/Accelerate.framework",
    "/opt/homebrew/opt/openblas/lib",
    "/usr/local/opt/openblas/lib",
    "/opt/intel/oneapi/mkl/latest/lib",
  ],
  windows: [],
};

/** File names tried by `"auto"` in each of {@link BLAS_DIRS}, in order, for this OS. */
function blasNames(os: string): string[] {
  switch (os) {
    case "darwin":
      return ["Accelerate", "libopenblas.dylib", "libmkl_rt.2.dylib", "libmkl_rt.dylib"];
    case "windows":
      return ["libopenblas.dll", "openblas.dll", "mkl_rt.2.dll", "mkl_rt.dll"];
    default:
      return ["libopenblas.so.0", "libopenblas.so", "libmkl_rt.so.2", "libmkl_rt.so"];
  }
}

/**
 * Library paths tried by `"auto"`, in order, for this OS: every name in every directory of
 * {@link BLAS_DIRS} (full paths, so that a path-restricted `--allow-ffi` covers them; on
 * Windows, where the tasks grant no directory, the bare names).
 */
export function blasCandidates(os: string = Deno.build.os): string[] {
  const dirs = BLAS_DIRS[os] ?? BLAS_DIRS.linux;
  const names = blasNames(os);
  if (dirs.length === 0) return names;
  return dirs.flatMap((d) => names.map((n) => `${d}/${n}`));
}

function ffiGranted(path: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "ffi", path }).state === "granted";
  } catch {
    return false;
  }
}

/**
 * Why the file at `path` must not be loaded as a BLAS library, or null when it may: on Linux
 * it must be an ELF shared object whose dynamic symbol table defines `cblas_sgemm` (read from
 * the file, before `dlopen` runs any of its code). Elsewhere the file must exist; the symbol
 * is then checked by `dlopen` itself.
 */
export function blasFileRefusal(path: string, os: string = Deno.build.os): string | null {
  try {
    if (!Deno.statSync(path).isFile) return `${path} is not a file`;
  } catch (err) {
    return `${path}: ${firstLine((err as Error).message)}`;
  }
  if (os !== "linux") return null;
  try {
    const { names } = elfExports(path);
    return names.has("cblas_sgemm")
      ? null
      : `${path} does not export cblas_sgemm: not a BLAS library, not loaded`;
  } catch (err) {
    return `${firstLine((err as Error).message)}; not loaded`;
  }
}

/**
 * Copy a NUL-terminated C string out of native memory. `Deno.UnsafePointerView` needs
 * unrestricted `--allow-ffi`; libc's `strncpy` into a buffer of ours needs only the path of
 * libc, which lies in {@link BLAS_DIRS}. Returns null when libc cannot be opened.
 */
function readCString(pointer: Deno.PointerObject, maxBytes = 512): string | null {
  for (const dir of BLAS_DIRS[Deno.build.os] ?? []) {
    const path = `${dir}/libc.so.6`;
    if (!ffiGranted(path)) continue;
    try {
      Deno.statSync(path);
    } catch {
      continue;
    }
    const libc = Deno.dlopen(
      path,
      {
        strncpy: { parameters: ["buffer", "pointer", "usize"], result: "pointer" },
      } as const,
    );
    try {
      const buf = new Uint8Array(maxBytes + 1);
      libc.symbols.strncpy(buf, pointer, BigInt(maxBytes));
      const end = buf.indexOf(0);
      return new TextDecoder().decode(buf.subarray(0, end < 0 ? maxBytes : end));
    } finally {
      libc.close();
    }
  }
  return null;
}

function open(path: string): Loaded {
  const lib = Deno.dlopen(path, SYMBOLS);
  let flavour = "unknown BLAS";
  if (lib.symbols.openblas_get_config) {
    const p = lib.symbols.openblas_get_config();
    flavour = (p ? readCString(p) : null) ?? "OpenBLAS";
  } else if (lib.symbols.MKL_Set_Num_Threads) {
    flavour = "MKL";
  } else if (path.includes("Accelerate")) {
    flavour = "Accelerate";
  }
  return { lib, path, flavour };
}

/** Open the requested library or return why not. */
function load(request: string): Loaded | string {
  if (typeof Deno.dlopen !== "function") return "this Deno has no Deno.dlopen";
  const auto = request === "auto";
  const paths = auto ? blasCandidates() : [request];
  if (loaded && paths.includes(loaded.path)) return loaded;
  const failures: string[] = [];
  let present = 0;
  for (const path of paths) {
    if (auto && path.includes("/") && !existsSync(path)) continue;
    present++;
    if (!ffiGranted(path)) {
      failures.push(`${path}: --allow-ffi does not cover it`);
      continue;
    }
    const refusal = blasFileRefusal(path);
    if (refusal) {
      failures.push(refusal);
      continue;
    }
    try {
      // A library opened before stays open: unloading a BLAS whose worker threads exist is
      // not safe everywhere, and a second handle costs nothing.
      loaded = open(path);
      return loaded;
    } catch (err) {
      failures.push(`${path}: ${firstLine((err as Error).message)}`);
    }
  }
  if (auto && present === 0) {
    return `no BLAS library found (looked for ${blasNames(Deno.build.os).join(", ")} in ${
      (BLAS_DIRS[Deno.build.os] ?? []).join(", ")
    }; on Debian: apt-get install libopenblas0-pthread)`;
  }
  return `cannot use ${failures.join("; ")}`;
}

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function firstLine(s: string): string {
  return s.split("\n")[0];
}

/** Set the library's thread count where it has an API for it; return the count in use. */
function setThreads(l: Loaded, threads: number): number | undefined {
  const s = l.lib.symbols;
  if (s.openblas_set_num_threads) {
    s.openblas_set_num_threads(threads);
    return s.openblas_get_num_threads ? s.openblas_get_num_threads() : threads;
  }
  if (s.MKL_Set_Num_Threads) {
    s.MKL_Set_Num_Threads(threads);
    return s.MKL_Get_Max_Threads ? s.MKL_Get_Max_Threads() : threads;
  }
  return undefined;
}

/**
 * Set up native matmul for `backendName` (the active backend): open the BLAS
 * library, set its threads, register the native kernels (or, when that is not
 * possible or not wanted, the stock ones) and return the status. A requested
 * library that cannot be used is not an error: the stock kernels run and one
 * line says why.
 *
 * @example
 * ```ts ignore
 * import * as tf from "@tensorflow/tfjs";
 * import { configureNativeMatMul } from "./native_blas.ts";
 * await tf.setBackend("cpu");
 * const status = configureNativeMatMul("cpu", { blas: "auto", threads: 2 });
 * console.log(status.note);
 * ```
 */
export function configureNativeMatMul(
  backendName: string,
  options: NativeMatMulOptions = {},
): BlasStatus {
  const request = options.blas ?? "auto";
  if (typeof request !== "string" || request === "") {
    throw new Error(`native BLAS: blas must be "auto", "off" or a library path, got ${request}`);
  }
  setAliasingCopies(true);
  const threads = options.threads ?? navigator.hardwareConcurrency ?? 1;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`native BLAS: blasThreads must be a positive integer, got ${threads}`);
  }
  if (request === "off") {
    setRegistered(false);
    offReason = "native BLAS off (--blas off)";
    return nativeMatMulStatus();
  }
  if (!NATIVE_BLAS_BACKENDS.includes(backendName)) {
    setRegistered(false);
    offReason = `native BLAS serves the ${
      NATIVE_BLAS_BACKENDS.join(" and ")
    } backends; ${backendName} keeps its own matmul`;
    return nativeMatMulStatus();
  }
  const result = load(request);
  if (typeof result === "string") {
    setRegistered(false);
    offReason = `native BLAS unavailable: ${result}; using the stock ${backendName} BatchMatMul`;
    const warn = options.warn ?? ((line: string) => console.warn(line));
    if (!warned.has(offReason)) {
      warned.add(offReason);
      warn(offReason);
    }
    return nativeMatMulStatus();
  }
  threadsInUse = setThreads(result, threads);
  threadsNow = threadsInUse;
  smallProductMacs = options.smallProductMacs === undefined
    ? SMALL_PRODUCT_MACS
    : options.smallProductMacs;
  setRegistered(true);
  return nativeMatMulStatus();
}

/**
 * Switch the native matmul kernels on or off at run time (off = the stock
 * kernels of the active backend), e.g. for interleaved comparisons. Turning
 * them on needs a library opened by an earlier `initBackend` (or
 * {@link configureNativeMatMul}).
 *
 * @example
 * ```ts ignore
 * import { setNativeMatMul } from "./native_blas.ts";
 * setNativeMatMul(false); // stock kernels
 * setNativeMatMul(true); // native again
 * ```
 */
export function setNativeMatMul(enabled: boolean): void {
  if (enabled && !loaded) {
    throw new Error(
      `setNativeMatMul(true): no native BLAS library is loaded (${offReason}); call ` +
        `initBackend with blas "auto" or a library path first`,
    );
  }
  setRegistered(enabled);
  if (!enabled) offReason = "native BLAS switched off (setNativeMatMul(false))";
}

/**
 * True when the active backend's `BatchMatMul` is the native kernel (cheap; for the gradient,
 * which passes transposes as flags to it instead of copying).
 *
 * @example
 * ```ts
 * import { nativeMatMulActive } from "./native_blas.ts";
 * console.log(nativeMatMulActive());
 * ```
 */
export function nativeMatMulActive(): boolean {
  if (!registered || loaded === null) return false;
  const active = (tf.engine() as unknown as { backendName: string | null }).backendName;
  return active !== null && native.has(active);
}

/**
 * The native matmul status: the same record as `BackendInfo.blas`.
 *
 * @example
 * ```ts
 * import { nativeMatMulStatus } from "./native_blas.ts";
 * const { enabled, note } = nativeMatMulStatus();
 * console.log(enabled, note);
 * ```
 */
export function nativeMatMulStatus(): BlasStatus {
  const active = (tf.engine() as unknown as { backendName: string | null }).backendName;
  if (!nativeMatMulActive()) {
    return {
      enabled: false,
      kernels: [],
      note: registered && active !== null
        ? `native BLAS serves the ${NATIVE_BLAS_BACKENDS.join(" and ")} backends; ${active} ` +
          `keeps its own matmul`
        : offReason,
    };
  }
  return {
    enabled: true,
    library: loaded!.path,
    ...(threadsInUse !== undefined ? { threads: threadsInUse } : {}),
    kernels: [KERNEL],
    note: `native BLAS ${KERNEL} via cblas_sgemm (${loaded!.flavour}, ${loaded!.path}, ` +
      (threadsInUse !== undefined
        ? `${threadsInUse} thread${threadsInUse === 1 ? "" : "s"})`
        : "threads chosen by the library)"),
  };
}

/** The slice of a backend the aliasing kernels use. */
interface RefCounting {
  incRef(dataId: unknown): void;
}

interface AliasArgs {
  inputs: { x: tf.TensorInfo };
  attrs?: { dtype?: DataType };
  backend: unknown;
}

/** The backend whose copying `Identity` and `Cast` are replaced. */
const ALIAS_BACKEND = "wasm";
/** Stock `Identity` and `Cast` of the wasm backend, captured before the first replacement. */
const stockCopies = new Map<string, tf.KernelConfig>();
/** Their aliasing replacements. */
const aliasingCopies = new Map<string, tf.KernelConfig>();

function aliasingConfig(original: tf.KernelConfig): tf.KernelConfig {
  const identity = original.kernelName === "Identity";
  const kernelFunc = (args: AliasArgs): tf.TensorInfo => {
    const { x } = args.inputs;
    if (x.dtype === "string" || !(identity || args.attrs?.dtype === x.dtype)) {
      return original.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    }
    (args.backend as RefCounting).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  return { ...original, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

/**
 * On the wasm backend, make `Identity` (the gradient tape's clone of every
 * saved tensor) and a `Cast` to the input's own dtype share the input's buffer
 * instead of copying it; `false` puts the stock copying kernels back.
 * Bit-identical results. A no-op until the wasm backend package is loaded.
 * {@link configureNativeMatMul} turns it on.
 *
 * @example
 * ```ts
 * import { setAliasingCopies } from "./native_blas.ts";
 * setAliasingCopies(true);
 * ```
 */
export function setAliasingCopies(on: boolean): void {
  for (const name of ["Identity", "Cast"]) {
    const current = tf.getKernel(name, ALIAS_BACKEND);
    if (!current) continue; // wasm backend package not loaded
    if (!stockCopies.has(name) && current !== aliasingCopies.get(name)) {
      stockCopies.set(name, current);
    }
    const original = stockCopies.get(name)!;
    if (!aliasingCopies.has(name)) aliasingCopies.set(name, aliasingConfig(original));
    const wanted = on ? aliasingCopies.get(name)! : original;
    if (current === wanted) continue;
    tf.unregisterKernel(name, ALIAS_BACKEND);
    tf.registerKernel(wanted);
  }
}

/** Register the native (true) or stock (false) kernels on every backend that has a stock one. */
function setRegistered(on: boolean): void {
  for (const backend of NATIVE_BLAS_BACKENDS) {
    const current = tf.getKernel(KERNEL, backend);
    if (!current) continue; // backend package not loaded
    if (!stock.has(backend) && current !== native.get(backend)) stock.set(backend, current);
    const original = stock.get(backend)!;
    if (!native.has(backend)) native.set(backend, nativeConfig(backend, original));
    const wanted = on ? native.get(backend)! : original;
    if (current === wanted) continue;
    tf.unregisterKernel(KERNEL, backend);
    tf.registerKernel(wanted);
  }
  registered = on;
}

function nativeConfig(backend: string, original: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc = backend === "wasm" ? wasmKernel(original) : cpuKernel(original);
  // The stock setup/dispose keep running: the fallback for non-float32 inputs needs them.
  return { ...original, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

/** Shapes and batch mapping of one BatchMatMul. */
interface Plan {
  m: number;
  n: number;
  k: number;
  outShape: number[];
  /** Number of output matrices. */
  batch: number;
  /** For output matrix i, the index of its `a` and `b` matrices. */
  aIndex: (i: number) => number;
  bIndex: (i: number) => number;
  /** `b` has one matrix and `a` is not transposed: one sgemm with batch·m rows. */
  fold: boolean;
}

/**
 * Shapes, broadcast batch and validation of `op(a)·op(b)`, as tfjs defines
 * BatchMatMul. Exported for tests.
 *
 * @example
 * ```ts
 * import { planMatMul } from "./native_blas.ts";
 * const p = planMatMul([2, 3, 4], [4, 5], false, false);
 * // p.outShape = [2, 3, 5], p.fold = true
 * ```
 */
export function planMatMul(
  aShape: readonly number[],
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
): Plan {
  const ra = aShape.length;
  const rb = bShape.length;
  if (ra < 2 || rb < 2) {
    throw new Error(
      `BatchMatMul (native BLAS): inputs must have rank >= 2, got a [${aShape}] and b [${bShape}]`,
    );
  }
  const m = transposeA ? aShape[ra - 1] : aShape[ra - 2];
  const kA = transposeA ? aShape[ra - 2] : aShape[ra - 1];
  const kB = transposeB ? bShape[rb - 1] : bShape[rb - 2];
  const n = transposeB ? bShape[rb - 2] : bShape[rb - 1];
  if (kA !== kB) {
    throw new Error(
      `BatchMatMul (native BLAS): inner dimensions must match, got ${kA} and ${kB} for a ` +
        `[${aShape}] and b [${bShape}] with transposeA=${transposeA}, transposeB=${transposeB}`,
    );
  }
  const batchA = aShape.slice(0, -2);
  const batchB = bShape.slice(0, -2);
  const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(batchA, batchB);
  const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
  const batch = size(outBatch);
  const sizeA = size(batchA);
  const sizeB = size(batchB);
  return {
    m,
    n,
    k: kA,
    outShape: [...outBatch, m, n],
    batch,
    aIndex: batchIndex(batchA, outBatch, sizeA, batch),
    bIndex: batchIndex(batchB, outBatch, sizeB, batch),
    fold: sizeB === 1 && sizeA === batch && !transposeA && batch > 1,
  };
}

/** Map an output batch index to the flat batch index of an input with batch shape `shape`. */
function batchIndex(
  shape: readonly number[],
  outBatch: readonly number[],
  size: number,
  outSize: number,
): (i: number) => number {
  if (size === 1) return () => 0;
  if (size === outSize) return (i) => i; // same dims up to leading ones
  // General broadcast: walk the output multi-index from the last axis.
  const offset = outBatch.length - shape.length;
  const strides: number[] = new Array(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = shape[d] === 1 ? 0 : s;
    s *= shape[d];
  }
  return (i) => {
    let index = 0;
    let rest = i;
    for (let d = outBatch.length - 1; d >= 0; d--) {
      const coord = rest % outBatch[d];
      rest = Math.floor(rest / outBatch[d]);
      const dd = d - offset;
      if (dd >= 0) index += coord * strides[dd];
    }
    return index;
  };
}

/** One thread for a small product, all of them otherwise (calls the library only on a change). */
function threadsFor(macsPerCall: number): void {
  if (!loaded || threadsInUse === undefined || threadsInUse <= 1 || smallProductMacs === null) {
    return;
  }
  const wanted = macsPerCall < smallProductMacs ? 1 : threadsInUse;
  if (wanted === threadsNow) return;
  const s = loaded.lib.symbols;
  if (s.openblas_set_num_threads) s.openblas_set_num_threads(wanted);
  else if (s.MKL_Set_Num_Threads) s.MKL_Set_Num_Threads(wanted);
  threadsNow = wanted;
}

/**
 * Run the sgemm calls of `plan` on three float32 arrays (the wasm heap or cpu
 * values), with `a`, `b`, `c` the element offsets of the operands in them.
 */
function runPlan(
  sgemm: Sgemm,
  plan: Plan,
  transposeA: boolean,
  transposeB: boolean,
  a: { data: Float32Array; offset: number },
  b: { data: Float32Array; offset: number },
  c: { data: Float32Array; offset: number },
): void {
  const { m, n, k } = plan;
  const cSize = plan.batch * m * n;
  if (cSize === 0) return;
  if (k === 0) {
    c.data.fill(0, c.offset, c.offset + cSize);
    return;
  }
  threadsFor((plan.fold || plan.batch === 1 ? plan.batch : 1) * m * n * k);
  const ta = transposeA ? TRANS : NO_TRANS;
  const tb = transposeB ? TRANS : NO_TRANS;
  const lda = transposeA ? m : k;
  const ldb = transposeB ? k : n;
  const view = (x: { data: Float32Array; offset: number }, start: number, len: number) =>
    x.data.subarray(x.offset + start, x.offset + start + len);
  if (plan.fold || plan.batch === 1) {
    const rows = plan.batch * m;
    sgemm(
      ROW_MAJOR,
      ta,
      tb,
      rows,
      n,
      k,
      1,
      view(a, 0, rows * k),
      lda,
      view(b, 0, k * n),
      ldb,
      0,
      view(c, 0, rows * n),
      n,
    );
    return;
  }
  const mk = m * k;
  const kn = k * n;
  const mn = m * n;
  for (let i = 0; i < plan.batch; i++) {
    sgemm(
      ROW_MAJOR,
      ta,
      tb,
      m,
      n,
      k,
      1,
      view(a, plan.aIndex(i) * mk, mk),
      lda,
      view(b, plan.bIndex(i) * kn, kn),
      ldb,
      0,
      view(c, i * mn, mn),
      n,
    );
  }
}

interface KernelArgs {
  inputs: { a: tf.TensorInfo; b: tf.TensorInfo };
  backend: unknown;
  attrs: { transposeA?: boolean; transposeB?: boolean };
}

/** The slice of the wasm backend the kernel uses. */
interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: unknown): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
}

/** The slice of the cpu backend the kernel uses. */
interface CpuBackendLike {
  data: { get(dataId: unknown): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: "float32", values: Float32Array): tf.TensorInfo;
}

function wasmKernel(original: tf.KernelConfig) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { a, b } = args.inputs;
    if (a.dtype !== "float32" || b.dtype !== "float32" || !loaded) {
      return original.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    }
    const transposeA = Boolean(args.attrs.transposeA);
    const transposeB = Boolean(args.attrs.transposeB);
    const plan = planMatMul(a.shape, b.shape, transposeA, transposeB);
    const backend = args.backend as WasmBackendLike;
    // Every allocation may grow the heap and detach its old buffer: look the inputs up first
    // (a lookup moves data from another backend into the heap), allocate the output, and only
    // then take the view of the heap.
    const offsetA = backend.dataIdMap.get(a.dataId).memoryOffset / 4;
    const offsetB = backend.dataIdMap.get(b.dataId).memoryOffset / 4;
    const out = backend.makeOutput(plan.outShape, "float32");
    const offsetC = backend.dataIdMap.get(out.dataId).memoryOffset / 4;
    const heap = new Float32Array(backend.wasm.HEAPU8.buffer);
    runPlan(
      loaded.lib.symbols.cblas_sgemm,
      plan,
      transposeA,
      transposeB,
      { data: heap, offset: offsetA },
      { data: heap, offset: offsetB },
      { data: heap, offset: offsetC },
    );
    return out;
  };
}

function cpuKernel(original: tf.KernelConfig) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { a, b } = args.inputs;
    const backend = args.backend as CpuBackendLike;
    const av = backend.data.get(a.dataId).values;
    const bv = backend.data.get(b.dataId).values;
    if (
      a.dtype !== "float32" || b.dtype !== "float32" || !loaded ||
      !(av instanceof Float32Array) || !(bv instanceof Float32Array)
    ) {
      return original.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    }
    const transposeA = Boolean(args.attrs.transposeA);
    const transposeB = Boolean(args.attrs.transposeB);
    const plan = planMatMul(a.shape, b.shape, transposeA, transposeB);
    const out = new Float32Array(plan.batch * plan.m * plan.n);
    runPlan(
      loaded.lib.symbols.cblas_sgemm,
      plan,
      transposeA,
      transposeB,
      { data: av, offset: 0 },
      { data: bv, offset: 0 },
      { data: out, offset: 0 },
    );
    return backend.makeTensorInfo(plan.outShape, "float32", out);
  };
}
