/**
 * Fuzz test of trainer checkpoints (`saveCheckpoint` / `loadCheckpoint`,
 * lib/train/checkpoint.ts).
 *
 * Format: `task-NN.safetensors` (the tensors) and `task-NN.json` (counts, RNG states, the
 * method's state, the SHA-256 of the tensor file and the owner run). The valid checkpoint is
 * built by hand: 2 variables, 1 extra variable, 3 optimiser slots, 1 method array, RNG states.
 *
 * Mutations (seeded, see mutate.ts):
 * - 250 byte mutations of the `.safetensors` file anywhere (bit flip, overwrite, truncation,
 *   insertion, deletion). The JSON records the file's SHA-256, so EVERY one must be refused,
 *   with an error naming the checkpoint.
 * - 250 mutations of the `.json` file: 60 % structural (drop a key, replace a value by null /
 *   a number / 1e308 / a negative / a NaN-ish string / an array / an object, duplicate a key
 *   or an element, rename a key, wrap a value in an array), 40 % byte mutations of the text.
 *
 * Asserted for the JSON: every case is either refused with an `Error` naming the checkpoint
 * or loads with tensors identical to the saved ones (the JSON's RNG states and method JSON
 * carry no checksum, so their values may change). A stricter test (it failed before the fix, see
 * FINDING below) also asserts that an accepted checkpoint has every tensor the file holds
 * (variables, extra variables, optimiser slots, method arrays) and well-formed RNG states.
 */

import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import {
  type CheckpointOwner,
  loadCheckpoint,
  saveCheckpoint,
  type TrainerCheckpoint,
} from "../../lib/train/checkpoint.ts";
import { attempt, describeError, FuzzLog, mutateBytes, mutateJsonText, Prng } from "./mutate.ts";

const SEED = 0xc4e;
const TENSOR_CASES = 250;
const JSON_CASES = 250;
const TASK = 1; // files task-02.*
const OWNER: CheckpointOwner = { token: "fuzz-token", specSha256: "ab".repeat(32) };

function tensor(shape: number[], start: number) {
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Float32Array.from({ length: n }, (_, i) => start + i * 0.5) };
}

function validCheckpoint(): TrainerCheckpoint {
  return {
    taskIndex: TASK,
    variables: [tensor([2, 3], 1), tensor([3], -4)],
    extra: [{ name: "base.w", ...tensor([2, 2], 10) }],
    optimizer: [tensor([], 7), tensor([2, 3], 0), tensor([3], 0.25)],
    rng: {
      data: { hi: 1, lo: 2 },
      method: { hi: 3, lo: 4 },
      dropout: { hi: 5, lo: 4294967295 },
    },
    method: {
      json: { seen: 2, names: ["a", "b"] },
      arrays: { sig: tensor([4], 100) },
      rng: { hi: 9, lo: 10 },
    },
  };
}

/** Serialise a checkpoint's tensors (and task index) for comparisons. */
function tensorsOf(c: TrainerCheckpoint): string {
  const t = (x: { shape: number[]; data: Float32Array }) => ({
    shape: x.shape,
    data: Array.from(x.data),
  });
  return JSON.stringify({
    taskIndex: c.taskIndex,
    variables: c.variables.map(t),
    extra: c.extra?.map((e) => ({ name: e.name, ...t(e) })),
    optimizer: c.optimizer?.map(t) ?? null,
    arrays: Object.entries(c.method.arrays).map(([k, v]) => [k, t(v)]),
  });
}

function isRngState(s: unknown): boolean {
  const o = s as { hi?: unknown; lo?: unknown } | null;
  const u32 = (x: unknown) => Number.isInteger(x) && (x as number) >= 0 && (x as number) < 2 ** 32;
  return o !== null && typeof o === "object" && u32(o.hi) && u32(o.lo);
}

async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "treelora-fuzz-checkpoint-" });
  await saveCheckpoint(dir, validCheckpoint(), { owner: OWNER });
  const files = {
    tensors: join(dir, "task-02.safetensors"),
    json: join(dir, "task-02.json"),
  };
  const loaded = await loadCheckpoint(dir, TASK, { owner: OWNER });
  assert(loaded !== null);
  assertEquals(tensorsOf(loaded!), tensorsOf(validCheckpoint()));
  return {
    dir,
    files,
    tensorBytes: await Deno.readFile(files.tensors),
    jsonText: await Deno.readTextFile(files.json),
  };
}

Deno.test("fuzz checkpoint .safetensors: EVERY mutation of the tensor bytes is refused, naming the file", async () => {
  const { dir, files, tensorBytes } = await setup();
  try {
    const rng = new Prng(SEED);
    const log = new FuzzLog("checkpoint .safetensors", SEED);
    for (let c = 0; c < TENSOR_CASES; c++) {
      // Flips and overwrites are spread over the whole file, the data section included.
      const m = mutateBytes(tensorBytes, rng);
      await Deno.writeFile(files.tensors, m.value);
      log.cases++;
      const out = await attempt(() => loadCheckpoint(dir, TASK, { owner: OWNER }));
      if (out.ok) {
        log.accepted++;
        log.fail(c, m.description, "a corrupted tensor file was accepted");
      } else {
        log.refusedNaming(c, m.description, out.error, [files.tensors, files.json]);
      }
    }
    await Deno.writeFile(files.tensors, tensorBytes);
    log.assertClean();
    assertEquals(log.refused, TENSOR_CASES);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function fuzzJson(strict: boolean): Promise<void> {
  const { dir, files, jsonText } = await setup();
  try {
    const valid = JSON.parse(jsonText);
    const want = tensorsOf(validCheckpoint());
    const rng = new Prng(SEED + 1);
    const log = new FuzzLog(strict ? "checkpoint .json (strict)" : "checkpoint .json", SEED + 1);
    for (let c = 0; c < JSON_CASES; c++) {
      const m = mutateJsonText(valid, rng, { text: jsonText });
      await Deno.writeFile(files.json, m.value);
      log.cases++;
      const out = await attempt(() => loadCheckpoint(dir, TASK, { owner: OWNER }));
      if (!out.ok) {
        log.refusedNaming(c, m.description, out.error, [files.json, files.tensors]);
        continue;
      }
      log.accepted++;
      const ckpt = out.value;
      if (ckpt === null) {
        log.fail(c, m.description, "loadCheckpoint returned null although both files exist");
        continue;
      }
      let got: string;
      try {
        got = tensorsOf(ckpt);
      } catch (err) {
        log.fail(c, m.description, `accepted a malformed checkpoint: ${describeError(err)}`);
        continue;
      }
      if (ckpt.taskIndex !== TASK) {
        log.fail(c, m.description, `accepted taskIndex ${ckpt.taskIndex}`);
      }
      if (!strict) {
        // Fewer tensors may be listed (see the strict test), never different ones. Extra
        // variables are matched by String(name): a non-string name is left to the strict test.
        const saved = JSON.parse(want);
        const read = JSON.parse(got);
        for (const e of read.extra ?? []) e.name = String(e.name);
        const isPrefix = (a: unknown[] | null, b: unknown[] | null) =>
          (a ?? []).every((x, i) => JSON.stringify(x) === JSON.stringify((b ?? [])[i]));
        if (
          !isPrefix(read.variables, saved.variables) ||
          !isPrefix(read.optimizer, saved.optimizer) ||
          !(read.extra ?? []).every((e: unknown) =>
            saved.extra.some((s: unknown) => JSON.stringify(s) === JSON.stringify(e))
          ) ||
          !read.arrays.every((e: unknown) =>
            saved.arrays.some((s: unknown) => JSON.stringify(s) === JSON.stringify(e))
          )
        ) {
          log.fail(c, m.description, "accepted with tensors that differ from the saved ones");
        }
        continue;
      }
      if (got !== want) {
        log.fail(c, m.description, "accepted, but the tensors differ from the saved checkpoint");
      }
      if (!(ckpt.extra ?? []).every((e) => typeof e.name === "string")) {
        log.fail(
          c,
          m.description,
          `accepted extra names ${JSON.stringify(ckpt.extra?.map((e) => e.name))}`,
        );
      }
      const rngs = [ckpt.rng?.data, ckpt.rng?.method, ckpt.rng?.dropout, ckpt.method?.rng];
      if (!rngs.every(isRngState)) {
        log.fail(c, m.description, `accepted malformed RNG states ${JSON.stringify(rngs)}`);
      }
    }
    log.assertClean();
    assert(log.accepted > 0 && log.refused > 0, "both outcomes exercised");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("fuzz checkpoint .json: every mutation is refused naming the file or loads the saved tensors", () =>
  fuzzJson(false));

// FINDING (fixed: loadCheckpoint now validates its JSON): the JSON is not covered by the
// checksum and is checked only loosely, so loadCheckpoint (owner given) accepts, seed 0xc4f:
// - malformed RNG states (e.g. case 22: drop "rng"."data"; case 57: drop "rng"."data"."lo";
//   case 60: wrap "rng"."data"."hi" in an array; case 62: "rng" replaced by 9007199254740994);
//   restoreTrainer later throws a TypeError without the file name, or restores a wrong stream;
// - a checkpoint that silently loses its extra variables: "extra" dropped (case 156), renamed
//   (case 130) or replaced by a non-array (cases 78, 137, 159, 188);
// - an extra name that is not a string: "extra": [["base.w"]] (cases 46, 142) resolves to the
//   tensor extra.base.w and returns name ["base.w"].
Deno.test({
  name:
    "fuzz checkpoint .json (strict): an accepted checkpoint is the saved one, RNG states well-formed",
  fn: () => fuzzJson(true),
});
