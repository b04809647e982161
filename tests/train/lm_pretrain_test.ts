import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { createDecoder, DECODER_PRESETS } from "../../lib/models/decoder.ts";
import { Rng } from "../../lib/random.ts";
import { ByteTokenizer } from "../../lib/text/byte_tokenizer.ts";
import {
  type LmPretrainConfig,
  packDocuments,
  pretrainedDecoder,
  pretrainLearningRate,
} from "../../lib/train/lm_pretrain.ts";

const tokenizer = new ByteTokenizer();
const corpus = Array.from(
  { length: 12 },
  (_, i) => `Document ${i}: the quick brown fox jumps over the lazy dog ${i % 3}.`,
);
const PRETRAIN: LmPretrainConfig = {
  seed: 3,
  steps: 25,
  batchSize: 4,
  seqLength: 32,
  lr: 3e-3,
  warmupSteps: 3,
  heldOutFraction: 0.2,
};

Deno.test("packDocuments and the learning-rate schedule", () => {
  assertEquals(Array.from(packDocuments(["ab", "c"], tokenizer)), [256, 97, 98, 257, 256, 99, 257]);
  const p = { lr: 1, warmupSteps: 4, steps: 14 };
  assertEquals(pretrainLearningRate(0, p), 0.25);
  assertEquals(pretrainLearningRate(3, p), 1);
  assertEquals(pretrainLearningRate(4, p), 1);
  assert(Math.abs(pretrainLearningRate(14, p) - 0.1) < 1e-12);
});

Deno.test("pretrainedDecoder trains once (loss falls), then loads the same weights from the cache", async () => {
  await initBackend("wasm");
  const cacheDir = await Deno.makeTempDir();
  const before = tf.memory().numTensors;
  const config = DECODER_PRESETS["byte-micro"];
  const first = await pretrainedDecoder(config, {
    corpus,
    tokenizer,
    pretrain: PRETRAIN,
    cacheDir,
  });
  assertEquals(tf.memory().numTensors, before, "no tensors left behind");
  assertEquals(first.cached, false);
  assert(first.path.startsWith(`${cacheDir}/backbones/decoder-`), first.path);
  assert(first.report.finalLoss < Math.log(259) - 1, `final loss ${first.report.finalLoss}`);
  assert(first.report.heldOutLoss !== null && first.report.heldOutLoss < Math.log(259));
  assert(first.report.heldOutTokens > 0 && first.report.trainStreamTokens > 0);
  const second = await pretrainedDecoder(config, {
    corpus,
    tokenizer,
    pretrain: PRETRAIN,
    cacheDir,
  });
  assertEquals(second.cached, true);
  assertEquals(second.path, first.path);
  assertEquals(second.report, first.report);
  for (const [name, w] of first.weights) assertEquals(second.weights.get(name)!.data, w.data, name);
  // LoRA settings do not change the base (same entry); the corpus and the schedule do.
  const lora = await pretrainedDecoder({ ...config, lora: { rank: 4, alpha: 8, dropout: 0 } }, {
    corpus,
    tokenizer,
    pretrain: PRETRAIN,
    cacheDir,
  });
  assertEquals(lora.path, first.path);
  const other = await pretrainedDecoder(config, {
    corpus: corpus.slice(1),
    tokenizer,
    pretrain: { ...PRETRAIN, steps: 1 },
    cacheDir,
  });
  assert(other.path !== first.path);
  // The weights load into a decoder with LoRA sites.
  const model = createDecoder(config, { rng: new Rng(0), weights: second.weights });
  assertEquals(model.loraSites().length, 4);
  model.dispose();
  await assertRejects(
    () =>
      pretrainedDecoder(config, {
        corpus,
        tokenizer,
        pretrain: { ...PRETRAIN, heldOutFraction: 1 },
        cacheDir,
      }),
    Error,
    "heldOutFraction",
  );
  await Deno.remove(cacheDir, { recursive: true });
});
