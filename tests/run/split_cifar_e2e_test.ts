/**
 * End-to-end: a tiny Split CIFAR run (2 tasks, a few steps) through the real
 * experiment code, its files parsed and checked; determinism on the cpu
 * backend; the report re-rendered from the stored files.
 */
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { SPEC } from "../../experiments/split_cifar.ts";
import { readJson } from "../../lib/io.ts";
import { CL_METRICS } from "../../lib/metrics/cl_metrics.ts";
import { writeRunReport } from "../../lib/report/run_report.ts";
import { mergeShards } from "../../lib/report/shards.ts";
import { readCsvRows } from "../../lib/report/tables.ts";
import {
  runSplitCifar,
  type SplitCifarSpec,
  VIT_TRACK,
} from "../../lib/tracks/vit_class_incremental.ts";
import { generateSyntheticImages } from "../../lib/data/synthetic_images.ts";
import { writeCifar100 } from "../../lib/data/cifar100.ts";
import { splitPretrainClasses } from "../../lib/data/pretrain_split.ts";
import { specFromArgs } from "../helpers.ts";

function tinySpec(root: string, runId: string, backend: "cpu" | "wasm"): SplitCifarSpec {
  const spec: SplitCifarSpec = structuredClone(SPEC);
  spec.data.synthetic = { seed: 3, trainPerClass: 4, testPerClass: 2 };
  spec.data.numTasks = 2;
  spec.backbone.preset = "micro";
  spec.backbone.lora = { rank: 2, alpha: 4, dropout: 0.1 };
  spec.backbone.pretrain = {
    seed: 1,
    trainPerClass: 2,
    testPerClass: 1,
    steps: 2,
    batchSize: 16,
    lr: 1e-3,
  };
  spec.methods = [{ name: "seqlora" }, { name: "treelora" }];
  spec.train = { ...spec.train, epochs: 2, batchSize: 16, maxStepsPerEpoch: 2, logEvery: 1 };
  spec.backend = backend;
  spec.output = {
    resultsDir: join(root, "results"),
    cacheDir: join(root, "cache"),
    runId,
    overwrite: false,
  };
  spec.quiet = true;
  return spec;
}

Deno.test("split-cifar end to end: files written, parsed and consistent", async () => {
  const root = await Deno.makeTempDir();
  const result = await runSplitCifar(tinySpec(root, "e2e", "wasm"));
  const dir = result.runDir;
  assertEquals(dir, join(root, "results", "split-cifar", "e2e"));

  // deno-lint-ignore no-explicit-any
  const config = await readJson<any>(join(dir, "config.json"));
  assertEquals(config.scenario, "class-incremental");
  assertEquals(config.data.numTasks, 2);
  assertEquals(config.data.classOrder.length, 100);
  assertEquals(config.data.taskClasses[0].length, 50);
  assertEquals(config.backend.name, "wasm");
  assertEquals(typeof config.backend.blas.enabled, "boolean");
  assert(config.backend.blas.note.length > 0);
  assertEquals(config.methods.map((m: { name: string }) => m.name), ["seqlora", "treelora"]);
  assertEquals(config.methods[1].options.mode, "code");
  assertEquals(config.methods[1].options.lambda, 0.1);
  assert(config.provenance.tfjs.startsWith("4.22"));

  const matrix = await readCsvRows(join(dir, "matrix.csv"));
  assertEquals(matrix.length, 2 * 3); // per method: 1 row after task 1, 2 rows after task 2
  for (const r of matrix) {
    assert(Number(r.acc_cil) >= 0 && Number(r.acc_cil) <= 100);
    assert(
      Number(r.acc_til) >= Number(r.acc_cil) - 1e-9,
      "TIL accuracy is never below CIL accuracy",
    );
  }
  const metrics = await readCsvRows(join(dir, "metrics.csv"));
  const names = new Set(metrics.map((m) => m.metric));
  for (const m of CL_METRICS) assert(names.has(m.name), `metric ${m.name} missing`);
  for (const m of metrics) assert(String(m.formula).length > 5);
  // acc_final recomputed by hand from the matrix rows.
  for (const method of ["seqlora", "treelora"]) {
    const last = matrix.filter((r) => r.method === method && Number(r.trained_through) === 2);
    const acc = last.reduce((a, r) => a + Number(r.acc_cil), 0) / 2;
    const row = metrics.find((m) => m.method === method && m.metric === "acc_final")!;
    assertAlmostEquals(Number(row.value), acc, 1e-9);
  }
  const timings = await readCsvRows(join(dir, "timings.csv"));
  assertEquals(timings.length, 4);
  for (const t of timings) assertEquals(Number(t.train_images), 2 * 2 * 16);
  const components = await readCsvRows(join(dir, "components.csv"));
  const tl = new Set(components.filter((c) => c.method === "treelora").map((c) => c.component));
  for (const c of ["signature", "search", "regularizer", "tree_build", "forward_backward"]) {
    assert(tl.has(c), `treelora component ${c} missing`);
  }
  const losses = await readCsvRows(join(dir, "losses.csv"));
  assert(
    losses.some((l) => l.method === "treelora" && l.term === "regularizer" && Number(l.task) === 2),
  );
  assert(!losses.some((l) => l.method === "seqlora" && l.term === "regularizer"));
  const tree = await readJson<{ tree: { tasks: number[] } }>(
    join(dir, "methods", "treelora", "seed-0", "task-02.json"),
  );
  assertEquals(tree.tree.tasks, [0, 1]);
  for (
    const p of ["accuracy_curve", "forgetting_curve", "training_time", "accuracy_matrix_seqlora"]
  ) {
    const svg = await Deno.readTextFile(join(dir, "plots", `${p}.svg`));
    assert(svg.startsWith("<svg"), `${p}.svg is not an SVG`);
  }
  assert((await Deno.readTextFile(join(dir, "REPORT.md"))).includes("How these numbers were made"));
  assertEquals((await readJson<{ complete: boolean }>(join(dir, "status.json"))).complete, true);

  // The report command regenerates the same metrics from the stored files.
  const before = await Deno.readTextFile(join(dir, "metrics.csv"));
  await Deno.remove(join(dir, "metrics.csv"));
  await writeRunReport(dir, { png: false });
  assertEquals(await Deno.readTextFile(join(dir, "metrics.csv")), before);
  await Deno.remove(root, { recursive: true });
});

Deno.test("split-cifar is deterministic on the cpu backend (same seeds, same matrix)", async () => {
  const root = await Deno.makeTempDir();
  const spec = (id: string) => {
    const s = tinySpec(root, id, "cpu");
    s.methods = [
      { name: "treelora" },
      { name: "seqlora" },
      { name: "treelora", label: "treelora-lambda0", options: { lambda: 0 } },
    ];
    s.train.maxStepsPerEpoch = 2;
    return s;
  };
  const a = await runSplitCifar(spec("a"));
  const b = await runSplitCifar(spec("b"));
  const ma = await Deno.readTextFile(join(a.runDir, "matrix.csv"));
  const mb = await Deno.readTextFile(join(b.runDir, "matrix.csv"));
  assertEquals(ma, mb);
  // The sequence of selected tasks is identical across the two runs.
  const digest = async (dir: string) =>
    (await readJson<{ selectionDigest: string }>(
      join(dir, "methods", "treelora", "seed-0", "task-02.json"),
    )).selectionDigest;
  assertEquals(await digest(a.runDir), await digest(b.runDir));
  // With λ = 0 TreeLoRA trains exactly like SeqLoRA: same matrix, same losses.
  const rows = await readCsvRows(join(a.runDir, "matrix.csv"));
  const of = (m: string) =>
    rows.filter((r) => r.method === m).map((
      r,
    ) => [r.trained_through, r.task, r.acc_cil, r.acc_til]);
  assertEquals(of("treelora-lambda0"), of("seqlora"));
  const lossRows = await readCsvRows(join(a.runDir, "losses.csv"));
  const lossOf = (m: string) =>
    lossRows.filter((r) => r.method === m && r.term === "task").map((r) => r.value);
  assertEquals(lossOf("treelora-lambda0"), lossOf("seqlora"));
  assert(
    JSON.stringify(lossOf("treelora")) !== JSON.stringify(lossOf("seqlora")),
    "λ = 0.1 changes training",
  );
  const la = (await readCsvRows(join(a.runDir, "losses.csv"))).map((r) => r.value);
  const lb = (await readCsvRows(join(b.runDir, "losses.csv"))).map((r) => r.value);
  assertEquals(la, lb);
  // A different method seed changes the dropout masks, hence the losses.
  const c = spec("c");
  c.seeds.method = 99;
  const rc = await runSplitCifar(c);
  const lc = (await readCsvRows(join(rc.runDir, "losses.csv"))).map((r) => r.value);
  assert(JSON.stringify(lc) !== JSON.stringify(la));
  await Deno.remove(root, { recursive: true });
});

Deno.test("split-cifar with several seeds: one row block per seed, mean ± std in the summary", async () => {
  const root = await Deno.makeTempDir();
  const spec = tinySpec(root, "seeds", "wasm");
  spec.methods = [{ name: "seqlora" }];
  spec.seedList = [0, 1];
  spec.train.maxStepsPerEpoch = 1;
  const r = await runSplitCifar(spec);
  const matrix = await readCsvRows(join(r.runDir, "matrix.csv"));
  assertEquals([...new Set(matrix.map((m) => m.seed))], [0, 1]);
  const summary = await readCsvRows(join(r.runDir, "summary.csv"));
  assertEquals(summary.length, 1);
  assertEquals(summary[0].runs, 2);
  // mean ± std of acc_final over the two seeds, recomputed from metrics.csv.
  const accs = (await readCsvRows(join(r.runDir, "metrics.csv")))
    .filter((m) => m.metric === "acc_final").map((m) => Number(m.value));
  assertEquals(accs.length, 2);
  const mean = (accs[0] + accs[1]) / 2;
  const std = Math.abs(accs[0] - accs[1]) / Math.SQRT2;
  assertEquals(summary[0].acc_final, `${mean.toFixed(2)} ± ${std.toFixed(2)}`);
  await Deno.remove(root, { recursive: true });
});

Deno.test("a 2-shard sweep over orders × seeds × methods, merged, equals the unsharded sweep", async () => {
  const root = await Deno.makeTempDir();
  const sweep = (runId: string, shard: { index: number; count: number } | null) => {
    const s = tinySpec(root, runId, "wasm");
    s.methods = [{ name: "seqlora" }, { name: "treelora" }];
    s.seedList = [0, 1];
    s.orderList = [0, null];
    s.train.maxStepsPerEpoch = 1;
    s.shard = shard;
    return s;
  };
  const whole = await runSplitCifar(sweep("whole", null));
  await runSplitCifar(sweep("sharded", { index: 1, count: 2 }));
  await runSplitCifar(sweep("sharded", { index: 2, count: 2 }));
  const shardedDir = join(root, "results", "split-cifar", "sharded");
  const { shards, complete } = await mergeShards(shardedDir);
  assertEquals([shards, complete], [2, true]);
  await writeRunReport(shardedDir, { png: false });
  // Every accuracy number is equal; wall-clock columns naturally differ between the two sweeps.
  const clock = /seconds|per_second|time_ratio/;
  const noClock = (rows: Record<string, unknown>[]) =>
    rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !clock.test(k))));
  for (const table of ["matrix.csv", "metrics.csv", "summary.csv"]) {
    const a = noClock(await readCsvRows(join(whole.runDir, table)));
    const b = noClock(await readCsvRows(join(shardedDir, table)));
    assertEquals(b, a, table);
  }
  const matrix = await readCsvRows(join(whole.runDir, "matrix.csv"));
  assertEquals([...new Set(matrix.map((r) => String(r.order)))], ["0", "natural"]);
  assertEquals(matrix.length, 2 * 2 * 2 * 3); // orders × seeds × methods × (1 + 2) rows
  const summary = await readCsvRows(join(whole.runDir, "summary.csv"));
  assertEquals(summary.map((r) => r.runs), [4, 4]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("split-cifar --pretrain-classes: a disjoint real-image pre-training split, augmented, with a linear probe", async () => {
  const root = await Deno.makeTempDir();
  try {
    // A 20-class "real" set in CIFAR-100 layout (the synthetic generator's images, written out).
    const { train, test } = generateSyntheticImages({
      seed: 5,
      trainPerClass: 3,
      testPerClass: 2,
      numCoarse: 4,
      finePerCoarse: 5,
    });
    const data = join(root, "data");
    await Deno.mkdir(data);
    await writeCifar100(join(data, "train.bin"), train);
    await writeCifar100(join(data, "test.bin"), test);
    const args = (out: string) => [
      `--data-dir=${data}`,
      "--pretrain-classes=12",
      "--pretrain-split-seed=4",
      "--pretrain-augment=crop-flip",
      "--probe-per-class=2",
      "--tasks=2",
      "--preset=micro",
      "--pretrain-steps=2",
      "--max-steps-per-epoch=1",
      "--epochs=1",
      "--methods=seqlora",
      "--backend=cpu",
      "--blas=off",
      `--results-dir=${join(root, "results")}`,
      `--cache-dir=${join(root, "cache")}`,
      `--out=${out}`,
      "--quiet",
    ];
    const spec = specFromArgs(SPEC, args("split"), VIT_TRACK);
    spec.backbone.pretrain.batchSize = 16; // 12 classes × 3 images
    const { runDir } = await runSplitCifar(spec);
    // deno-lint-ignore no-explicit-any
    const config = await readJson<any>(join(runDir, "config.json"));
    const expected = splitPretrainClasses(20, { pretrainClasses: 12, seed: 4 });
    assertEquals(config.data.pretrainSplit.pretrainClasses, expected.pretrainClasses);
    assertEquals(config.data.pretrainSplit.streamClasses, expected.streamClasses);
    // The stream is the 8 other classes, 4 per task, none of them a pre-training class.
    const streamed = config.data.taskClasses.flat() as number[];
    assertEquals(streamed.length, 8);
    assertEquals(streamed.filter((c) => expected.pretrainClasses.includes(c)), []);
    assertEquals(config.data.classOrder.length, 8);
    const pre = config.backbone.pretrain;
    assertEquals(pre.augment, { padding: 4, flip: true });
    assert(pre.data.startsWith("real images: 12 classes of"), pre.data);
    // The probe ran on the stream's classes: 2 training images each, every test image.
    const probe = config.backbone.linearProbe;
    assertEquals([probe.classes, probe.trainImages, probe.testImages], [8, 16, 16]);
    // 16 standardised feature vectors of dimension 32 are separable: the probe fits them all.
    assertEquals(probe.trainAccuracy, 100);
    // The backbone's cache key holds the data's identity: another split seed (other classes,
    // the same flags otherwise) pre-trains into another cache file.
    const other = specFromArgs(
      SPEC,
      [...args("other-split"), "--pretrain-split-seed=5"],
      VIT_TRACK,
    );
    other.backbone.pretrain.batchSize = 16;
    const { runDir: otherDir } = await runSplitCifar(other);
    // deno-lint-ignore no-explicit-any
    const otherConfig = await readJson<any>(join(otherDir, "config.json"));
    assertEquals(otherConfig.data.pretrainSplit.seed, 5);
    assert(otherConfig.backbone.pretrain.cache !== pre.cache, "two splits share a cache file");
    assertEquals(otherConfig.backbone.pretrain.cached, false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("split-cifar pre-training flags: combinations that would be ignored are refused, naming the flag", () => {
  const refused = (args: string[], text: string) =>
    assertThrows(() => specFromArgs(SPEC, args, VIT_TRACK), Error, text);
  refused(["--pretrain-classes=50"], "give --data-dir");
  refused(["--pretrain-split-seed=3"], "give --pretrain-classes too");
  refused(["--data-dir=x", "--pretrain-augment=blur"], "crop-flip or none, got blur");
  refused(["--weights=ckpt", "--pretrain-steps=10"], "--pretrain-steps applies to the harness's");
  refused(["--weights=ckpt", "--pretrain-augment=crop-flip"], "--pretrain-augment applies");
  // A spec with a split takes a new seed alone, and a new class count keeps the seed.
  const withSplit: SplitCifarSpec = {
    ...structuredClone(SPEC),
    data: { ...structuredClone(SPEC.data), dir: "x", pretrainSplit: { classes: 50, seed: 0 } },
  };
  assertEquals(
    specFromArgs(withSplit, ["--pretrain-split-seed=3"], VIT_TRACK).data.pretrainSplit,
    { classes: 50, seed: 3 },
  );
  assertEquals(
    specFromArgs(withSplit, ["--pretrain-split-seed=3", "--pretrain-classes=40"], VIT_TRACK).data
      .pretrainSplit,
    { classes: 40, seed: 3 },
  );
  // "none" removes the field: the cache key is that of a spec that never had it.
  const none = specFromArgs(withSplit, ["--pretrain-augment=none"], VIT_TRACK);
  assertEquals("augment" in none.backbone.pretrain, false);
});
