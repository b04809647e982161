import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { createDecoder, DECODER_PRESETS, type DecoderConfig } from "../../lib/models/decoder.ts";
import { Rng } from "../../lib/random.ts";
import { ByteTokenizer } from "../../lib/text/byte_tokenizer.ts";
import type { Tokenizer } from "../../lib/text/tokenizer.ts";
import { generate, generateTokens } from "../../lib/train/generate.ts";
import { trainingBatch } from "../../lib/train/lm_batches.ts";
import { lmLoss } from "../../lib/train/lm_loss.ts";
import { optimizerStep } from "../../lib/train/step.ts";

const MICRO: DecoderConfig = {
  ...DECODER_PRESETS["byte-micro"],
  lora: { rank: 2, alpha: 4, dropout: 0 },
};
const bytes = new ByteTokenizer();

/** Byte ids, but with a chosen EOS id (to steer a model whose logits are all equal). */
function withEos(eosId: number): Tokenizer {
  return {
    name: `bytes-eos-${eosId}`,
    vocabSize: 259,
    bosId: 256,
    eosId,
    padId: 258,
    encode: (s) => bytes.encode(s),
    decode: (ids) => bytes.decode(ids.filter((i) => i !== eosId)),
  };
}

/** A model whose logits are all zero (final RMSNorm weight 0): greedy always picks id 0. */
function flatModel() {
  const model = createDecoder(MICRO, { rng: new Rng(0) });
  const norm = model.baseWeights().get("model.norm.weight")!;
  tf.tidy(() => norm.assign(tf.zerosLike(norm)));
  return model;
}

Deno.test("generation stops at EOS and after maxNewTokens (hand-set model)", async () => {
  await initBackend("wasm");
  const model = flatModel();
  const prompts = ["a", "bcd", "efghijklmn"];
  const before = tf.memory().numTensors;
  const stopAtOnce = await generateTokens(model, prompts, {
    tokenizer: withEos(0),
    maxNewTokens: 5,
    maxPromptLength: 32,
  });
  assertEquals(stopAtOnce, [[], [], []]);
  const runToLimit = await generateTokens(model, prompts, {
    tokenizer: withEos(257),
    maxNewTokens: 5,
    maxPromptLength: 32,
    batchSize: 2,
  });
  assertEquals(runToLimit, [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]);
  assertEquals(
    await generate(model, prompts, { tokenizer: withEos(0), maxNewTokens: 5, maxPromptLength: 8 }),
    ["", "", ""],
  );
  assertEquals(tf.memory().numTensors, before, "no tensor leaks");
  model.dispose();
});

Deno.test("greedy generation: deterministic, batch-independent, cache equals recompute", async () => {
  await initBackend("wasm");
  const model = createDecoder(MICRO, { rng: new Rng(4) });
  const prompts = ["The cat", "a", "0123456789 long prompt", "xy"];
  const options = { tokenizer: bytes, maxNewTokens: 6, maxPromptLength: 24 };
  const before = tf.memory().numTensors;
  const a = await generateTokens(model, prompts, options);
  const b = await generateTokens(model, prompts, { ...options, batchSize: 3 });
  const c = await generateTokens(model, prompts, { ...options, kvCache: false });
  assertEquals(b, a);
  assertEquals(c, a);
  for (const [i, p] of prompts.entries()) {
    assertEquals(await generateTokens(model, [p], options), [a[i]], `prompt ${i} alone`);
  }
  assertEquals(tf.memory().numTensors, before, "no tensor leaks");
  model.dispose();
});

Deno.test("sampling: seeded and reproducible; needs an rng", async () => {
  await initBackend("wasm");
  const model = createDecoder(MICRO, { rng: new Rng(5) });
  const prompts = ["one", "two", "three"];
  const options = { tokenizer: bytes, maxNewTokens: 8, maxPromptLength: 16, temperature: 1.5 };
  const a = await generateTokens(model, prompts, { ...options, rng: new Rng(1) });
  const b = await generateTokens(model, prompts, { ...options, rng: new Rng(1) });
  const c = await generateTokens(model, prompts, { ...options, rng: new Rng(2) });
  assertEquals(a, b);
  assertNotEquals(a, c);
  await assertRejects(() => generateTokens(model, prompts, options), Error, "rng");
  model.dispose();
});

Deno.test("a model trained on one prompt → answer pair reproduces the answer greedily", async () => {
  await initBackend("wasm");
  const model = createDecoder(MICRO, { rng: new Rng(6) });
  model.setBaseTrainable(true);
  const vars = [...model.baseWeights().values()];
  const example = { prompt: "3+4=", answer: "7!" };
  const batch = trainingBatch([example], { tokenizer: bytes, maxLength: 32 });
  const opt = tf.train.adam(1e-2, 0.9, 0.95);
  let loss = Infinity;
  for (let step = 0; step < 40 && loss > 0.01; step++) {
    const r = await optimizerStep(vars, () => {
      const logits = model.logits(tf.tensor2d(batch.ids, batch.shape, "int32"), {
        training: true,
        attentionMask: tf.tensor2d(batch.mask, batch.shape, "int32"),
      });
      return { total: lmLoss(logits, batch.labels), terms: {} };
    }, { optimizer: opt, clipNorm: 1 });
    loss = r.total;
  }
  assert(loss < 0.05, `loss ${loss}`);
  opt.dispose();
  const out = await generate(model, [example.prompt, example.prompt], {
    tokenizer: bytes,
    maxNewTokens: 10,
    maxPromptLength: 32,
  });
  assertEquals(out, ["7!", "7!"]); // stopped at the learned EOS, well before 10 tokens
  model.dispose();
});

Deno.test("generation with an input prefix: cache equals recompute, per-row prefixes, no leaks", async () => {
  await initBackend("wasm");
  const model = createDecoder(MICRO, { rng: new Rng(8) });
  const prompts = ["The cat", "a", "0123456789 long prompt", "xy"];
  const options = { tokenizer: bytes, maxNewTokens: 6, maxPromptLength: 24 };
  const rng = new Rng(9);
  const shared = tf.variable(
    tf.tensor2d(Float32Array.from({ length: 3 * 32 }, () => 0.5 * rng.normal()), [3, 32]),
  );
  // A per-row prefix that depends on the row (its first real token's embedding row), as L2P's.
  const table = model.baseWeights().get("model.embed_tokens.weight")!;
  const perRow = (ids: tf.Tensor2D, mask: tf.Tensor2D) => {
    const [b, t] = ids.shape;
    const first = tf.argMax(mask, 1); // left padding: the first 1
    const tokens = tf.sum(tf.mul(tf.oneHot(first, t), tf.cast(ids, "float32")), 1);
    const rows = tf.gather(table, tf.cast(tokens, "int32"));
    return tf.reshape(tf.concat([rows, tf.mul(rows, -1)], 1), [b, 2, 32]);
  };
  const calls: number[] = [];
  const counted = (ids: tf.Tensor2D) => {
    calls.push(ids.shape[0]);
    return shared;
  };
  const before = tf.memory().numTensors;
  const plain = await generateTokens(model, prompts, options);
  for (const inputPrefix of [counted, perRow]) {
    const cached = await generateTokens(model, prompts, { ...options, inputPrefix, batchSize: 3 });
    const recomputed = await generateTokens(model, prompts, {
      ...options,
      inputPrefix,
      kvCache: false,
    });
    assertEquals(recomputed, cached);
    assertNotEquals(cached, plain, "the prefix changes the continuation");
    const none = await generateTokens(model, prompts, { ...options, inputPrefix: () => undefined });
    assertEquals(none, plain);
  }
  assertEquals(calls, [3, 1, 4], "once per prompt batch");
  assert(!shared.isDisposed, "a returned variable is never disposed");
  assertEquals(tf.memory().numTensors, before, "no tensor leaks");
  shared.dispose();
  model.dispose();
});
