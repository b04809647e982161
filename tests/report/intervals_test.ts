import { assertAlmostEquals, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import { RunWriter } from "../../lib/run/run_writer.ts";
import { withWriteRoots } from "../../lib/io.ts";
import { bootstrapIntervals } from "../../lib/metrics/bootstrap.ts";
import {
  formatInterval,
  locatePredictions,
  predictionsFolder,
  readPredictions,
  runIntervals,
} from "../../lib/report/intervals.ts";
import { readCsvRows } from "../../lib/report/tables.ts";
import type { LmPrediction } from "../../lib/train/lm_incremental.ts";

const TIMING = {
  trainSeconds: 1,
  evalSeconds: 1,
  trainExamples: 1,
  trainTokens: 1,
  examplesPerSecond: 1,
  tokensPerSecond: 1,
  generatedTokens: 1,
  components: {},
};

function preds(scores: number[]): LmPrediction[] {
  return scores.map((s, k) => ({ prompt: `p${k}`, prediction: "x", reference: "y", score: s }));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

Deno.test("runIntervals reads what the run writer stored and equals the bootstrap of those scores", async () => {
  const root = await Deno.makeTempDir();
  const dir = join(root, "run");
  const a1 = [100, 0, 100, 100, 0];
  const a2 = [100, 0, 0, 100, 0];
  const b2 = [0, 100, 100];
  await withWriteRoots([root], async () => {
    const writer = await RunWriter.create(dir, { config: { track: "lm" }, numTasks: 2 });
    for (const [seed, order] of [[0, "olora-1"], [1, "olora-1"]] as const) {
      const rec = writer.lmRecorder({ method: "Tree LoRA", seed, order }, {
        taskNames: ["A", "B"],
      });
      await rec.taskDone(0, {
        row: { scores: [mean(a1)], metrics: ["accuracy"], examples: [5] },
        predictions: [preds(a1)],
        timing: TIMING,
      });
      await rec.taskDone(1, {
        row: { scores: [mean(a2), mean(b2)], metrics: ["accuracy", "accuracy"], examples: [5, 3] },
        predictions: [preds(a2), preds(b2)],
        timing: TIMING,
      });
    }
  });
  assertEquals(
    predictionsFolder({ method: "Tree LoRA", seed: 1, order: "olora-1" }),
    join("predictions", "tree-lora", "seed-1-order-olora-1"),
  );
  const matrix = await readCsvRows(join(dir, "matrix.csv"));
  const r = await runIntervals(dir, matrix, { numTasks: 2 });
  assertEquals(r.skipped, []);
  const cell = { tasks: ["A", "B"], rounds: [[a1], [a2, b2]] };
  const expected = bootstrapIntervals([cell, cell], { replicates: 1000, level: 0.95, seed: 0 });
  const got = r.byMethod.get("Tree LoRA")!;
  assertEquals(got, expected);
  assertAlmostEquals(got.op.value, (40 + 200 / 3) / 2, 1e-9);
  assertAlmostEquals(got.bwt.value, -10, 1e-9); // (1/2)((40 − 60) + 0)
  // Rows: the pooled OP, BWT and 2 final scores, then OP and BWT of each of the 2 runs.
  assertEquals(r.rows.length, 4 + 2 * 2);
  assertEquals(r.rows.map((x) => x.statistic).slice(0, 4), [
    "op_trace",
    "bwt_trace",
    "final:A",
    "final:B",
  ]);
  assertStringIncludes(String(r.rows[0].formula), "percentile bootstrap over test examples");
  assertEquals(formatInterval(got.op), `[${got.op.low.toFixed(2)}, ${got.op.high.toFixed(2)}]`);

  // A sweep merged from shards keeps each cell's predictions in its shard folder: found there.
  const shard = join(dir, "shard-2-of-2");
  await Deno.mkdir(join(shard, "predictions", "tree-lora"), { recursive: true });
  await Deno.rename(
    join(dir, "predictions", "tree-lora", "seed-1-order-olora-1"),
    join(shard, "predictions", "tree-lora", "seed-1-order-olora-1"),
  );
  assertEquals(
    await locatePredictions(dir, { method: "Tree LoRA", seed: 1, order: "olora-1" }),
    join(shard, "predictions", "tree-lora", "seed-1-order-olora-1"),
  );
  assertEquals((await runIntervals(dir, matrix, { numTasks: 2 })).byMethod.get("Tree LoRA"), got);
  await Deno.rename(
    join(shard, "predictions", "tree-lora", "seed-1-order-olora-1"),
    join(dir, "predictions", "tree-lora", "seed-1-order-olora-1"),
  );

  // A missing round file leaves the method out, by name.
  await Deno.remove(
    join(dir, "predictions", "tree-lora", "seed-1-order-olora-1", "round-02.jsonl"),
  );
  const missing = await runIntervals(dir, matrix, { numTasks: 2 });
  assertEquals(missing.byMethod.size, 0);
  assertStringIncludes(missing.skipped[0], "Tree LoRA: no ");
  await Deno.remove(root, { recursive: true });
});

Deno.test("readPredictions names the file and line of a malformed or out-of-range record", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "round-01.jsonl");
  const good = JSON.stringify({
    task: "t",
    prompt: "p",
    prediction: "x",
    reference: "y",
    score: 100,
  });
  for (
    const [bad, what] of [
      ["{not json", "line 2 is not JSON"],
      [JSON.stringify({ task: "t", reference: "y", score: 1e9 }), "line 2 needs"],
      [JSON.stringify({ task: "t", score: 0 }), "line 2 needs"],
    ]
  ) {
    await Deno.writeTextFile(path, `${good}\n${bad}\n`);
    await assertRejects(() => readPredictions(path), Error, `${path}: ${what}`);
  }
  await Deno.writeTextFile(path, `${good}\n\n`);
  assertEquals(await readPredictions(path), [{ task: "t", reference: "y", score: 100 }]);
  await Deno.remove(dir, { recursive: true });
});
