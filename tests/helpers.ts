/**
 * Small helpers shared by the test files: array comparisons, a temporary
 * directory, and tiny model fixtures that several tests used to copy.
 *
 * Domain fixtures stay beside their tests (`tests/methods/helpers.ts`,
 * `tests/models/hf_fixtures.ts`, the reference models); only helpers that
 * several test files need, with the same meaning everywhere, live here.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertEquals } from "@std/assert";
import type { ContinualMethod } from "../lib/methods/method.ts";
import type { LoraSite } from "../lib/models/backbone.ts";
import { Rng } from "../lib/random.ts";
import { parseFlags } from "../lib/flags.ts";
import { applyFlags, experimentFlags } from "../lib/run/cli.ts";
import type { ExperimentSpec } from "../lib/run/spec.ts";
import type { ExperimentTrack } from "../lib/run/track.ts";

/**
 * The largest absolute element-wise difference of two arrays; asserts first
 * that they have the same length.
 *
 * @example
 * ```ts
 * import { maxAbsDiff } from "./helpers.ts";
 * maxAbsDiff([1, 2, 3], [1, 2.5, 2]); // 1
 * ```
 */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assertEquals(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Assert that two arrays have the same length and that every element of
 * `actual` is within the absolute tolerance `tol` of `expected`
 * (`assertAlmostEquals` element by element; the message names the index).
 *
 * @example
 * ```ts
 * import { assertArrayAlmostEquals } from "./helpers.ts";
 * assertArrayAlmostEquals(new Float32Array([0.1, 0.2]), [0.1, 0.2], 1e-6);
 * ```
 */
export function assertArrayAlmostEquals(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
): void {
  assertEquals(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assertAlmostEquals(actual[i], expected[i], tol, `index ${i}`);
  }
}

/**
 * Run `fn` with a fresh temporary directory (named `<prefix>…`), and remove
 * the directory and everything in it afterwards, whether `fn` succeeds or
 * throws.
 *
 * @example
 * ```ts ignore
 * import { withTempDir } from "./helpers.ts";
 * await withTempDir("treelora-shards-", async (dir) => {
 *   await Deno.writeTextFile(`${dir}/a.txt`, "a");
 * });
 * ```
 */
export async function withTempDir(
  prefix: string,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Give every LoRA B a deterministic non-zero value (0.1 × a standard normal
 * draw from `seed`, site by site) so the LoRA path contributes.
 */
export function setLoraB(sites: LoraSite[], seed: number): void {
  const rng = new Rng(seed);
  for (const s of sites) {
    const v = Float32Array.from({ length: s.b.size }, () => 0.1 * rng.normal());
    tf.tidy(() => s.b.assign(tf.tensor(v, s.b.shape)));
  }
}

/**
 * Wrap a method so that every `afterStep` records the live tensor count
 * (`tf.memory().numTensors`) in `counts`, after the method's own `afterStep`.
 */
export function countingTensors(method: ContinualMethod, counts: number[]): ContinualMethod {
  return {
    ...method,
    afterStep: async (ctx, info) => {
      await method.afterStep?.(ctx, info);
      counts.push(tf.memory().numTensors);
    },
  };
}

/**
 * A trainer recorder (ViT or LM) that only notes the order of its calls, as `checkpoint N` and
 * `taskDone N` (0-based task index), in `calls`.
 */
export function callOrderRecorder(calls: string[]): {
  taskDone(taskIndex: number): Promise<void>;
  losses(): Promise<void>;
  checkpoint(checkpoint: { taskIndex: number }): Promise<void>;
} {
  return {
    taskDone: (taskIndex) => {
      calls.push(`taskDone ${taskIndex}`);
      return Promise.resolve();
    },
    losses: () => Promise.resolve(),
    checkpoint: (checkpoint) => {
      calls.push(`checkpoint ${checkpoint.taskIndex}`);
      return Promise.resolve();
    },
  };
}

/**
 * The spec an experiment's command line would build: `args` parsed against the common and the
 * track's flags and applied to a copy of `base` (what `runCli` does before running).
 */
export function specFromArgs<S extends ExperimentSpec, Stream>(
  base: S,
  args: string[],
  track: ExperimentTrack<S, Stream>,
): S {
  return applyFlags(base, { flags: parseFlags(args, experimentFlags(track)), track });
}

/**
 * A hand-built ELF64 shared object with one `.dynstr` and one `.dynsym`: each symbol is
 * defined (section index 5) or undefined (index 0).
 */
export function tinyElf(
  symbols: { name: string; defined: boolean }[],
  options: { bigEndian?: boolean } = {},
): Uint8Array {
  const le = !options.bigEndian;
  const enc = new TextEncoder();
  const strParts: number[] = [0];
  const offsets: number[] = [];
  for (const s of symbols) {
    offsets.push(strParts.length);
    strParts.push(...enc.encode(s.name), 0);
  }
  const strOff = 64;
  const symOff = strOff + strParts.length;
  const symSize = 24 * (symbols.length + 1);
  const shOff = symOff + symSize;
  const bytes = new Uint8Array(shOff + 3 * 64);
  const v = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, le ? 1 : 2, 1], 0);
  v.setUint16(0x10, 3, le); // ET_DYN
  v.setBigUint64(0x28, BigInt(shOff), le);
  v.setUint16(0x34, 64, le);
  v.setUint16(0x3a, 64, le);
  v.setUint16(0x3c, 3, le);
  bytes.set(strParts, strOff);
  symbols.forEach((s, i) => {
    const at = symOff + 24 * (i + 1);
    v.setUint32(at, offsets[i], le);
    v.setUint16(at + 6, s.defined ? 5 : 0, le);
  });
  const section = (i: number, type: number, offset: number, size: number, link = 0, ent = 0) => {
    const at = shOff + 64 * i;
    v.setUint32(at + 4, type, le);
    v.setBigUint64(at + 0x18, BigInt(offset), le);
    v.setBigUint64(at + 0x20, BigInt(size), le);
    v.setUint32(at + 0x28, link, le);
    v.setBigUint64(at + 0x38, BigInt(ent), le);
  };
  section(1, 3, strOff, strParts.length);
  section(2, 11, symOff, symSize, 1, 24);
  return bytes;
}
