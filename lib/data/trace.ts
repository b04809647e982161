/**
 * Reader for TRACE-format instruction-tuning data (spec §9.1) and the named
 * task orders of the language track (spec §8.2).
 *
 * Layout: `<dir>/<Task>/{train,eval,test}.json`, each a JSON array of
 * `{"prompt": string, "answer": string}` records. The instruction prefix is
 * already inside `prompt`. The same layout holds the 8 TRACE tasks, the 15
 * O-LoRA tasks and the synthetic stand-in written by
 * `writeSyntheticTrace` (lib/data/synthetic_text.ts), whose task names are the
 * TRACE names prefixed with `syn-`.
 *
 * Records keep file order; `max*` options take the first N records, as the
 * capped copies in /work/shared/data do.
 *
 * @module
 */

import { join } from "@std/path";
import type { TraceMetric } from "../metrics/trace_metrics.ts";

/** One instruction-tuning example. */
export interface TraceExample {
  /** Model input, instruction included. */
  prompt: string;
  /** Gold continuation. */
  answer: string;
}

/** A split file of a task. */
export type TraceSplit = "train" | "eval" | "test";

/**
 * The three splits, in file-name order.
 *
 * @example
 * ```ts
 * import { TRACE_SPLITS } from "./trace.ts";
 * TRACE_SPLITS.map((s) => `${s}.json`); // ["train.json", "eval.json", "test.json"]
 * ```
 */
export const TRACE_SPLITS: readonly TraceSplit[] = Object.freeze(["train", "eval", "test"]);

/**
 * The 8 TRACE tasks in the benchmark's order.
 *
 * @example
 * ```ts
 * import { TRACE_TASKS } from "./trace.ts";
 * TRACE_TASKS.length; // 8
 * ```
 */
export const TRACE_TASKS: readonly string[] = Object.freeze([
  "C-STANCE",
  "FOMC",
  "MeetingBank",
  "Py150",
  "ScienceQA",
  "NumGLUE-cm",
  "NumGLUE-ds",
  "20Minuten",
]);

/**
 * The 15 O-LoRA benchmark tasks (all scored by prefix accuracy).
 *
 * @example
 * ```ts
 * import { OLORA_TASKS } from "./trace.ts";
 * OLORA_TASKS.includes("yelp"); // true
 * ```
 */
export const OLORA_TASKS: readonly string[] = Object.freeze([
  "dbpedia",
  "amazon",
  "yahoo",
  "agnews",
  "yelp",
  "MNLI",
  "QQP",
  "RTE",
  "SST-2",
  "WiC",
  "CB",
  "COPA",
  "BoolQA",
  "MultiRC",
  "IMDB",
]);

/** Name of a predefined task order. */
export type TaskOrderName =
  | "trace"
  | "olora-1"
  | "olora-2"
  | "olora-3"
  | "olora-4"
  | "olora-5"
  | "olora-6"
  | "long-15"
  | "math-llm"
  | "synthetic";

const freeze = (xs: string[]): readonly string[] => Object.freeze(xs);

/**
 * Task orders of spec §8.2: `trace` (Table 3), the O-LoRA orders 1–6
 * (Table 10; from the released scripts), `long-15` (Table 9), `math-llm`
 * (App. A.4), and `synthetic` — the synthetic stand-ins of the `trace` order.
 *
 * @example
 * ```ts
 * import { TASK_ORDERS } from "./trace.ts";
 * TASK_ORDERS["olora-1"]; // ["dbpedia", "amazon", "yahoo", "agnews"]
 * ```
 */
export const TASK_ORDERS: Readonly<Record<TaskOrderName, readonly string[]>> = Object.freeze({
  "trace": TRACE_TASKS,
  "olora-1": freeze(["dbpedia", "amazon", "yahoo", "agnews"]),
  "olora-2": freeze(["dbpedia", "amazon", "agnews", "yahoo"]),
  "olora-3": freeze(["yahoo", "amazon", "agnews", "dbpedia"]),
  "olora-4": freeze([
    "MNLI",
    "CB",
    "WiC",
    "COPA",
    "QQP",
    "BoolQA",
    "RTE",
    "IMDB",
    "yelp",
    "amazon",
    "SST-2",
    "dbpedia",
    "agnews",
    "MultiRC",
    "yahoo",
  ]),
  "olora-5": freeze([
    "MultiRC",
    "BoolQA",
    "WiC",
    "MNLI",
    "CB",
    "COPA",
    "QQP",
    "RTE",
    "IMDB",
    "SST-2",
    "dbpedia",
    "agnews",
    "yelp",
    "amazon",
    "yahoo",
  ]),
  "olora-6": freeze([
    "yelp",
    "amazon",
    "MNLI",
    "CB",
    "COPA",
    "QQP",
    "RTE",
    "IMDB",
    "SST-2",
    "dbpedia",
    "agnews",
    "yahoo",
    "MultiRC",
    "BoolQA",
    "WiC",
  ]),
  "long-15": freeze([
    ...TRACE_TASKS,
    "dbpedia",
    "amazon",
    "yahoo",
    "agnews",
    "yelp",
    "BoolQA",
    "QQP",
  ]),
  "math-llm": freeze(["ScienceQA", "NumGLUE-cm", "NumGLUE-ds"]),
  "synthetic": freeze(TRACE_TASKS.map((t) => `syn-${t}`)),
});

const TRACE_METRIC_OF: Readonly<Record<string, TraceMetric>> = Object.freeze({
  "C-STANCE": "accuracy",
  "FOMC": "accuracy",
  "MeetingBank": "rouge_l",
  "Py150": "edit_similarity",
  "ScienceQA": "letter_accuracy",
  "NumGLUE-cm": "accuracy",
  "NumGLUE-ds": "accuracy",
  "20Minuten": "sari",
});

/**
 * The scoring rule of a task (spec §9.5): `accuracy` (prefix match) for
 * C-STANCE, FOMC, NumGLUE-cm/-ds and every O-LoRA task; `letter_accuracy` for
 * ScienceQA; `rouge_l` for MeetingBank; `edit_similarity` for Py150; `sari`
 * for 20Minuten. A synthetic task `syn-<T>` is scored like `<T>`. Names are
 * case-sensitive (they are directory names); an unknown name throws.
 *
 * @example
 * ```ts
 * import { metricForTask } from "./trace.ts";
 * metricForTask("Py150"); // "edit_similarity"
 * metricForTask("syn-20Minuten"); // "sari"
 * metricForTask("yelp"); // "accuracy"
 * ```
 */
export function metricForTask(name: string): TraceMetric {
  const metric = TRACE_METRIC_OF[name] ??
    (OLORA_TASKS.includes(name) ? "accuracy" : undefined) ??
    (name.startsWith("syn-") ? TRACE_METRIC_OF[name.slice(4)] : undefined);
  if (metric !== undefined) return metric;
  const known = [...TRACE_TASKS, ...OLORA_TASKS, ...TASK_ORDERS.synthetic];
  const close = known.find((k) => k.toLowerCase() === name.toLowerCase());
  throw new RangeError(
    `no TRACE metric is defined for task ${JSON.stringify(name)}` +
      (close ? ` (did you mean ${JSON.stringify(close)}? names are case-sensitive)` : "") +
      `; known tasks: ${known.join(", ")}`,
  );
}

/**
 * Expand a `--tasks` value: a comma-separated list whose items are task names
 * or names of {@link TASK_ORDERS} (expanded in place). Whitespace around items
 * is ignored; an empty list or a repeated task is an error.
 *
 * @example
 * ```ts
 * import { parseTaskList } from "./trace.ts";
 * parseTaskList("olora-1"); // ["dbpedia", "amazon", "yahoo", "agnews"]
 * parseTaskList("C-STANCE, FOMC"); // ["C-STANCE", "FOMC"]
 * ```
 */
export function parseTaskList(spec: string): string[] {
  const out: string[] = [];
  for (const raw of spec.split(",")) {
    const item = raw.trim();
    if (item === "") continue;
    const order = (TASK_ORDERS as Record<string, readonly string[]>)[item];
    for (const task of order ?? [item]) {
      if (out.includes(task)) {
        throw new RangeError(
          `--tasks ${JSON.stringify(spec)}: task ${JSON.stringify(task)} appears twice`,
        );
      }
      out.push(task);
    }
  }
  if (out.length === 0) {
    throw new RangeError(
      `--tasks ${JSON.stringify(spec)} names no task; give task names or one of ` +
        Object.keys(TASK_ORDERS).join(", "),
    );
  }
  return out;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") {
    return `a string (${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)})`;
  }
  return `${typeof v === "object" ? "an" : "a"} ${typeof v}` +
    (typeof v === "object" ? "" : ` (${String(v)})`);
}

/**
 * Parse the text of one split file; `source` (the file path) names the file in
 * errors. Throws on invalid JSON (with the parser's message), on a top level
 * that is not an array, and on a record that is not an object, lacks `prompt`
 * or `answer`, or has a non-string value (naming the record index and field).
 * Other fields are ignored. Empty strings are allowed (the Lima replay set
 * has empty answers).
 *
 * @example
 * ```ts
 * import { parseTraceSplit } from "./trace.ts";
 * const xs = parseTraceSplit('[{"prompt": "1+1=", "answer": "2"}]', "inline");
 * xs[0].answer; // "2"
 * ```
 */
export function parseTraceSplit(text: string, source: string): TraceExample[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new SyntaxError(`${source} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!Array.isArray(data)) {
    throw new TypeError(
      `${source}: expected a JSON array of {"prompt": string, "answer": string} records, got ${
        describe(data)
      }`,
    );
  }
  const out: TraceExample[] = new Array(data.length);
  for (let k = 0; k < data.length; k++) {
    const rec = data[k];
    if (rec === null || typeof rec !== "object" || Array.isArray(rec)) {
      throw new TypeError(
        `${source}: record ${k} is ${
          describe(rec)
        }; expected an object with string fields "prompt" and "answer"`,
      );
    }
    const r = rec as Record<string, unknown>;
    for (const field of ["prompt", "answer"]) {
      if (!(field in r)) {
        throw new TypeError(
          `${source}: record ${k} has no "${field}" field; expected a string there`,
        );
      }
      if (typeof r[field] !== "string") {
        throw new TypeError(
          `${source}: record ${k}, field "${field}" is ${describe(r[field])}; expected a string`,
        );
      }
    }
    out[k] = { prompt: r.prompt as string, answer: r.answer as string };
  }
  return out;
}

/** A task's data and scoring rule. */
export interface TraceTaskData {
  /** Task name (= directory name). */
  name: string;
  /** Scoring rule ({@link metricForTask}). */
  metric: TraceMetric;
  /** The task directory that was read. */
  dir: string;
  /** Training records (empty when the split was not requested). */
  train: TraceExample[];
  /** Validation records (empty when not requested). */
  eval: TraceExample[];
  /** Test records (empty when not requested). */
  test: TraceExample[];
  /** Deviations from the plain layout, e.g. a stand-in train split; empty when none. */
  notes: string[];
}

/** Options of {@link readTraceTask}. */
export interface ReadTraceTaskOptions {
  /** Splits to read (default all three); the others come back empty. */
  splits?: readonly TraceSplit[];
  /** Keep only the first N records of a split. */
  max?: Partial<Record<TraceSplit, number>>;
  /**
   * What to do when `train.json` is missing (MeetingBank in the shared copy):
   * `"error"` (default) or `"eval"` — train on eval.json instead and record a note.
   */
  missingTrain?: "error" | "eval";
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function listDirectories(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.isDirectory) names.push(e.name);
  } catch {
    return [];
  }
  return names.sort();
}

function checkTaskName(task: string): void {
  if (task === "" || task === "." || task === ".." || /[/\\]/.test(task)) {
    throw new RangeError(`invalid task name ${JSON.stringify(task)}: expected a directory name`);
  }
}

function checkMax(max: Partial<Record<TraceSplit, number>> | undefined): void {
  for (const [split, n] of Object.entries(max ?? {})) {
    if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
      throw new RangeError(`max.${split} must be a non-negative integer, got ${n}`);
    }
  }
}

async function readSplitFile(
  path: string,
  task: string,
  split: TraceSplit,
): Promise<TraceExample[] | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw new Error(
      `could not read ${path} (task ${task}, split ${split}): ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  return parseTraceSplit(text, path);
}

/**
 * Read one task from `<dir>/<task>/{train,eval,test}.json`.
 *
 * @example
 * ```ts ignore
 * import { readTraceTask } from "./trace.ts";
 * const fomc = await readTraceTask("/work/shared/data/trace", "FOMC", { splits: ["test"] });
 * console.log(fomc.metric, fomc.test.length); // "accuracy" 100
 * ```
 */
export async function readTraceTask(
  dir: string,
  task: string,
  options: ReadTraceTaskOptions = {},
): Promise<TraceTaskData> {
  checkTaskName(task);
  checkMax(options.max);
  const metric = metricForTask(task);
  const taskDir = join(dir, task);
  if (!(await isDirectory(taskDir))) {
    const present = await listDirectories(dir);
    throw new Error(
      `task directory ${taskDir} does not exist` +
        (present.length > 0
          ? `; tasks in ${dir}: ${present.join(", ")}`
          : ` (${dir} has no task directories)`) +
        `. Select tasks that exist with --tasks`,
    );
  }
  const splits = options.splits ?? TRACE_SPLITS;
  const data: TraceTaskData = {
    name: task,
    metric,
    dir: taskDir,
    train: [],
    eval: [],
    test: [],
    notes: [],
  };
  for (const split of splits) {
    if (!TRACE_SPLITS.includes(split)) {
      throw new RangeError(
        `unknown split ${JSON.stringify(split)}; expected one of ${TRACE_SPLITS.join(", ")}`,
      );
    }
    const path = join(taskDir, `${split}.json`);
    let records = await readSplitFile(path, task, split);
    if (records === null && split === "train" && options.missingTrain === "eval") {
      const standIn = join(taskDir, "eval.json");
      records = await readSplitFile(standIn, task, "eval");
      if (records !== null) {
        data.notes.push(`train split read from ${standIn} (${path} does not exist)`);
      }
    }
    if (records === null) {
      throw new Error(
        `${path} does not exist (task ${task}, split ${split}). Select tasks that have a ${split} split ` +
          `with --tasks (e.g. --tasks C-STANCE,FOMC)` +
          (split === "train"
            ? `, or train on eval.json instead (--missing-train eval, option missingTrain: "eval")`
            : ""),
      );
    }
    const cap = options.max?.[split];
    data[split] = cap === undefined ? records : records.slice(0, cap);
  }
  return data;
}

/** Options of {@link readTraceStream}. */
export interface ReadTraceStreamOptions {
  /** Task names in training order (see {@link parseTaskList}, {@link TASK_ORDERS}). */
  tasks: readonly string[];
  /** Keep the first N training records of each task. */
  maxTrain?: number;
  /** Keep the first N validation records of each task. */
  maxEval?: number;
  /** Keep the first N test records of each task. */
  maxTest?: number;
  /** Splits to read (default all three). */
  splits?: readonly TraceSplit[];
  /** See {@link ReadTraceTaskOptions.missingTrain}. */
  missingTrain?: "error" | "eval";
}

/**
 * Read a task sequence, in order. `dir` may be a list of data roots (e.g. the
 * TRACE and O-LoRA copies for `long-15`); each task is read from the first
 * root that has a directory of that name.
 *
 * @example
 * ```ts ignore
 * import { readTraceStream, TASK_ORDERS } from "./trace.ts";
 * const stream = await readTraceStream(
 *   ["/work/shared/data/trace", "/work/shared/data/olora"],
 *   { tasks: TASK_ORDERS["long-15"], maxTrain: 100, maxTest: 50, missingTrain: "eval" },
 * );
 * console.log(stream.map((t) => `${t.name}:${t.metric}`));
 * ```
 */
export async function readTraceStream(
  dir: string | readonly string[],
  options: ReadTraceStreamOptions,
): Promise<TraceTaskData[]> {
  const roots = typeof dir === "string" ? [dir] : [...dir];
  if (roots.length === 0) throw new RangeError("readTraceStream: no data directory given");
  const { tasks } = options;
  if (tasks.length === 0) throw new RangeError("readTraceStream: the task list is empty");
  const seen = new Set<string>();
  for (const t of tasks) {
    if (seen.has(t)) {
      throw new RangeError(`readTraceStream: task ${JSON.stringify(t)} appears twice`);
    }
    seen.add(t);
    checkTaskName(t);
    metricForTask(t); // fail before reading anything
  }
  const max = { train: options.maxTrain, eval: options.maxEval, test: options.maxTest };
  checkMax(max);
  const out: TraceTaskData[] = [];
  for (const task of tasks) {
    let root: string | undefined;
    for (const r of roots) {
      if (await isDirectory(join(r, task))) {
        root = r;
        break;
      }
    }
    if (root === undefined && roots.length > 1) {
      throw new Error(
        `task ${task} was found in none of ${roots.join(", ")} (looked for <root>/${task}/). ` +
          `Select tasks that exist with --tasks`,
      );
    }
    out.push(
      await readTraceTask(root ?? roots[0], task, {
        splits: options.splits,
        max,
        missingTrain: options.missingTrain,
      }),
    );
  }
  return out;
}
