/** End-to-end: a tiny TRACE run (byte-micro decoder, a step per epoch) through the real experiment code. */
import { assert, assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { SPEC } from "../../experiments/trace.ts";
import { readJson } from "../../lib/io.ts";
import { readCsvRows } from "../../lib/report/tables.ts";
import { LM_TRACK, runTrace, type TraceSpec } from "../../lib/tracks/lm_trace.ts";
import { specFromArgs } from "../helpers.ts";
import { PROSE_SOURCE } from "../../lib/data/prose_corpus.ts";

function tinySpec(root: string): TraceSpec {
  const spec = specFromArgs(SPEC, [
    "--preset=byte-micro",
    "--max-length=32",
    "--max-prompt-length=24",
    "--pretrain-steps=2",
    "--max-steps-per-epoch=2",
    "--epochs=1",
    "--reduced-epochs=1",
    "--max-new-tokens=3",
    "--backend=wasm",
    "--blas=off",
    `--results-dir=${join(root, "results")}`,
    `--cache-dir=${join(root, "cache")}`,
    "--out=e2e",
    "--quiet",
  ], LM_TRACK);
  spec.data.synthetic = { seed: 1, train: 4, eval: 2, test: 2 };
  spec.model.pretrain.corpusLines = 50;
  return spec;
}

Deno.test("trace end to end: score matrix, both BWTs, predictions per round", async () => {
  const root = await Deno.makeTempDir();
  const { runDir } = await runTrace(tinySpec(root));
  // deno-lint-ignore no-explicit-any
  const config = await readJson<any>(join(runDir, "config.json"));
  assertEquals(config.track, "lm");
  // --blas reaches the backend and is recorded (the native path is tested in native_blas_test).
  assertEquals(config.backend.blas.enabled, false);
  assertEquals(config.data.numTasks, 8);
  assertEquals(config.decoding.strategy, "greedy");
  assertEquals(config.methods.map((m: { label: string }) => m.label), [
    "seqlora",
    "treelora",
    "treelora-equal-epochs",
  ]);
  assertEquals(config.methods[1].options.lambda, 0.5);
  // The default corpus: 50 synthetic lines (set above) and the spec's share of shipped prose,
  // mixed; the overlap check covers both.
  const corpus = config.model.pretrain.corpus;
  assertEquals(corpus.kind, "synthetic+prose");
  assertEquals(corpus.prose.sha256, PROSE_SOURCE.sha256);
  assert(corpus.prose.characters <= SPEC.model.pretrain.proseCharacters!);
  assertEquals(corpus.documents, 50 + corpus.prose.paragraphs);
  assertEquals(corpus.overlap.overlapping, 0);
  const matrix = await readCsvRows(join(runDir, "matrix.csv"));
  assertEquals(matrix.length, 3 * 36); // 1 + 2 + … + 8 rows per method
  assertEquals(new Set(matrix.map((r) => r.metric)).size, 5);
  for (const r of matrix) assert(Number(r.score) >= 0 && Number(r.score) <= 100);
  const metrics = await readCsvRows(join(runDir, "metrics.csv"));
  for (const name of ["op_trace", "bwt_trace", "bwt_treelora_code"]) {
    assertEquals(metrics.filter((m) => m.metric === name).length, 3);
  }
  // OP recomputed from the last row block of seqlora.
  const last = matrix.filter((r) => r.method === "seqlora" && Number(r.trained_through) === 8);
  const op = last.reduce((a, r) => a + Number(r.score), 0) / 8;
  assertAlmostEquals(
    Number(metrics.find((m) => m.method === "seqlora" && m.metric === "op_trace")!.value),
    op,
    1e-6,
  );
  // Round 3 of seqlora holds predictions for tasks 1..3, 2 test examples each.
  const lines =
    (await Deno.readTextFile(join(runDir, "predictions", "seqlora", "seed-0", "round-03.jsonl")))
      .trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(lines.length, 6);
  for (const l of lines) {
    assertEquals(Object.keys(l).sort(), ["prediction", "prompt", "reference", "score", "task"]);
  }
  const timings = await readCsvRows(join(runDir, "timings.csv"));
  assert(timings.every((t) => Number(t.train_tokens) > 0 && Number(t.generated_tokens) >= 0));
  assert((await Deno.readTextFile(join(runDir, "REPORT.md"))).includes("op_trace"));
  await Deno.remove(root, { recursive: true });
});

Deno.test("trace on the real TRACE-500 copy: a task without a train split stops with a clear message", async () => {
  const dir = new URL("../../../shared/data/trace", import.meta.url).pathname;
  try {
    await Deno.stat(join(dir, "MeetingBank"));
  } catch {
    console.warn(`skipped: ${dir} not present`);
    return;
  }
  const root = await Deno.makeTempDir();
  const spec = specFromArgs(SPEC, [
    "--data-dir",
    dir,
    "--order",
    "trace",
    `--cache-dir=${join(root, "c")}`,
    "--quiet",
  ], LM_TRACK);
  spec.output.resultsDir = join(root, "results");
  await assertRejects(() => runTrace(spec), Error, "MeetingBank");
  await Deno.remove(root, { recursive: true });
});

Deno.test("trace resume: a run continued from its task-1 checkpoint equals the uninterrupted run", async () => {
  const root = await Deno.makeTempDir();
  const spec = tinySpec(root);
  spec.methods = [{ name: "treelora" }];
  spec.train.maxStepsPerEpoch = 3;
  spec.train.epochs = 2;
  const full = await runTrace(spec);
  // A copy of the run as it stood after task 1: status says 1 task, later checkpoints gone.
  const copy = join(root, "results", "trace", "cut");
  await Deno.mkdir(copy, { recursive: true });
  for (const name of ["config.json", "matrix.csv", "timings.csv", "components.csv", "losses.csv"]) {
    await Deno.copyFile(join(full.runDir, name), join(copy, name));
  }
  const status = JSON.parse(await Deno.readTextFile(join(full.runDir, "status.json")));
  status.finished = { "treelora/0": 1 };
  status.complete = false;
  await Deno.writeTextFile(join(copy, "status.json"), JSON.stringify(status));
  const ck = join(copy, "checkpoints", "treelora", "seed-0");
  await Deno.mkdir(ck, { recursive: true });
  for (const ext of ["safetensors", "json"]) {
    await Deno.copyFile(
      join(full.runDir, "checkpoints", "treelora", "seed-0", `task-01.${ext}`),
      join(ck, `task-01.${ext}`),
    );
  }
  const resumed = structuredClone(spec);
  resumed.output.runId = "cut";
  resumed.resume = true;
  await runTrace(resumed);
  const rows = async (dir: string) =>
    (await readCsvRows(join(dir, "matrix.csv"))).map((r) =>
      `${r.trained_through}|${r.task}|${r.score}`
    );
  assertEquals(await rows(copy), await rows(full.runDir));
  // The losses of tasks 2.. are retrained after the resume and must match to the digit (scores
  // of such a tiny model can be 0 everywhere; the losses cannot hide a wrong restore).
  const losses = async (dir: string) =>
    (await readCsvRows(join(dir, "losses.csv"))).filter((r) => Number(r.task) >= 2)
      .map((r) => `${r.task}|${r.epoch}|${r.step}|${r.term}|${r.value}`);
  const resumedLosses = await losses(copy);
  assert(resumedLosses.length > 10);
  assertEquals(resumedLosses, await losses(full.runDir));
  await Deno.remove(root, { recursive: true });
});

Deno.test("trace --orders over the O-LoRA benchmark: an order column, runs = orders × seeds", async () => {
  const dir = new URL("../../../shared/data/olora", import.meta.url).pathname;
  try {
    await Deno.stat(join(dir, "dbpedia"));
  } catch {
    console.warn(`skipped: ${dir} not present`);
    return;
  }
  const root = await Deno.makeTempDir();
  const spec = specFromArgs(SPEC, [
    `--data-dir=${dir}`,
    "--orders=olora-1,olora-2",
    "--seeds=0,1",
    "--preset=byte-micro",
    "--max-length=32",
    "--max-prompt-length=24",
    "--pretrain-steps=2",
    "--max-steps-per-epoch=1",
    "--epochs=1",
    "--max-new-tokens=2",
    "--max-train=2",
    "--max-test=2",
    "--methods=seqlora",
    `--results-dir=${join(root, "results")}`,
    `--cache-dir=${join(root, "cache")}`,
    "--quiet",
  ], LM_TRACK);
  spec.model.pretrain.corpusLines = 50;
  const { runDir } = await runTrace(spec);
  const matrix = await readCsvRows(join(runDir, "matrix.csv"));
  assertEquals([...new Set(matrix.map((r) => r.order))], ["olora-1", "olora-2"]);
  // olora-1 trains dbpedia, amazon, yahoo, agnews; olora-2 swaps the last two.
  const lastOf = (order: string) =>
    matrix.filter((r) =>
      r.order === order && Number(r.seed) === 0 && Number(r.trained_through) === 4
    )
      .map((r) => r.task_name);
  assertEquals(lastOf("olora-1"), ["dbpedia", "amazon", "yahoo", "agnews"]);
  assertEquals(lastOf("olora-2"), ["dbpedia", "amazon", "agnews", "yahoo"]);
  assertEquals((await readCsvRows(join(runDir, "summary.csv")))[0].runs, 4);
  await Deno.remove(root, { recursive: true });
});

Deno.test("a task with an empty test split is an error before training, never a 0/0 score", async () => {
  const root = await Deno.makeTempDir({ prefix: "treelora-empty-test-" });
  try {
    const data = join(root, "data");
    for (const [task, test] of [["FOMC", 3], ["C-STANCE", 0]] as const) {
      await Deno.mkdir(join(data, task), { recursive: true });
      const rec = (n: number) =>
        JSON.stringify(Array.from({ length: n }, (_, k) => ({ prompt: `q${k}`, answer: "A" })));
      await Deno.writeTextFile(join(data, task, "train.json"), rec(4));
      await Deno.writeTextFile(join(data, task, "eval.json"), rec(2));
      await Deno.writeTextFile(join(data, task, "test.json"), rec(test));
    }
    const spec = specFromArgs(SPEC, [
      "--data-dir",
      data,
      "--tasks",
      "FOMC,C-STANCE",
      `--cache-dir=${join(root, "c")}`,
      "--quiet",
    ], LM_TRACK);
    spec.output.resultsDir = join(root, "results");
    await assertRejects(
      () => runTrace(spec),
      Error,
      `task C-STANCE has no test examples (C-STANCE/test.json under ${data})`,
    );
    // Nothing was trained or written for the run.
    assertEquals(await Deno.stat(join(root, "results")).then(() => true, () => false), false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("--pretrain-data: the corpus, its overlap check and a harness-trained BPE are recorded; an overlapping corpus stops the run", async () => {
  const root = await Deno.makeTempDir({ prefix: "treelora-pretrain-data-" });
  try {
    const data = join(root, "stream");
    const other = join(root, "other");
    const rec = (prefix: string, n: number) =>
      Array.from({ length: n }, (_, k) => ({
        prompt: `${prefix} sentence number ${k} about the weather and the market. Answer:`,
        answer: k % 2 === 0 ? "A" : "B",
      }));
    for (const task of ["FOMC", "C-STANCE"]) {
      await Deno.mkdir(join(data, task), { recursive: true });
      await Deno.writeTextFile(join(data, task, "train.json"), JSON.stringify(rec(task, 4)));
      await Deno.writeTextFile(join(data, task, "test.json"), JSON.stringify(rec(`t ${task}`, 3)));
      await Deno.writeTextFile(join(data, task, "eval.json"), JSON.stringify(rec(`e ${task}`, 2)));
    }
    await Deno.mkdir(join(other, "NumGLUE-cm"), { recursive: true });
    await Deno.mkdir(join(other, "FOMC"), { recursive: true }); // a stream task: left out
    const corpus = rec("an unrelated", 30);
    await Deno.writeTextFile(join(other, "NumGLUE-cm", "train.json"), JSON.stringify(corpus));
    await Deno.writeTextFile(join(other, "FOMC", "train.json"), JSON.stringify(rec("FOMC", 4)));
    const args = (out: string) => [
      "--data-dir",
      data,
      "--tasks",
      "FOMC,C-STANCE",
      "--pretrain-data",
      other,
      "--tokenizer",
      "bpe-2048",
      "--preset",
      "bpe-tiny",
      "--pretrain-steps=2",
      "--max-steps-per-epoch=1",
      "--epochs=1",
      "--reduced-epochs=1",
      "--max-new-tokens=2",
      "--methods=seqlora",
      "--backend=wasm",
      "--blas=off",
      `--results-dir=${join(root, "results")}`,
      `--cache-dir=${join(root, "cache")}`,
      `--out=${out}`,
      "--quiet",
    ];
    const { runDir } = await runTrace(specFromArgs(SPEC, args("ok"), LM_TRACK));
    // deno-lint-ignore no-explicit-any
    const config = await readJson<any>(join(runDir, "config.json"));
    const c = config.model.pretrain.corpus;
    assertEquals([c.kind, c.documents, c.excluded], ["real", 30, ["FOMC"]]);
    // --pretrain-data replaces the default corpus, the shipped prose included.
    assertEquals(config.model.pretrain.proseCharacters, 0);
    assertThrows(
      () => specFromArgs(SPEC, [...args("both"), "--pretrain-prose=1000"], LM_TRACK),
      Error,
      "--pretrain-data replaces",
    );
    assertEquals(c.tasks.map((t: { name: string }) => t.name), ["NumGLUE-cm"]);
    assertEquals(c.overlap.checkedStreamExamples, 2 * (4 + 3));
    assertEquals(c.overlap.overlapping, 0);
    const tok = config.model.tokenizerDetails;
    assertEquals(tok.kind, "bpe-trained");
    assert(tok.path.startsWith(join(root, "cache", "tokenizers")));
    const bytes = await Deno.readFile(tok.path);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    assertEquals(tok.sha256, Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""));
    // The report adds the bootstrap intervals.
    const summary = await readCsvRows(join(runDir, "summary.csv"));
    assert(/^\[-?[0-9.]+, -?[0-9.]+\]$/.test(String(summary[0].op_trace_95ci)));
    assertEquals((await readCsvRows(join(runDir, "intervals.csv"))).length, 4); // OP, BWT, 2 finals

    // A corpus holding a stream example (re-spaced and re-cased) stops the run before training.
    const leaked = [...corpus, { ...rec("C-STANCE", 4)[2] }];
    leaked[30].prompt = leaked[30].prompt.toUpperCase().replace(" ", "   ");
    await Deno.writeTextFile(join(other, "NumGLUE-cm", "train.json"), JSON.stringify(leaked));
    await assertRejects(
      () => runTrace(specFromArgs(SPEC, args("leak"), LM_TRACK)),
      Error,
      "the pre-training corpus contains 1 of the stream's 14 examples (C-STANCE train #2",
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
