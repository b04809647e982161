/**
 * The safetensors file format (Hugging Face), read and written in plain TypeScript.
 *
 * Layout: an 8-byte little-endian unsigned header length N; N bytes of UTF-8
 * JSON `{ name: { dtype, shape, data_offsets: [begin, end] }, …,
 * "__metadata__"?: { string: string } }`; then the raw little-endian tensor
 * bytes, with offsets relative to the end of the header. The writer pads the
 * header with spaces to a multiple of 8 bytes (as the reference implementation
 * does) and stores float32 (`F32`). The reader accepts `F32`, `F16`, `BF16`
 * and `F64` and always returns float32 values.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { writeFileAtomic } from "../io.ts";
import type { Tensor } from "../tensor.ts";

/** A named tensor's shape and float32 values (row-major). */
export interface TensorData {
  /** Shape. */
  shape: number[];
  /** Values, row-major, length = product of the shape. */
  data: Float32Array;
}

/** A decoded file: tensors in header order, and the `__metadata__` strings. */
export interface LoadedWeights {
  /** Tensors by name, in the order of the header. */
  tensors: Map<string, TensorData>;
  /** The `__metadata__` record (empty when absent). */
  metadata: Record<string, string>;
}

/** Tensors by name: a Map (ordered) or a plain record. */
export type TensorMap = Map<string, TensorData> | Record<string, TensorData>;

const BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };
const MAX_HEADER = 100_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function entries<T>(m: Map<string, T> | Record<string, T>): [string, T][] {
  return m instanceof Map ? [...m.entries()] : Object.entries(m);
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Encode float32 tensors (and optional string metadata) as safetensors bytes.
 * Tensors are laid out in the given order.
 *
 * @example
 * ```ts
 * import { encodeSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors(
 *   { w: { shape: [2], data: new Float32Array([1, 2]) } },
 *   { format: "pt" },
 * );
 * ```
 */
export function encodeSafetensors(
  tensors: TensorMap,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new Error(`safetensors metadata "${k}" must be a string, got ${typeof v}`);
      }
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  const list = entries(tensors);
  for (const [name, t] of list) {
    if (name === "__metadata__") {
      throw new Error(`safetensors: "__metadata__" is not a tensor name`);
    }
    if (!(t.data instanceof Float32Array)) {
      throw new Error(`safetensors: tensor "${name}" data must be a Float32Array`);
    }
    if (!t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new Error(`safetensors: tensor "${name}" has a bad shape [${t.shape}]`);
    }
    if (numel(t.shape) !== t.data.length) {
      throw new Error(
        `safetensors: tensor "${name}" has ${t.data.length} values but shape [${t.shape}] ` +
          `needs ${numel(t.shape)}`,
      );
    }
    const size = t.data.length * 4;
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const [, t] of list) {
    if (LITTLE_ENDIAN) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    } else {
      const dst = new DataView(out.buffer, pos, t.data.length * 4);
      for (let i = 0; i < t.data.length; i++) dst.setFloat32(i * 4, t.data[i], true);
    }
    pos += t.data.length * 4;
  }
  return out;
}

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * Decode safetensors bytes into float32 tensors. `source` (a file name) is
 * used in error messages. Every tensor's offsets and size are checked.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors({ w: { shape: [2], data: new Float32Array([1, 2]) } });
 * const { tensors } = decodeSafetensors(bytes, { source: "example" });
 * tensors.get("w")!.data; // Float32Array [1, 2]
 * ```
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  options: { source?: string } = {},
): LoadedWeights {
  const src = options.source ?? "<bytes>";
  const fail = (msg: string): never => {
    throw new Error(`safetensors ${src}: ${msg}`);
  };
  if (bytes.length < 8) {
    fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) {
    fail(`header length ${n} goes beyond the end of the file (${bytes.length} bytes)`);
  }
  const headerLength = Number(n);
  if (headerLength > MAX_HEADER) fail(`header length ${headerLength} exceeds ${MAX_HEADER}`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(
      bytes.subarray(8, 8 + headerLength),
    ));
  } catch (err) {
    return fail(`header is not valid UTF-8 JSON: ${(err as Error).message}`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail(`header is not a JSON object`);
  }
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorData>();
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
        fail(`__metadata__ must be an object of strings`);
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__ "${k}" must be a string, got ${typeof v}`);
        metadata[k] = v as string;
      }
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const where = `tensor "${name}"`;
    if (info === null || typeof info !== "object") fail(`${where}: entry is not an object`);
    const dtype = info.dtype;
    if (typeof dtype !== "string" || !(dtype in BYTES)) {
      fail(`${where}: unsupported dtype ${JSON.stringify(dtype)} (expected F32, F16, BF16 or F64)`);
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      fail(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    const off = info.data_offsets;
    if (
      !Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isInteger(o) && o >= 0)
    ) {
      fail(`${where}: data_offsets ${JSON.stringify(off)} is not [begin, end]`);
    }
    const [begin, end] = off as [number, number];
    if (begin > end || end > dataLength) {
      fail(
        `${where}: data_offsets [${begin}, ${end}] out of range (the data section has ` +
          `${dataLength} bytes)`,
      );
    }
    const count = numel(shape as number[]);
    const width = BYTES[dtype as string];
    if (end - begin !== count * width) {
      fail(
        `${where}: size mismatch: shape [${shape}] of ${dtype} needs ${count * width} bytes, ` +
          `data_offsets give ${end - begin}`,
      );
    }
    if (end > begin) spans.push({ name, begin, end });
    tensors.set(name, {
      shape: (shape as number[]).slice(),
      data: toFloat32(bytes, dataStart + begin, count, dtype as string),
    });
  }
  // The tensors tile the data section exactly, back to back from offset 0 (as the reference
  // implementation requires): overlapping ranges, a hole or unused bytes at the end mean a
  // corrupt header (e.g. a header length one byte off would read every tensor shifted).
  spans.sort((a, b) => a.begin - b.begin);
  let covered = 0;
  for (let i = 0; i < spans.length; i++) {
    if (i > 0 && spans[i].begin < spans[i - 1].end) {
      fail(
        `tensors "${spans[i - 1].name}" [${spans[i - 1].begin}, ${spans[i - 1].end}] and ` +
          `"${spans[i].name}" [${spans[i].begin}, ${spans[i].end}] overlap in the data section ` +
          "(each tensor must have its own bytes)",
      );
    }
    if (spans[i].begin !== covered) {
      fail(
        `bytes [${covered}, ${spans[i].begin}) of the data section belong to no tensor ` +
          `(tensor "${spans[i].name}" starts at ${spans[i].begin}); tensors must be stored back ` +
          "to back",
      );
    }
    covered = spans[i].end;
  }
  if (covered !== dataLength) {
    fail(
      `the tensors cover ${covered} of the ${dataLength} bytes of the data section ` +
        "(a header length or offsets that do not match the file)",
    );
  }
  return { tensors, metadata };
}

function toFloat32(bytes: Uint8Array, start: number, count: number, dtype: string): Float32Array {
  if (dtype === "F32" && LITTLE_ENDIAN) {
    const begin = bytes.byteOffset + start;
    return new Float32Array(bytes.buffer.slice(begin, begin + count * 4));
  }
  const out = new Float32Array(count);
  const v = new DataView(bytes.buffer, bytes.byteOffset + start, count * BYTES[dtype]);
  if (dtype === "F32") {
    for (let i = 0; i < count; i++) out[i] = v.getFloat32(i * 4, true);
  } else if (dtype === "F64") {
    for (let i = 0; i < count; i++) out[i] = v.getFloat64(i * 8, true);
  } else if (dtype === "F16") {
    for (let i = 0; i < count; i++) out[i] = f16ToF32(v.getUint16(i * 2, true));
  } else {
    // BF16: the upper 16 bits of a float32.
    const tmp = new DataView(new ArrayBuffer(4));
    for (let i = 0; i < count; i++) {
      tmp.setUint32(0, v.getUint16(i * 2, true) << 16);
      out[i] = tmp.getFloat32(0);
    }
  }
  return out;
}

/**
 * Write tensors to a safetensors file atomically (temp file + rename). Values
 * may be {@link TensorData} or tfjs tensors/variables (read with `await data()`).
 *
 * @example
 * ```ts
 * import { saveWeights } from "./safetensors.ts";
 * await saveWeights("/tmp/treelora-example.safetensors", new Map([
 *   ["w", { shape: [2], data: new Float32Array([1, 2]) }],
 * ]), { metadata: { format: "example" } });
 * ```
 */
export async function saveWeights(
  path: string,
  weights: Map<string, TensorData | Tensor> | Record<string, TensorData | Tensor>,
  options: { metadata?: Record<string, string> } = {},
): Promise<void> {
  const plain = new Map<string, TensorData>();
  for (const [name, w] of entries(weights)) {
    if (w instanceof tf.Tensor) {
      const data = await w.data();
      if (!(data instanceof Float32Array)) {
        throw new Error(`saveWeights ${path}: tensor "${name}" is ${w.dtype}, expected float32`);
      }
      plain.set(name, { shape: w.shape.slice(), data });
    } else {
      plain.set(name, w);
    }
  }
  let bytes: Uint8Array;
  try {
    bytes = encodeSafetensors(plain, options.metadata);
  } catch (err) {
    throw new Error(`saveWeights ${path}: ${(err as Error).message}`, { cause: err });
  }
  await writeFileAtomic(path, bytes);
}

/**
 * Read a safetensors file; errors name the file.
 *
 * @example
 * ```ts
 * import { loadWeights, saveWeights } from "./safetensors.ts";
 * const path = "/tmp/treelora-example-load.safetensors";
 * await saveWeights(path, { w: { shape: [1], data: new Float32Array([3]) } });
 * const { tensors, metadata } = await loadWeights(path);
 * ```
 */
export async function loadWeights(path: string): Promise<LoadedWeights> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    throw new Error(`could not read ${path}: ${(err as Error).message}`, { cause: err });
  }
  return decodeSafetensors(bytes, { source: path });
}
