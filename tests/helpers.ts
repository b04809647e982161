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
