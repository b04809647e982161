/**
 * Checkpoints at task boundaries: everything needed to continue a run after
 * the last finished task and get the same numbers as an uninterrupted run —
 * the trainable variables (LoRA A/B of every site, the head), further
 * variables the method trains (its `checkpointVariables`, e.g. the base
 * weights under EWC/GEM full fine-tuning; stored by variable name), the
 * optimiser slots (when they carry over tasks), the three RNG states and the
 * method's state (e.g. TreeLoRA's stored signatures).
 *
 * Files, per method and seed: `task-NN.safetensors` (tensors) and
 * `task-NN.json` (the rest). Both are written atomically, the JSON last: a
 * checkpoint counts only when its JSON exists.
 *
 * Verification: the JSON stores the SHA-256 of the tensor file and the
 * {@link CheckpointOwner} of the run that wrote it (the run token and the hash
 * of the run's spec, both from `status.json`). {@link loadCheckpoint} refuses,
 * naming the file, a checkpoint whose tensors do not match their checksum, one
 * without a checksum, and one written by another run.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import { join } from "@std/path";
import { exists, readJson, sha256Hex, writeJsonAtomic } from "../io.ts";
import type { MethodState } from "../methods/method.ts";
import type { AdaptedModel } from "../models/backbone.ts";
import { loadWeights, saveWeights, type TensorData } from "../models/safetensors.ts";
import type { Rng, RngState } from "../random.ts";
import { createAdam } from "./step.ts";
import { isFlatAdam } from "./flat_adam.ts";
import type { Variable } from "../tensor.ts";

/** A trainer checkpoint after task `taskIndex` (0-based). */
export interface TrainerCheckpoint {
  /** The last finished task. */
  taskIndex: number;
  /** Trainable variables in order: LoRA A, B per site (site order), then the head. */
  variables: TensorData[];
  /**
   * Further variables the method trains (its `checkpointVariables`), keyed by their name within
   * the model; absent in checkpoints written before the field existed and when the method has
   * none.
   */
  extra?: NamedTensorData[];
  /** Adam's weights (iterations, then m and v per variable), or null when reset per task. */
  optimizer: TensorData[] | null;
  /** RNG states: data shuffles, method draws, dropout seeds (and token sampling on the LM track). */
  rng: { data: RngState; method: RngState; dropout: RngState; generation?: RngState };
  /** The method's state. */
  method: MethodState;
}

/**
 * The run a checkpoint belongs to: a token drawn when the run folder was created and the
 * SHA-256 of the run's spec as written in its config.json (both kept in `status.json`).
 */
export interface CheckpointOwner {
  /** Random token of the run (a UUID), new for every created (or overwritten) run folder. */
  token: string;
  /** SHA-256 of `JSON.stringify(config.spec)` at creation. */
  specSha256: string;
}

/** A tensor's values under its variable's name. */
export interface NamedTensorData extends TensorData {
  /** The variable's name within its model (see {@link localVariableName}). */
  name: string;
}

/**
 * A variable's name within its model: `tf.Variable.name` without the model's unique scope
 * (`vit0/blocks.0.attn.q.weight` → `blocks.0.attn.q.weight`), so that a checkpoint matches a
 * fresh model of the same architecture built in the same process (scope `vit1/`). Names
 * without a `/` are kept whole.
 */
export function localVariableName(name: string): string {
  const i = name.indexOf("/");
  return i < 0 ? name : name.slice(i + 1);
}

/** The variables a checkpoint holds, in a fixed order. */
export function checkpointVariables(model: AdaptedModel): Variable[] {
  return [...model.loraSites().flatMap((s) => [s.a, s.b]), ...model.headVariables()];
}

/**
 * Capture a checkpoint of the trainer's state.
 *
 * @example
 * ```ts ignore
 * const ckpt = await captureCheckpoint(model, { taskIndex, optimizer, rngs, method });
 * ```
 */
export async function captureCheckpoint(
  model: AdaptedModel,
  options: {
    taskIndex: number;
    optimizer: tf.Optimizer | null;
    rngs: { data: Rng; method: Rng; dropout: Rng; generation?: Rng };
    method: MethodState;
    /** Further variables the method trains (its `checkpointVariables`), stored by name. */
    extra?: Variable[];
  },
): Promise<TrainerCheckpoint> {
  const variables = await Promise.all(
    checkpointVariables(model).map(async (v) => ({
      shape: v.shape.slice(),
      data: (await v.data()) as Float32Array,
    })),
  );
  const extra = options.extra?.length
    ? await Promise.all(
      options.extra.map(async (v) => ({
        name: localVariableName(v.name),
        shape: v.shape.slice(),
        data: Float32Array.from(await v.data()),
      })),
    )
    : undefined;
  let optimizer: TensorData[] | null = null;
  if (options.optimizer) {
    const weights = await options.optimizer.getWeights();
    optimizer = await Promise.all(
      weights.map(async (w) => ({
        shape: w.tensor.shape.slice(),
        data: Float32Array.from(await w.tensor.data()),
      })),
    );
    // tfjs makes a fresh scalar for the iteration count on every getWeights() call
    // (`iter`); the other entries are its own slot variables and stay alive. FlatAdam's
    // entries are all fresh copies.
    for (const w of weights) {
      if (w.name === "iter" || isFlatAdam(options.optimizer)) w.tensor.dispose();
    }
  }
  return {
    taskIndex: options.taskIndex,
    variables,
    ...(extra ? { extra } : {}),
    optimizer,
    rng: {
      data: options.rngs.data.state(),
      method: options.rngs.method.state(),
      dropout: options.rngs.dropout.state(),
      ...(options.rngs.generation ? { generation: options.rngs.generation.state() } : {}),
    },
    method: options.method,
  };
}

/** Assign a checkpoint's variables to the model (shapes checked). */
export function restoreVariables(model: AdaptedModel, checkpoint: TrainerCheckpoint): void {
  const vars = checkpointVariables(model);
  if (vars.length !== checkpoint.variables.length) {
    throw new Error(
      `checkpoint after task ${
        checkpoint.taskIndex + 1
      } holds ${checkpoint.variables.length} variables; ` +
        `the model has ${vars.length}`,
    );
  }
  vars.forEach((v, i) => {
    const c = checkpoint.variables[i];
    if (c.shape.join(",") !== v.shape.join(",")) {
      throw new Error(
        `checkpoint variable ${i}: shape [${c.shape}] but the model expects [${v.shape}]`,
      );
    }
    tf.tidy(() => v.assign(tf.tensor(c.data, c.shape)));
  });
}

/**
 * Assign a checkpoint's extra variables (see {@link TrainerCheckpoint.extra}) to `vars`, matched
 * by name within the model ({@link localVariableName}), shapes checked. Throws, naming the variable, when one of `vars` is not in the
 * checkpoint or its shape differs. Nothing is assigned unless every variable matches.
 */
export function restoreExtraVariables(vars: Variable[], checkpoint: TrainerCheckpoint): void {
  if (vars.length === 0) return;
  const stored = new Map((checkpoint.extra ?? []).map((e) => [e.name, e]));
  const at = `checkpoint after task ${checkpoint.taskIndex + 1}`;
  const pairs = vars.map((v) => {
    const c = stored.get(localVariableName(v.name));
    if (!c) {
      throw new Error(
        `${at} does not hold variable ${v.name} (the method trains it: ` +
          `a checkpoint written without the method's further variables cannot resume it exactly)`,
      );
    }
    if (c.shape.join(",") !== v.shape.join(",")) {
      throw new Error(
        `${at}: variable ${v.name} has shape [${c.shape}] but the model expects [${v.shape}]`,
      );
    }
    return [v, c] as const;
  });
  for (const [v, c] of pairs) tf.tidy(() => v.assign(tf.tensor(c.data, c.shape)));
}

/** Restore Adam's slots from a checkpoint into a fresh optimiser. */
export async function restoreOptimizer(
  optimizer: tf.Optimizer,
  checkpoint: TrainerCheckpoint,
): Promise<void> {
  if (!checkpoint.optimizer) return;
  const weights = checkpoint.optimizer.map((w, i) => ({
    name: i === 0 ? "iter" : `slot-${i}`,
    tensor: tf.tensor(w.data, w.shape),
  }));
  await optimizer.setWeights(weights);
  for (const w of weights) w.tensor.dispose();
}

function names(dir: string, taskIndex: number) {
  const base = join(dir, `task-${String(taskIndex + 1).padStart(2, "0")}`);
  return { tensors: `${base}.safetensors`, json: `${base}.json` };
}

/**
 * Write a checkpoint into `dir` (tensors first, the JSON last, with the tensor file's SHA-256
 * and the `owner` run, when given).
 *
 * @example
 * ```ts ignore
 * await saveCheckpoint("results/x/checkpoints/seqlora/seed-0", ckpt, { owner });
 * ```
 */
export async function saveCheckpoint(
  dir: string,
  checkpoint: TrainerCheckpoint,
  options: { owner?: CheckpointOwner } = {},
): Promise<void> {
  const n = names(dir, checkpoint.taskIndex);
  const tensors = new Map<string, TensorData>();
  checkpoint.variables.forEach((v, i) => tensors.set(`variable.${i}`, v));
  for (const e of checkpoint.extra ?? []) {
    if (tensors.has(`extra.${e.name}`)) {
      throw new Error(`checkpoint: two variables named ${e.name}`);
    }
    tensors.set(`extra.${e.name}`, { shape: e.shape, data: e.data });
  }
  checkpoint.optimizer?.forEach((v, i) => tensors.set(`optimizer.${i}`, v));
  for (const [k, v] of Object.entries(checkpoint.method.arrays)) tensors.set(`method.${k}`, v);
  await saveWeights(n.tensors, tensors, { metadata: { format: "treelora-checkpoint" } });
  await writeJsonAtomic(n.json, {
    tensorsSha256: await sha256Hex(await Deno.readFile(n.tensors)),
    owner: options.owner ?? null,
    taskIndex: checkpoint.taskIndex,
    variables: checkpoint.variables.length,
    ...(checkpoint.extra ? { extra: checkpoint.extra.map((e) => e.name) } : {}),
    optimizer: checkpoint.optimizer?.length ?? null,
    rng: checkpoint.rng,
    method: {
      json: checkpoint.method.json,
      rng: checkpoint.method.rng ?? null,
      arrays: Object.keys(checkpoint.method.arrays),
    },
  });
}

/**
 * Load the checkpoint after task `taskIndex` from `dir`, or null when it is not there.
 * Verified first: the tensor file's SHA-256 must equal the one its JSON records, the JSON must
 * describe task `taskIndex`, and with `owner` the checkpoint must have been written by that run
 * (same token and spec hash). Each failure throws an error naming the file; nothing is resumed
 * from a checkpoint that fails.
 *
 * @example
 * ```ts ignore
 * const ckpt = await loadCheckpoint("results/x/checkpoints/seqlora/seed-0", 3, { owner });
 * ```
 */
export async function loadCheckpoint(
  dir: string,
  taskIndex: number,
  options: { owner?: CheckpointOwner } = {},
): Promise<TrainerCheckpoint | null> {
  const n = names(dir, taskIndex);
  if (!(await exists(n.json)) || !(await exists(n.tensors))) return null;
  // deno-lint-ignore no-explicit-any
  const meta = await readJson<any>(n.json);
  const bad = (what: string) =>
    new Error(`${n.json}: ${what}; the checkpoint is not resumed (start the run again)`);
  if (meta === null || typeof meta !== "object") throw bad("expected a JSON object");
  if (typeof meta.tensorsSha256 !== "string") {
    throw bad("no tensorsSha256 checksum (written by an older version, or edited)");
  }
  const actual = await sha256Hex(await Deno.readFile(n.tensors));
  if (actual !== meta.tensorsSha256) {
    throw new Error(
      `${n.tensors}: SHA-256 ${actual} does not match ${meta.tensorsSha256} recorded in ` +
        `${n.json}: the checkpoint is corrupt and is not resumed (start the run again)`,
    );
  }
  if (options.owner) {
    const o = meta.owner;
    if (!o || o.token !== options.owner.token || o.specSha256 !== options.owner.specSha256) {
      throw bad(
        `written by another run (run token ${o?.token ?? "none"}, this run ` +
          `${options.owner.token}): a checkpoint left from an earlier run in this folder`,
      );
    }
  }
  if (meta.taskIndex !== taskIndex) throw bad(`taskIndex ${meta.taskIndex}, expected ${taskIndex}`);
  for (const k of ["variables", "optimizer"]) {
    const v = meta[k];
    if (!(v === null && k === "optimizer") && !(Number.isInteger(v) && v >= 0 && v < 1e6)) {
      throw bad(`"${k}" must be a count, got ${JSON.stringify(v)}`);
    }
  }
  const isNames = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");
  if (!meta.method || typeof meta.method !== "object" || !isNames(meta.method.arrays)) {
    throw bad(`expected "method": { "arrays": [names] }`);
  }
  if (meta.extra !== undefined && !isNames(meta.extra)) {
    throw bad(`"extra" must be a list of variable names, got ${JSON.stringify(meta.extra)}`);
  }
  const isState = (v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v) &&
    [(v as RngState).hi, (v as RngState).lo].every((x) =>
      Number.isInteger(x) && x >= 0 && x < 2 ** 32
    );
  if (
    meta.rng === null || typeof meta.rng !== "object" ||
    !["data", "method", "dropout"].every((k) => isState(meta.rng[k])) ||
    (meta.rng.generation !== undefined && !isState(meta.rng.generation)) ||
    !("rng" in meta.method) || (meta.method.rng !== null && !isState(meta.method.rng))
  ) {
    throw bad(
      `"rng" must hold { hi, lo } states (unsigned 32-bit integers) for data, method, dropout`,
    );
  }
  const { tensors } = await loadWeights(n.tensors);
  // Every tensor of the file is accounted for by the JSON, and the other way round.
  const expected = new Set([
    ...Array.from({ length: meta.variables }, (_, i) => `variable.${i}`),
    ...((meta.extra ?? []) as string[]).map((e) => `extra.${e}`),
    ...Array.from({ length: meta.optimizer ?? 0 }, (_, i) => `optimizer.${i}`),
    ...(meta.method.arrays as string[]).map((k) => `method.${k}`),
  ]);
  const unlisted = [...tensors.keys()].filter((k) => !expected.has(k));
  if (unlisted.length > 0) {
    throw bad(`${n.tensors} holds tensors the JSON does not list: ${unlisted.join(", ")}`);
  }
  const get = (name: string) => {
    const t = tensors.get(name);
    if (!t) {
      throw new Error(
        `${n.tensors}: tensor ${name} missing (checkpoint after task ${taskIndex + 1})`,
      );
    }
    return t;
  };
  const arrays: MethodState["arrays"] = {};
  for (const k of meta.method.arrays as string[]) arrays[k] = get(`method.${k}`);
  return {
    taskIndex: meta.taskIndex,
    variables: Array.from({ length: meta.variables }, (_, i) => get(`variable.${i}`)),
    ...(Array.isArray(meta.extra)
      ? { extra: (meta.extra as string[]).map((name) => ({ name, ...get(`extra.${name}`) })) }
      : {}),
    optimizer: meta.optimizer === null
      ? null
      : Array.from({ length: meta.optimizer }, (_, i) => get(`optimizer.${i}`)),
    rng: meta.rng,
    method: {
      json: meta.method.json,
      arrays,
      ...(meta.method.rng ? { rng: meta.method.rng } : {}),
    },
  };
}

/**
 * Put a trainer back into the state of `checkpoint`: the model's trainable variables, the
 * method's further variables (`extra`, by name: see {@link restoreExtraVariables}), every RNG
 * stream, the method's state and, when the optimiser carries over tasks, Adam's slots (a fresh
 * optimiser is created for them). Returns that optimiser, or null when each task starts a new one.
 *
 * @example
 * ```ts ignore
 * optimizer = await restoreTrainer(model, { checkpoint, rngs, method, config });
 * ```
 */
export async function restoreTrainer(
  model: AdaptedModel,
  options: {
    checkpoint: TrainerCheckpoint;
    rngs: { data: Rng; method: Rng; dropout: Rng; generation?: Rng };
    method: { restore(state: MethodState): void };
    config: { lr: number; beta1: number; beta2: number; resetOptimizerPerTask: boolean };
    /** Further variables the method trains (its `checkpointVariables`), restored by name. */
    extra?: Variable[];
  },
): Promise<tf.Optimizer | null> {
  const { checkpoint, rngs, config } = options;
  restoreVariables(model, checkpoint);
  restoreExtraVariables(options.extra ?? [], checkpoint);
  rngs.data.restore(checkpoint.rng.data);
  rngs.method.restore(checkpoint.rng.method);
  rngs.dropout.restore(checkpoint.rng.dropout);
  if (rngs.generation && checkpoint.rng.generation) {
    rngs.generation.restore(checkpoint.rng.generation);
  }
  options.method.restore(checkpoint.method);
  if (!checkpoint.optimizer || config.resetOptimizerPerTask) return null;
  const optimizer = createAdam({ lr: config.lr, beta1: config.beta1, beta2: config.beta2 });
  await restoreOptimizer(optimizer, checkpoint);
  return optimizer;
}
