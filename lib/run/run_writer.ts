/**
 * The files of a run folder, written as results arrive.
 *
 * ```
 * results/<experiment>/<run-id>/
 *   config.json      resolved config + provenance (written first)
 *   (every table starts with method, seed and, in multi-order sweeps, order)
 *   matrix.csv       method, seed, trained_through, task, acc_cil, acc_til   (a row block per task, at once)
 *   task_identity.csv  method, seed, trained_through, task, tii_acc   (methods with task-identity inference)
 *   learning_curve.csv method, seed, task, step, samples_seen, accuracy, images   (with curveEvery)
 *   timings.csv      method, seed, task, train_seconds, eval_seconds, train_images, images_per_second
 *   components.csv   method, seed, task, component, seconds
 *   losses.csv       method, seed, task, epoch, step, term, value
 *   status.json      tasks finished per method and seed, finished flag
 *   methods/<method>/seed-<s>/task-NN.json   the method's own summary of each task (e.g. TreeLoRA's tree)
 *   checkpoints/<method>/seed-<s>/task-NN.{safetensors,json}   state after each task (resume)
 * ```
 *
 * Every file is rewritten atomically with all rows so far, so a run killed at
 * any point leaves consistent files holding every finished task.
 * Indices in the CSV files are 1-based (task 1 is the first task).
 *
 * @module
 */

import { join } from "@std/path";
import { exists, readJson, writeFileAtomic, writeJsonAtomic } from "../io.ts";
import { readCsvRows, tableToCsv } from "../report/tables.ts";
import { saveCheckpoint } from "../train/checkpoint.ts";
import type { LossRecord, RunRecorder, TaskTiming } from "../train/class_incremental.ts";
import type { LmRunRecorder } from "../train/lm_incremental.ts";
import type { EvalRow } from "../train/evaluate.ts";

type Row = Record<string, string | number>;

/**
 * Which run a row belongs to: a method (label), a run seed and, for multi-order sweeps,
 * the order (class-order seed or task-order name). Rows carry these as leading columns.
 */
export interface RunKey {
  /** Method label. */
  method: string;
  /** Run seed. */
  seed: number;
  /** Order of the stream, when the sweep has several; absent otherwise. */
  order?: string | number;
}

function keyString(k: RunKey): string {
  return k.order === undefined ? `${k.method}/${k.seed}` : `${k.method}/${k.seed}/${k.order}`;
}

function keyColumns(k: RunKey): Row {
  return k.order === undefined
    ? { method: k.method, seed: k.seed }
    : { method: k.method, seed: k.seed, order: k.order };
}

function sameRun(r: Row, k: RunKey): boolean {
  return r.method === k.method && Number(r.seed) === k.seed &&
    (k.order === undefined ? r.order === undefined : String(r.order) === String(k.order));
}

/** Progress of a run, in `status.json`. */
export interface RunStatus {
  /** Tasks finished per `method/seed` key. */
  finished: Record<string, number>;
  /** Number of tasks per stream. */
  numTasks: number;
  /** True when every method finished every task. */
  complete: boolean;
  /** Last update time. */
  updatedAt: string;
}

/**
 * Owns one run folder and its tables.
 *
 * @example
 * ```ts ignore
 * const writer = await RunWriter.create("results/split-cifar/x", { config, numTasks: 10 });
 * const recorder = writer.recorder("seqlora", 0);
 * ```
 */
export class RunWriter {
  /** The run folder. */
  readonly dir: string;
  #matrix: Row[] = [];
  #timings: Row[] = [];
  #components: Row[] = [];
  #losses: Row[] = [];
  #tii: Row[] = [];
  #curve: Row[] = [];
  #status: RunStatus;

  private constructor(dir: string, numTasks: number) {
    this.dir = dir;
    this.#status = { finished: {}, numTasks, complete: false, updatedAt: new Date().toISOString() };
  }

  /**
   * Reopen an existing run folder to continue it: its tables are loaded, and
   * {@link RunWriter.truncate} drops what a resumed method will redo.
   */
  static async reopen(dir: string): Promise<RunWriter> {
    const status = await readJson<RunStatus>(join(dir, "status.json"));
    const writer = new RunWriter(dir, status.numTasks);
    writer.#status = { ...status, complete: false };
    const load = async (name: string) =>
      (await exists(join(dir, name))) ? (await readCsvRows(join(dir, name))) as Row[] : [];
    writer.#matrix = await load("matrix.csv");
    writer.#timings = await load("timings.csv");
    writer.#components = await load("components.csv");
    writer.#losses = await load("losses.csv");
    writer.#tii = await load("task_identity.csv");
    writer.#curve = await load("learning_curve.csv");
    return writer;
  }

  /** Tasks finished by the run `key` (0 when none). */
  finished(key: RunKey): number {
    return this.#status.finished[keyString(key)] ?? 0;
  }

  /** The folder holding the checkpoints of the run `key`. */
  checkpointDir(key: RunKey): string {
    return join(this.dir, "checkpoints", slug(key.method), runFolder(key));
  }

  /** Keep only the first `tasks` tasks of the run `key` in every table (the rest is redone). */
  async truncate(key: RunKey, tasks: number): Promise<void> {
    const keep = (r: Row, column: string) => !(sameRun(r, key) && Number(r[column]) > tasks);
    this.#matrix = this.#matrix.filter((r) => keep(r, "trained_through"));
    this.#timings = this.#timings.filter((r) => keep(r, "task"));
    this.#components = this.#components.filter((r) => keep(r, "task"));
    this.#losses = this.#losses.filter((r) => keep(r, "task"));
    this.#tii = this.#tii.filter((r) => keep(r, "trained_through"));
    this.#curve = this.#curve.filter((r) => keep(r, "task"));
    this.#status.finished[keyString(key)] = tasks;
    await this.#writeTables();
    await this.#writeStatus();
  }

  async #writeTables(): Promise<void> {
    await Promise.all([
      writeFileAtomic(join(this.dir, "matrix.csv"), tableToCsv(this.#matrix)),
      writeFileAtomic(join(this.dir, "timings.csv"), tableToCsv(this.#timings)),
      writeFileAtomic(join(this.dir, "components.csv"), tableToCsv(this.#components)),
      ...(this.#losses.length > 0
        ? [writeFileAtomic(join(this.dir, "losses.csv"), tableToCsv(this.#losses))]
        : []),
      ...(this.#tii.length > 0
        ? [writeFileAtomic(join(this.dir, "task_identity.csv"), tableToCsv(this.#tii))]
        : []),
      ...(this.#curve.length > 0
        ? [writeFileAtomic(join(this.dir, "learning_curve.csv"), tableToCsv(this.#curve))]
        : []),
    ]);
  }

  /** Create the folder and write `config.json`. Refuses to overwrite a folder that has results. */
  static async create(
    dir: string,
    options: { config: unknown; numTasks: number; overwrite?: boolean },
  ): Promise<RunWriter> {
    try {
      const st = await Deno.stat(join(dir, "matrix.csv"));
      if (st.isFile && !options.overwrite) {
        throw new Error(
          `${dir} already holds a run (matrix.csv exists); choose another --out or pass --overwrite`,
        );
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    await Deno.mkdir(dir, { recursive: true });
    const writer = new RunWriter(dir, options.numTasks);
    await writeJsonAtomic(join(dir, "config.json"), options.config);
    await writer.#writeStatus();
    return writer;
  }

  /** A recorder for the run `key`, writing into this run's tables. */
  recorder(run: RunKey): RunRecorder {
    const tag = keyColumns(run);
    return {
      taskDone: async (
        taskIndex: number,
        { row, timing, summary }: {
          row: EvalRow;
          timing: TaskTiming;
          summary?: Record<string, unknown>;
        },
      ) => {
        row.cil.forEach((acc, j) => {
          this.#matrix.push({
            ...tag,
            trained_through: taskIndex + 1,
            task: j + 1,
            acc_cil: round(acc),
            acc_til: round(row.til[j]),
          });
          if (row.tii) {
            this.#tii.push({
              ...tag,
              trained_through: taskIndex + 1,
              task: j + 1,
              tii_acc: round(row.tii[j]),
            });
          }
        });
        this.#timings.push({
          ...tag,
          task: taskIndex + 1,
          train_seconds: round(timing.trainSeconds),
          eval_seconds: round(timing.evalSeconds),
          train_images: timing.trainImages,
          images_per_second: round(timing.imagesPerSecond),
        });
        await this.#taskFinished(run, { taskIndex, summary, components: timing.components });
      },
      losses: async (records: LossRecord[]) => {
        for (const r of records) {
          this.#losses.push({
            ...tag,
            task: r.task + 1,
            epoch: r.epoch + 1,
            step: r.step + 1,
            term: r.term,
            value: round(r.value),
          });
        }
        if (this.#losses.length > 0) {
          await writeFileAtomic(join(this.dir, "losses.csv"), tableToCsv(this.#losses));
        }
      },
      checkpoint: (ckpt) => saveCheckpoint(this.checkpointDir(run), ckpt),
      curve: async (points) => {
        for (const p of points) {
          this.#curve.push({
            ...tag,
            task: p.task + 1,
            step: p.step,
            samples_seen: p.samplesSeen,
            accuracy: round(p.accuracy),
            images: p.images,
          });
        }
        await writeFileAtomic(join(this.dir, "learning_curve.csv"), tableToCsv(this.#curve));
      },
    };
  }

  /**
   * A recorder for the language-model track: `matrix.csv` gets one `score` (0–100, the task's
   * own metric) per evaluated task, and the predictions of every round go to
   * `predictions/<method>/seed-<s>/round-NN.jsonl` (prompt, prediction, reference, score).
   */
  lmRecorder(run: RunKey, options: { taskNames: string[] }): LmRunRecorder {
    const base = this.recorder(run);
    const tag = keyColumns(run);
    const { method } = run;
    return {
      losses: base.losses,
      checkpoint: base.checkpoint,
      taskDone: async (taskIndex, { row, predictions, timing, summary }) => {
        row.scores.forEach((score, j) => {
          this.#matrix.push({
            ...tag,
            trained_through: taskIndex + 1,
            task: j + 1,
            task_name: options.taskNames[j],
            metric: row.metrics[j],
            score: round(score),
            examples: row.examples[j],
          });
        });
        this.#timings.push({
          ...tag,
          task: taskIndex + 1,
          train_seconds: round(timing.trainSeconds),
          eval_seconds: round(timing.evalSeconds),
          train_examples: timing.trainExamples,
          train_tokens: timing.trainTokens,
          examples_per_second: round(timing.examplesPerSecond),
          tokens_per_second: round(timing.tokensPerSecond),
          generated_tokens: timing.generatedTokens,
        });
        const lines = predictions.flatMap((list, j) =>
          list.map((p) => JSON.stringify({ task: options.taskNames[j], ...p }))
        );
        const name = `round-${String(taskIndex + 1).padStart(2, "0")}.jsonl`;
        await writeFileAtomic(
          join(this.dir, "predictions", slug(method), runFolder(run), name),
          lines.join("\n") + "\n",
        );
        await this.#taskFinished(run, { taskIndex, summary, components: timing.components });
      },
    };
  }

  /**
   * After a task's rows: its component timings, the method's own summary, the status, and every
   * table, at once.
   */
  async #taskFinished(
    run: RunKey,
    options: { taskIndex: number; summary: unknown; components: Record<string, number> },
  ): Promise<void> {
    for (const [component, seconds] of Object.entries(options.components)) {
      this.#components.push({
        ...keyColumns(run),
        task: options.taskIndex + 1,
        component,
        seconds: round(seconds),
      });
    }
    if (options.summary) {
      const file = `task-${String(options.taskIndex + 1).padStart(2, "0")}.json`;
      await writeJsonAtomic(
        join(this.dir, "methods", slug(run.method), runFolder(run), file),
        options.summary,
      );
    }
    this.#status.finished[keyString(run)] = options.taskIndex + 1;
    await this.#writeTables();
    await this.#writeStatus();
  }

  /** Mark the run complete. */
  async finish(): Promise<void> {
    this.#status.complete = true;
    await this.#writeStatus();
  }

  async #writeStatus(): Promise<void> {
    this.#status.updatedAt = new Date().toISOString();
    await writeJsonAtomic(join(this.dir, "status.json"), this.#status);
  }
}

function runFolder(k: RunKey): string {
  return k.order === undefined ? `seed-${k.seed}` : `seed-${k.seed}-order-${slug(String(k.order))}`;
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
