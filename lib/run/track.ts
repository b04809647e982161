/**
 * The track plug-in interface: what an experiment track supplies to the one
 * runner (`runner.ts`) and the one command line (`cli.ts`).
 *
 * A track is a protocol with its data, model and trainer: the ViT
 * class-incremental track (`lib/tracks/vit_class_incremental.ts`) and the
 * language-model TRACE track (`lib/tracks/lm_trace.ts`). The runner owns
 * everything the tracks share — the order × seed × method grid, sharding,
 * resume, the run folder and its `config.json`, method creation and disposal,
 * the tensor-leak check, the report at the end — and asks the track only for
 * what differs.
 *
 * ## Writing a third track
 *
 * Say, Split Tiny-ImageNet read from a folder of PNGs. It is one new file,
 * `lib/tracks/split_tinyimagenet.ts`, plus its spec in
 * `experiments/split_tinyimagenet.ts`:
 *
 * 1. **Its spec**: `interface SplitTinyImagenetSpec extends ExperimentSpec`
 *    with the track's own fields (`data: { dir, numTasks, orderSeed }`,
 *    `backbone`, `train: TrainConfig`). Everything in {@link ExperimentSpec}
 *    (methods, seeds, orders, shard, output…) already works.
 * 2. **`name`**: the method registry's track its methods come from (`"vit"`:
 *    every ViT method runs unchanged on any class-incremental image stream).
 * 3. **`flags` / `applyFlags`**: only the flags that are the track's own
 *    (`--data-dir`, `--preset`…); `--methods`, `--seeds`, `--orders`,
 *    `--shard`, `--epochs`, `--lr`, `--resume`… come from `cli.ts`.
 *    `parseOrder` turns one `--orders` token into an order (a class-order seed
 *    here), `plannedTasks` says how many tasks the spec will have (to check
 *    `--epochs` lists before any data is read).
 * 4. **`prepare(spec, context)`**: read the data (for the first order; further
 *    orders on demand through `stream(order)`), build or load the backbone,
 *    and return what `config.json` must say about them (`describe`: scenario,
 *    protocol, data, backbone) and the resolved schedule (`train`).
 * 5. **`runCell(cell)`**: build a fresh model with `cell.rngs.init`, train
 *    `cell.method` on `cell.stream` with the track's trainer (here the
 *    class-incremental trainer, `lib/train/class_incremental.ts`, with
 *    `cell.writer.recorder(cell.key)`), and dispose the model; the runner
 *    disposes the method and checks for leaked tensors.
 *
 * The experiment file is then `Deno.exit(await runCli(Deno.args, { spec:
 * SPEC, track: SPLIT_TINYIMAGENET_TRACK }))` and a `deno task` line with the
 * permissions it needs.
 *
 * @module
 */

import type { FlagSpec, FlagValues } from "../flags.ts";
import type { ContinualMethod, Track } from "../methods/method.ts";
import type { SeedConfig, SeedStreams } from "../random.ts";
import type { TrainerCheckpoint } from "../train/checkpoint.ts";
import type { Progress } from "../train/progress.ts";
import type { EpochSchedule } from "../train/schedule.ts";
import type { RunKey, RunWriter } from "./run_writer.ts";
import type { ExperimentSpec, StreamOrder } from "./spec.ts";

/** One cell of the grid, handed to {@link PreparedTrack.runCell}. */
export interface TrackCell<Stream> {
  /** The stream of this cell's order. */
  stream: Stream;
  /** The method, created by the runner (the runner disposes it). */
  method: ContinualMethod;
  /** Epochs per task of this method. */
  epochs: EpochSchedule;
  /** The seeds of this cell. */
  seeds: SeedConfig;
  /** The random streams made from `seeds` (init: model; data: shuffles; method: dropout, bandit). */
  rngs: SeedStreams;
  /** The run folder's writer. */
  writer: RunWriter;
  /** The rows' key (method label, seed, order). */
  key: RunKey;
  /** Where a resumed cell continues (undefined: from the first task). */
  resume: TrainerCheckpoint | undefined;
  /** Progress output. */
  progress: Progress;
  /** The cell's name in progress lines (label, seed, order). */
  label: string;
}

/** What a track has ready once its data and model are loaded. */
export interface PreparedTrack<Stream> {
  /** Number of tasks of every stream of the run. */
  numTasks: number;
  /**
   * The track's sections of config.json, in order (scenario, protocol, data, model, …); the
   * runner writes them after `experiment` and `track`, before `methods`.
   */
  describe: Record<string, unknown>;
  /** The resolved schedule, written as config.json `train`. */
  train: unknown;
  /** The stream of an order of the grid (loaded once, on first use). */
  stream(order: StreamOrder): Promise<Stream>;
  /** Train one method on one stream with one seed, writing through `cell.writer`. */
  runCell(cell: TrackCell<Stream>): Promise<void>;
}

/** What a track supplies to the runner and the command line. */
export interface ExperimentTrack<S extends ExperimentSpec, Stream> {
  /** The method registry's track (also config.json `track`). */
  readonly name: Track;
  /** The usage line of `--help`. */
  readonly usage: string;
  /** The flags only this track takes (the common ones are in `cli.ts`). */
  readonly flags: Record<string, FlagSpec>;
  /** Apply this track's flags to `spec` in place (before the common flags). */
  applyFlags(spec: S, flags: FlagValues): void;
  /** One token of `--orders` as an order of this track (throws on a bad token). */
  parseOrder(token: string): StreamOrder;
  /** Set the spec's order list (`--orders`), after {@link applyFlags}; throws on conflicts. */
  setOrders(spec: S, orders: StreamOrder[], flags: FlagValues): void;
  /** The number of tasks the spec's stream will have (to validate per-task flag lists). */
  plannedTasks(spec: S): number;
  /** The spec's own order (the grid's only order without `--orders`). */
  defaultOrder(spec: S): StreamOrder;
  /** Load data and model for the run. */
  prepare(
    spec: S,
    context: { progress: Progress; orders: StreamOrder[] },
  ): Promise<PreparedTrack<Stream>>;
}
