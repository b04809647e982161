/**
 * Data integrity (issue 18, classes 4, 5, 8): `--overwrite` empties the old run folder; a
 * checkpoint carries the SHA-256 of its tensor file and the run it belongs to, and resume
 * refuses a corrupt, unverifiable or foreign one; a task's checkpoint is written before the
 * status that counts the task; a diverging loss is flagged (or stops the run).
 */
import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { join } from "@std/path";
import { exists } from "../../lib/io.ts";
import { RunWriter } from "../../lib/run/run_writer.ts";
import {
  loadCheckpoint,
  saveCheckpoint,
  type TrainerCheckpoint,
} from "../../lib/train/checkpoint.ts";
import { Rng } from "../../lib/random.ts";
import { withTempDir } from "../helpers.ts";

function checkpoint(taskIndex: number): TrainerCheckpoint {
  const rng = new Rng(3).state();
  return {
    taskIndex,
    variables: [{ shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) }],
    optimizer: null,
    rng: { data: rng, method: rng, dropout: rng },
    method: { json: { k: 1 }, arrays: { sig: { shape: [3], data: Float32Array.from([5, 6, 7]) } } },
  };
}

const CONFIG = { track: "vit", spec: { experiment: "split-cifar", lr: 0.001 } };

Deno.test("a checkpoint round-trips with its checksum and owner; a flipped byte, a missing checksum and a foreign run are refused", async () => {
  await withTempDir("treelora-ckpt-", async (dir) => {
    const owner = { token: "run-a", specSha256: "f".repeat(64) };
    await saveCheckpoint(dir, checkpoint(0), { owner });
    const meta = JSON.parse(await Deno.readTextFile(join(dir, "task-01.json")));
    assertEquals(meta.owner, owner);
    assertEquals(meta.tensorsSha256.length, 64);
    const back = (await loadCheckpoint(dir, 0, { owner }))!;
    assertEquals(Array.from(back.variables[0].data), [1, 2, 3, 4]);
    assertEquals(Array.from(back.method.arrays.sig.data), [5, 6, 7]);

    // Another run's checkpoint in the same folder.
    await assertRejects(
      () => loadCheckpoint(dir, 0, { owner: { token: "run-b", specSha256: owner.specSha256 } }),
      Error,
      "written by another run (run token run-a, this run run-b)",
    );
    // A flipped byte anywhere in the tensor file (here: in the last tensor's data).
    const path = join(dir, "task-01.safetensors");
    const bytes = await Deno.readFile(path);
    bytes[bytes.length - 2] ^= 0x01;
    await Deno.writeFile(path, bytes);
    const corrupt = await assertRejects(() => loadCheckpoint(dir, 0, { owner }), Error);
    assertStringIncludes(corrupt.message, `${path}: SHA-256`);
    assertStringIncludes(corrupt.message, "the checkpoint is corrupt and is not resumed");
    // No checksum at all.
    delete meta.tensorsSha256;
    await Deno.writeTextFile(join(dir, "task-01.json"), JSON.stringify(meta));
    await assertRejects(
      () => loadCheckpoint(dir, 0, { owner }),
      Error,
      "no tensorsSha256 checksum",
    );
  });
});

Deno.test("--overwrite empties the old run folder (checkpoints, plots) and draws a new run token", async () => {
  await withTempDir("treelora-overwrite-", async (root) => {
    const dir = join(root, "split-cifar", "x");
    const first = await RunWriter.create(dir, { config: CONFIG, numTasks: 2 });
    await first.recorder({ method: "seqlora", seed: 0 }).checkpoint!(checkpoint(0));
    await Deno.mkdir(join(dir, "plots"), { recursive: true });
    await Deno.writeTextFile(join(dir, "plots", "old.svg"), "<svg/>");
    await Deno.writeTextFile(join(dir, "matrix.csv"), "method,seed\nseqlora,0\n");
    await assertRejects(
      () => RunWriter.create(dir, { config: CONFIG, numTasks: 2 }),
      Error,
      "already holds a run",
    );
    const second = await RunWriter.create(dir, { config: CONFIG, numTasks: 2, overwrite: true });
    assertEquals(await exists(join(dir, "plots")), false);
    assertEquals(await exists(join(dir, "checkpoints")), false);
    assertEquals(await exists(join(dir, "matrix.csv")), false);
    assertNotEquals(second.owner.token, first.owner.token);
    assertEquals(second.owner.specSha256, first.owner.specSha256);
    // The first run's checkpoint, put back by hand, is refused by the second run.
    await saveCheckpoint(second.checkpointDir({ method: "seqlora", seed: 0 }), checkpoint(0), {
      owner: first.owner,
    });
    await assertRejects(
      () =>
        loadCheckpoint(second.checkpointDir({ method: "seqlora", seed: 0 }), 0, {
          owner: second.owner,
        }),
      Error,
      "written by another run",
    );
    // A folder that is not a run folder is never emptied.
    const other = join(root, "split-cifar", "notes");
    await Deno.mkdir(other, { recursive: true });
    await Deno.writeTextFile(join(other, "mine.txt"), "keep");
    await assertRejects(
      () => RunWriter.create(other, { config: CONFIG, numTasks: 2, overwrite: true }),
      Error,
      "is not a run folder",
    );
    assertEquals(await Deno.readTextFile(join(other, "mine.txt")), "keep");
  });
});

Deno.test("reopen refuses a status without a run identity and a config.json edited after the start", async () => {
  await withTempDir("treelora-reopen-", async (root) => {
    const dir = join(root, "split-cifar", "x");
    const writer = await RunWriter.create(dir, { config: CONFIG, numTasks: 2 });
    const reopened = await RunWriter.reopen(dir);
    assertEquals(reopened.owner, writer.owner);
    const config = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
    config.spec.lr = 0.1;
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config));
    await assertRejects(
      () => RunWriter.reopen(dir),
      Error,
      "its spec is not the one this run started with",
    );
    const status = JSON.parse(await Deno.readTextFile(join(dir, "status.json")));
    delete status.owner;
    await Deno.writeTextFile(join(dir, "status.json"), JSON.stringify(status));
    await assertRejects(() => RunWriter.reopen(dir), Error, "expected { finished, numTasks, owner");
  });
});

Deno.test("a loss above 10x its first value for 10 logged steps is a warning in status.json, or stops the run", async () => {
  await withTempDir("treelora-diverge-", async (root) => {
    for (const stop of [false, true]) {
      const dir = join(root, "split-cifar", `stop-${stop}`);
      const writer = await RunWriter.create(dir, { config: CONFIG, numTasks: 1 });
      const lines: string[] = [];
      writer.onDivergence({ stop, log: (l) => lines.push(l) });
      const rec = writer.recorder({ method: "seqlora", seed: 0 });
      const at = (step: number, value: number) => ({
        task: 0,
        epoch: 0,
        step,
        term: "total",
        value,
      });
      // 9 steps above 10x: not yet; a dip resets the count.
      await rec.losses([
        at(0, 2),
        ...Array.from({ length: 9 }, (_, i) => at(i + 1, 25)),
        at(10, 3),
      ]);
      let status = JSON.parse(await Deno.readTextFile(join(dir, "status.json")));
      assertEquals(status.warnings, undefined);
      const diverging = Array.from({ length: 10 }, (_, i) => at(11 + i, 1e7));
      if (stop) {
        await assertRejects(() => rec.losses(diverging), Error, "stopped (--stop-on-divergence)");
      } else {
        await rec.losses(diverging);
      }
      status = JSON.parse(await Deno.readTextFile(join(dir, "status.json")));
      assertEquals(status.warnings, [
        "seqlora seed 0: the loss diverged (1.000e+7 at task 1, epoch 1, step 21, above 10× " +
        "the first logged loss 2.000 for 10 logged steps in a row)",
      ]);
      assertEquals(lines, [`warning: ${status.warnings[0]}`]);
      // The losses themselves were written before the run stopped.
      assert((await Deno.readTextFile(join(dir, "losses.csv"))).includes("10000000"));
    }
  });
});
