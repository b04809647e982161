/**
 * FIX: in-context learning, the no-training reference of the LM track (spec
 * §8.2 Table 3, §8.3). Nothing is trained (`trainableVariables` is empty, so
 * the trainer skips every batch); at evaluation each test prompt gets k
 * demonstrations (prompt + answer) prepended, drawn without replacement from
 * the task's **training** split with a seeded generator (0 for MeetingBank,
 * whose meeting transcripts are too long to repeat).
 *
 * Deviation, deliberate: the released code draws the demonstrations from the
 * test split itself (so a test example can see other test answers); here
 * they never come from the evaluated split. The code's 3584-token prompt
 * limit is the run's `maxPromptLength` (prompts are left-truncated, so the
 * demonstrations are cut before the question is).
 *
 * @module
 */

import { Rng } from "../random.ts";
import type { ContinualMethod, EvalPromptContext } from "./method.ts";
import { taskLossOnly } from "./method.ts";

/** FIX's options. */
export interface FixOptions {
  /** Demonstrations per prompt (6). */
  shots: number;
  /** Seed of the demonstration draws. */
  seed: number;
  /** Tasks that get no demonstrations (matched exactly or as a `-Name` suffix: `syn-MeetingBank`). */
  zeroShotTasks: string[];
  /** Text between demonstrations and before the prompt. */
  separator: string;
}

/** The defaults (spec §8.3). */
export const FIX_DEFAULTS: Readonly<FixOptions> = Object.freeze({
  shots: 6,
  seed: 0,
  zeroShotTasks: ["MeetingBank"],
  separator: "\n\n",
});

/**
 * The demonstrations for one test prompt: `shots` distinct training examples,
 * the same for the same (seed, task, example) whatever the evaluation order.
 *
 * @example
 * ```ts
 * import { demonstrations, FIX_DEFAULTS } from "./fix.ts";
 * const train = [{ prompt: "1+1=", answer: "2" }, { prompt: "2+2=", answer: "4" }];
 * demonstrations({ taskIndex: 0, taskName: "t", exampleIndex: 0, train }, { ...FIX_DEFAULTS, shots: 1 });
 * ```
 */
export function demonstrations(
  at: EvalPromptContext,
  options: FixOptions,
): { prompt: string; answer: string }[] {
  if (options.zeroShotTasks.some((n) => at.taskName === n || at.taskName.endsWith(`-${n}`))) {
    return [];
  }
  const rng = new Rng((options.seed * 1_000_003 + at.taskIndex * 7919 + at.exampleIndex) >>> 0);
  const k = Math.min(options.shots, at.train.length);
  return rng.permutation(at.train.length).slice(0, k).map((i) => at.train[i]);
}

/**
 * Create FIX.
 *
 * @example
 * ```ts
 * import { createFix } from "./fix.ts";
 * const fix = createFix({ shots: 2 });
 * fix.options().shots; // 2
 * ```
 */
export function createFix(options: Record<string, unknown> = {}): ContinualMethod {
  const unknown = Object.keys(options).filter((k) => !(k in FIX_DEFAULTS));
  if (unknown.length > 0) throw new Error(`unknown FIX option(s): ${unknown.join(", ")}`);
  const opts: FixOptions = { ...FIX_DEFAULTS, ...options } as FixOptions;
  if (!(Number.isInteger(opts.shots) && opts.shots >= 0)) throw new Error("FIX: bad shots");
  return {
    name: "fix",
    options: () => ({ ...opts, demonstrationsFrom: "train" }),
    beginTask: () => {},
    trainableVariables: () => [],
    loss: (_ctx, taskLoss) => taskLossOnly(taskLoss),
    endTask: () => {},
    evalPrompt(prompt, at) {
      const demos = demonstrations(at, opts);
      return demos.map((d) => d.prompt + d.answer + opts.separator).join("") + prompt;
    },
    state: () => ({ json: { options: opts }, arrays: {} }),
    restore: () => {},
    dispose: () => {},
  };
}
