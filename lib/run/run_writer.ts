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
import {
  assertWritable,
  exists,
  readJson,
  removeInside,
  sha256Hex,
  writeFileAtomic,
  writeJsonAtomic,
} from "../io.ts";
import { readCsvRows, tableToCsv } from "../report/tables.ts";
import { type CheckpointOwner, saveCheckpoint } from "../train/checkpoint.ts";
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
  /**
   * The run's identity (token drawn at creation, hash of its spec): stored in every checkpoint
   * and checked on resume, so that a checkpoint of an earlier run in the folder is never loaded.
   */
  owner: CheckpointOwner;
  /** Warnings raised while the run trained (e.g. a diverging loss); REPORT.md lists them. */
  warnings?: string[];
}

/**
 * Divergence: the logged `total` loss of a run (method, seed, order) is above
 * `DIVERGENCE_FACTOR` × its first logged value for `DIVERGENCE_WINDOW` logged steps in a row.
 */
export const DIVERGENCE_FACTOR = 10;
/** Logged steps in a row above the factor that count as divergence (see {@link DIVERGENCE_FACTOR}). */
export const DIVERGENCE_WINDOW = 10;

/** SHA-256 of a run config's `spec` as serialised into config.json (the spec hash of {@link CheckpointOwner}). */
async function specHash(config: unknown): Promise<string> {
  return await sha256Hex(JSON.stringify((config as { spec?: unknown })?.spec ?? null));
}

/** True when `dir` holds the files of a run (config.json, status.json or matrix.csv). */
async function isRunFolder(dir: string): Promise<boolean> {
  for (const f of ["config.json", "status.json", "matrix.csv"]) {
    if (await exists(join(dir, f))) return true;
  }
  return false;
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
  #divergence = new Map<string, { first: number; above: number; warned: boolean }>();
  #onDivergence: { stop: boolean; log: (line: string) => void } = {
    stop: false,
    log: () => {},
  };

  private constructor(dir: string, numTasks: number, owner: CheckpointOwner) {
    this.dir = dir;
    this.#status = {
      finished: {},
      numTasks,
      complete: false,
      updatedAt: new Date().toISOString(),
      owner,
    };
  }

  /**
   * What a diverging loss does (see {@link DIVERGENCE_FACTOR}): always a warning in status.json
   * (and so in REPORT.md) and through `log`; with `stop` the run also stops with an error after
   * writing the losses (finished tasks and their checkpoints stay on disk).
   */
  onDivergence(options: { stop: boolean; log: (line: string) => void }): void {
    this.#onDivergence = options;
  }

  /** The run's identity, stored in and checked against its checkpoints. */
  get owner(): CheckpointOwner {
    return this.#status.owner;
  }

  /**
   * Reopen an existing run folder to continue it: its tables are loaded, and
   * {@link RunWriter.truncate} drops what a resumed method will redo. Refused, naming the file,
   * when status.json has no run identity or config.json's spec is not the one the run started
   * with.
   */
  static async reopen(dir: string): Promise<RunWriter> {
    const statusPath = join(dir, "status.json");
    const status = await readJson<RunStatus>(statusPath);
    const owner = status?.owner;
    if (
      !owner || typeof owner.token !== "string" || typeof owner.specSha256 !== "string" ||
      !Number.isInteger(status.numTasks) || status.numTasks < 1 ||
      typeof status.finished !== "object" || status.finished === null
    ) {
      throw new Error(
        `${statusPath}: expected { finished, numTasks, owner: { token, specSha256 } } ` +
          "(a run written by an older version cannot be resumed; run it again)",
      );
    }
    for (const [key, n] of Object.entries(status.finished)) {
      if (!Number.isInteger(n) || (n as number) < 0 || (n as number) > status.numTasks) {
        throw new Error(
          `${statusPath}: finished["${key}"] is ${JSON.stringify(n)}; expected a count from 0 ` +
            `to ${status.numTasks}`,
        );
      }
    }
    const configPath = join(dir, "config.json");
    if ((await specHash(await readJson(configPath))) !== owner.specSha256) {
      throw new Error(
        `${configPath}: its spec is not the one this run started with (hash differs from ` +
          `status.json): the folder was edited; not resumed`,
      );
    }
    const writer = new RunWriter(dir, status.numTasks, owner);
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

  /**
   * Create the folder and write `config.json`. Refuses a folder that holds a run's results
   * unless `overwrite`; with `overwrite` (or when the folder holds only an unfinished run's
   * config/status) the old run folder is removed first, checkpoints and plots included. A
   * non-empty folder that is not a run folder is never cleared.
   */
  static async create(
    dir: string,
    options: { config: unknown; numTasks: number; overwrite?: boolean },
  ): Promise<RunWriter> {
    await assertWritable(dir);
    let entries: string[] = [];
    try {
      for await (const e of Deno.readDir(dir)) entries.push(e.name);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      entries = [];
    }
    if (entries.length > 0) {
      if (!(await isRunFolder(dir))) {
        throw new Error(
          `${dir} is not empty and is not a run folder (no config.json, status.json or ` +
            "matrix.csv): choose another --out; it is never cleared",
        );
      }
      const hasResults = entries.includes("matrix.csv") || entries.includes("checkpoints");
      if (hasResults && !options.overwrite) {
        throw new Error(
          `${dir} already holds a run (matrix.csv exists); choose another --out or pass --overwrite`,
        );
      }
      await removeInside(dir);
    }
    await Deno.mkdir(dir, { recursive: true });
    const owner = { token: crypto.randomUUID(), specSha256: await specHash(options.config) };
    const writer = new RunWriter(dir, options.numTasks, owner);
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
        const warning = this.#watchDivergence(run, records);
        if (warning) {
          (this.#status.warnings ??= []).push(warning);
          await this.#writeStatus();
          this.#onDivergence.log(`warning: ${warning}`);
          if (this.#onDivergence.stop) {
            throw new Error(`${warning}; stopped (--stop-on-divergence)`);
          }
        }
      },
      checkpoint: (ckpt) =>
        saveCheckpoint(this.checkpointDir(run), ckpt, { owner: this.#status.owner }),
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

  /** A divergence warning for the run `key` when these records complete a diverging window. */
  #watchDivergence(key: RunKey, records: LossRecord[]): string | null {
    const id = keyString(key);
    for (const r of records) {
      if (r.term !== "total") continue;
      let state = this.#divergence.get(id);
      if (!state) {
        state = { first: r.value, above: 0, warned: false };
        this.#divergence.set(id, state);
        continue;
      }
      state.above = state.first > 0 && r.value > DIVERGENCE_FACTOR * state.first
        ? state.above + 1
        : 0;
      if (state.above >= DIVERGENCE_WINDOW && !state.warned) {
        state.warned = true;
        return `${key.method} seed ${key.seed}${
          key.order === undefined ? "" : ` order ${key.order}`
        }: the loss diverged (${r.value.toPrecision(4)} at task ${r.task + 1}, epoch ${
          r.epoch + 1
        }, step ${r.step + 1}, above ${DIVERGENCE_FACTOR}× the first logged loss ${
          state.first.toPrecision(4)
        } for ${DIVERGENCE_WINDOW} logged steps in a row)`;
      }
    }
    return null;
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
