/**
 * The real-model path through the experiments: a tiny Hugging Face-layout ViT and LLaMA, written by
 * the test, drive `exp:split-cifar --weights DIR` and `exp:trace --model DIR` for a few steps.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { SPEC as CIFAR } from "../../experiments/split_cifar.ts";
import { SPEC as TRACE } from "../../experiments/trace.ts";
import { readJson } from "../../lib/io.ts";
import { readCsvRows } from "../../lib/report/tables.ts";
import { runSplitCifar, VIT_TRACK } from "../../lib/tracks/vit_class_incremental.ts";
import { LM_TRACK, runTrace } from "../../lib/tracks/lm_trace.ts";
import { writeTinyHfLlama, writeTinyHfVit } from "../models/hf_fixtures.ts";
import { specFromArgs } from "../helpers.ts";

Deno.test("exp:split-cifar --weights DIR trains on a Hugging Face-layout ViT checkpoint; --backbone checks its shape", async () => {
  const root = await Deno.makeTempDir();
  const ckpt = join(root, "vit");
  await Deno.mkdir(ckpt);
  await writeTinyHfVit(ckpt, {
    seed: 3,
    preprocessor: { image_mean: [0.5, 0.5, 0.5], image_std: [0.25, 0.25, 0.25] },
  });
  const spec = specFromArgs(CIFAR, [
    `--weights=${ckpt}`,
    "--tasks=2",
    "--epochs=1",
    "--max-steps-per-epoch=2",
    "--batch-size=8",
    "--train-per-class=2",
    "--test-per-class=1",
    "--methods=seqlora,treelora",
    "--backend=wasm",
    `--results-dir=${join(root, "results")}`,
    `--cache-dir=${join(root, "cache")}`,
    "--out=hf",
    "--quiet",
  ], VIT_TRACK);
  const { runDir } = await runSplitCifar(spec);
  // deno-lint-ignore no-explicit-any
  const config = await readJson<any>(join(runDir, "config.json"));
  assert(String(config.backbone.memory).includes("parameters"));
  assertEquals(config.backbone.vit.dim, 24);
  assertEquals(config.backbone.vit.imageSize, 16);
  assertEquals(config.train.std, [0.25, 0.25, 0.25]); // from preprocessor_config.json
  assertEquals((await readCsvRows(join(runDir, "matrix.csv"))).length, 2 * 3);
  // --backbone vit-b16 checks that the checkpoint has that shape (this tiny one does not).
  const wrongShape = structuredClone(spec);
  wrongShape.backbone.preset = "vit-b16";
  wrongShape.output.runId = "hf-b16";
  await assertRejects(() => runSplitCifar(wrongShape), Error, "does not describe a vit-b16");
  // vit-b16 without weights is refused with the reason.
  const noWeights = specFromArgs(CIFAR, ["--backbone=vit-b16", "--quiet"], VIT_TRACK);
  noWeights.output.resultsDir = join(root, "r2");
  noWeights.output.cacheDir = join(root, "cache");
  await assertRejects(() => runSplitCifar(noWeights), Error, "needs real weights");
  await Deno.remove(root, { recursive: true });
});

Deno.test("exp:trace --model DIR trains and generates with a Hugging Face-layout LLaMA and its tokenizer", async () => {
  const root = await Deno.makeTempDir();
  const ckpt = join(root, "llama");
  await Deno.mkdir(ckpt);
  await writeTinyHfLlama(ckpt, { seed: 5 });
  const spec = specFromArgs(TRACE, [
    `--model=${ckpt}`,
    "--max-steps-per-epoch=1",
    "--epochs=1",
    "--reduced-epochs=1",
    "--max-new-tokens=3",
    "--methods=seqlora,treelora",
    "--backend=wasm",
    `--results-dir=${join(root, "results")}`,
    `--cache-dir=${join(root, "cache")}`,
    "--out=hf",
    "--quiet",
  ], LM_TRACK);
  spec.data.synthetic = { seed: 1, train: 2, eval: 1, test: 2 };
  spec.train.maxLength = 48;
  spec.train.maxPromptLength = 40;
  const { runDir } = await runTrace(spec);
  // deno-lint-ignore no-explicit-any
  const config = await readJson<any>(join(runDir, "config.json"));
  assert(String(config.model.tokenizer).startsWith("hf:"));
  assertEquals(config.model.decoder.layers, 2);
  assertEquals((await readCsvRows(join(runDir, "matrix.csv"))).length, 2 * 36);
  assertThrows(
    () => specFromArgs(TRACE, [`--model=${ckpt}`, "--preset=byte-tiny"], LM_TRACK),
    Error,
    "--model brings its own shape",
  );
  await Deno.remove(root, { recursive: true });
});
