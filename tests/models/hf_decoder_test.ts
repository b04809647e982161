import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { initBackend } from "../../lib/run/backend.ts";
import type { Decoder } from "../../lib/models/decoder.ts";
import {
  decoderConfigFromHf,
  llama3InverseFrequencies,
  loadHfDecoder,
  readHfDecoderCheckpoint,
} from "../../lib/models/hf_decoder.ts";
import { loadAdapter, saveAdapter } from "../../lib/models/peft_adapter.ts";
import { loadWeights, type TensorData } from "../../lib/models/safetensors.ts";
import { hfTokenizersAvailable } from "../../lib/text/hf_tokenizer.ts";
import { Rng } from "../../lib/random.ts";
import { tinyLlamaConfig, writeTinyHfLlama, writeWeights } from "./hf_fixtures.ts";
import { referenceLlamaLogits } from "./reference_decoder.ts";
import type { ReferenceLora } from "./reference_vit.ts";
import { maxAbsDiff, withTempDir } from "../helpers.ts";

const tokenizers = await hfTokenizersAvailable();
const LORA = { rank: 2, alpha: 4, dropout: 0 };

function logitsOf(model: Decoder, ids: number[]): Float32Array {
  return tf.tidy(() =>
    model.logits(tf.tensor2d(ids, [1, ids.length], "int32"), { training: false }).dataSync()
  ) as Float32Array;
}

Deno.test({
  name:
    "hf decoder: a tiny HF LLaMA (GQA, untied) tokenises and runs as the plain-TypeScript reference, 1e-4",
  ignore: !tokenizers,
  async fn() {
    await initBackend("cpu");
    await withTempDir("treelora-hfdec-", async (dir) => {
      const { tensors, config } = await writeTinyHfLlama(dir, { seed: 1 });
      const lines: string[] = [];
      const before = tf.memory().numTensors;
      const { decoder, tokenizer, checkpoint } = await loadHfDecoder(dir, {
        lora: LORA,
        rng: new Rng(0),
        log: (l) => lines.push(l),
      });
      assertEquals([tokenizer.bosId, tokenizer.eosId, tokenizer.vocabSize], [256, 257, 259]);
      assertEquals([decoder.config.kvHeads, decoder.config.headDim, decoder.config.tieEmbeddings], [
        2,
        8,
        false,
      ]);
      assertEquals(checkpoint.memory.parameters, decoder.parameterCount().base);
      assert(
        lines[0].includes(`${checkpoint.memory.parameters.toLocaleString("en-US")} parameters`),
      );
      const ids = [tokenizer.bosId, ...tokenizer.encode("hello there, hi")];
      assertEquals(ids.slice(1, 3), [258, 108]); // "he" merged, then "l"
      const got = logitsOf(decoder, ids);
      const ref = referenceLlamaLogits(tensors, { config, ids });
      const diff = maxAbsDiff(got, ref);
      assert(diff < 1e-4, `max |tfjs − reference| = ${diff}`);
      decoder.dispose();
      assertEquals(tf.memory().numTensors, before);
    });
  },
});

Deno.test({
  name: "hf decoder: tied embeddings, 2 shards, a stray lm_head and rotary buffers are skipped",
  ignore: !tokenizers,
  async fn() {
    await initBackend("cpu");
    await withTempDir("treelora-hfdec-", async (dir) => {
      const config = tinyLlamaConfig({ tie_word_embeddings: true, num_key_value_heads: 4 });
      const { tensors } = await writeTinyHfLlama(dir, {
        seed: 2,
        config,
        shards: 2,
        lmHead: true,
        invFreq: true,
      });
      const { decoder, checkpoint } = await loadHfDecoder(dir, { lora: LORA, rng: new Rng(0) });
      assertEquals(checkpoint.files.length, 3);
      assertEquals(checkpoint.ignored.length, 3); // 2 inv_freq + lm_head
      assert(checkpoint.notes[0].includes("lm_head.weight differs from model.embed_tokens.weight"));
      const ids = [256, 1, 2, 3, 200, 258, 9];
      const ref = referenceLlamaLogits(tensors, { config, ids });
      const diff = maxAbsDiff(logitsOf(decoder, ids), ref);
      assert(diff < 1e-4, `max |tfjs − reference| = ${diff}`);
      decoder.dispose();
    });
  },
});

Deno.test({
  name: "hf decoder: a PEFT adapter on q and v matches the reference with W + s·B·A",
  ignore: !tokenizers,
  async fn() {
    await initBackend("cpu");
    await withTempDir("treelora-hfdec-", async (dir) => {
      const { tensors, config } = await writeTinyHfLlama(dir, { seed: 3 });
      const lora = { rank: 4, alpha: 16, dropout: 0.1 };
      const a = await loadHfDecoder(dir, { lora, rng: new Rng(1) });
      const rng = new Rng(5);
      for (const s of a.decoder.loraSites()) {
        tf.tidy(() => s.b.assign(tf.randomNormal(s.b.shape, 0, 0.3, "float32", rng.int(1e6))));
      }
      const adapterDir = join(dir, "adapter");
      await saveAdapter(adapterDir, a.decoder, { baseModel: dir });
      const b = await loadHfDecoder(dir, { lora, rng: new Rng(2) });
      await loadAdapter(adapterDir, b.decoder);
      const file = await loadWeights(join(adapterDir, "adapter_model.safetensors"));
      const refLora: ReferenceLora = new Map();
      for (const [name, t] of file.tensors) {
        const m = /^base_model\.model\.(.+)\.lora_A\.weight$/.exec(name);
        if (m) {
          const bt = file.tensors.get(`base_model.model.${m[1]}.lora_B.weight`) as TensorData;
          refLora.set(m[1], { a: t, b: bt, scale: 4 });
        }
      }
      assertEquals(refLora.size, 4);
      assertEquals(refLora.get("model.layers.1.self_attn.v_proj")!.b.shape, [16, 4]); // 2 KV heads × 8
      const ids = [256, 72, 105, 33];
      const ref = referenceLlamaLogits(tensors, { config, ids, lora: refLora });
      const diff = maxAbsDiff(logitsOf(b.decoder, ids), ref);
      assert(diff < 1e-4, `with LoRA off by ${diff}`);
      assert(maxAbsDiff(referenceLlamaLogits(tensors, { config, ids }), ref) > 1e-2);
      a.decoder.dispose();
      b.decoder.dispose();
    });
  },
});

Deno.test({
  name: "hf decoder: the memory is stated and an oversized model refused before weights are read",
  ignore: !tokenizers,
  async fn() {
    await initBackend("cpu");
    await withTempDir("treelora-hfdec-", async (dir) => {
      // Llama-3.2-1B's config.json, no weights at all: refused on its size alone.
      await Deno.writeTextFile(
        join(dir, "config.json"),
        JSON.stringify({
          model_type: "llama",
          vocab_size: 128256,
          hidden_size: 2048,
          num_hidden_layers: 16,
          num_attention_heads: 32,
          num_key_value_heads: 8,
          head_dim: 64,
          intermediate_size: 8192,
          rms_norm_eps: 1e-5,
          rope_theta: 500000,
          tie_word_embeddings: true,
          max_position_embeddings: 131072,
          rope_scaling: {
            rope_type: "llama3",
            factor: 32,
            low_freq_factor: 1,
            high_freq_factor: 4,
            original_max_position_embeddings: 8192,
          },
        }),
      );
      await assertRejects(
        () => readHfDecoderCheckpoint(dir, { maxBytes: 4 * 2 ** 30 }),
        Error,
        "1,235,814,400 parameters need 4943257600 bytes (4.60 GiB) as float32 (parameters × 4 " +
          "bytes), more than the limit of 4294967296 bytes (4.00 GiB, maxBytes option)",
      );
      // The default limit (no --allow-sys here: 8 GiB) lets it past the check; then the
      // missing tokenizer stops it, still before any weight is read.
      const lines: string[] = [];
      await assertRejects(
        () => readHfDecoderCheckpoint(dir, { log: (l) => lines.push(l) }),
        Error,
        "could not read tokenizer file",
      );
      assert(lines[0].includes("1,235,814,400 parameters = 4.60 GiB as float32"), lines[0]);
    });
  },
});

Deno.test({
  name:
    "hf decoder: missing, unknown and misshapen tensors and a too-large tokenizer name the file",
  ignore: !tokenizers,
  async fn() {
    await initBackend("cpu");
    await withTempDir("treelora-hfdec-", async (dir) => {
      const { tensors, config } = await writeTinyHfLlama(dir, { seed: 4, weights: false });
      const cases: [string, (t: Map<string, TensorData>) => void, string][] = [
        ["missing", (t) => t.delete("lm_head.weight"), "missing 1 tensor(s): lm_head.weight"],
        [
          "unknown",
          (t) =>
            t.set("model.layers.0.self_attn.q_proj.bias", {
              shape: [1],
              data: new Float32Array(1),
            }),
          "1 tensor(s) the LLaMA decoder does not have: model.layers.0.self_attn.q_proj.bias",
        ],
        [
          "shape",
          (t) =>
            t.set(
              "model.layers.1.self_attn.k_proj.weight",
              t.get("model.layers.1.self_attn.q_proj.weight")!,
            ),
          `tensor "model.layers.1.self_attn.k_proj.weight" has shape [32,32], expected [16,32]`,
        ],
      ];
      for (const [label, edit, message] of cases) {
        const t = new Map(tensors);
        edit(t);
        await writeWeights(dir, t);
        await assertRejects(
          () => readHfDecoderCheckpoint(dir, {}),
          Error,
          `${join(dir, "model.safetensors")}: ${message}`,
          label,
        );
      }
      await Deno.writeTextFile(
        join(dir, "config.json"),
        JSON.stringify({ ...config, vocab_size: 200 }),
      );
      await assertRejects(
        () => readHfDecoderCheckpoint(dir, {}),
        Error,
        "tokenizer.json has 259 token ids, more than config.json's vocab_size 200",
      );
    });
  },
});

Deno.test("hf decoder: config.json mapping, refusals and notes", () => {
  const src = "m/config.json";
  const { config, notes } = decoderConfigFromHf(
    tinyLlamaConfig({ num_key_value_heads: undefined }),
    {
      source: src,
    },
  );
  assertEquals([config.kvHeads, config.heads, config.mlpActivation, config.contextLength], [
    4,
    4,
    "silu",
    64,
  ]);
  assertEquals(notes, []);
  const bad: [Record<string, unknown>, string][] = [
    [{ model_type: "gemma" }, `${src}: model_type "gemma" is not supported`],
    [{ attention_bias: true }, `${src}: field "attention_bias" is true`],
    [{ hidden_act: "gelu" }, `${src}: field "hidden_act" is "gelu", expected "silu"`],
    [
      { rope_scaling: { type: "linear", factor: 2 } },
      `${src}: rope_scaling type "linear" is not supported`,
    ],
    [
      { num_key_value_heads: 3 },
      "num_attention_heads 4 is not a multiple of num_key_value_heads 3",
    ],
    [{ hidden_size: 0 }, `${src}: field "hidden_size" must be a positive integer, got 0`],
  ];
  for (const [override, message] of bad) {
    assertThrows(
      () => decoderConfigFromHf(tinyLlamaConfig(override), { source: src }),
      Error,
      message,
    );
  }
  const mistral = decoderConfigFromHf(
    tinyLlamaConfig({ model_type: "mistral", sliding_window: 16 }),
    { source: src },
  );
  assert(mistral.notes[0].startsWith("sliding_window 16 is not modelled"));
  const llama3 = decoderConfigFromHf(
    tinyLlamaConfig({
      rope_scaling: {
        rope_type: "llama3",
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 32,
      },
    }),
    { source: src },
  );
  assert(
    llama3.notes[0].startsWith("rope_scaling llama3 (factor 8) is not modelled"),
    llama3.notes[0],
  );
});

Deno.test("hf decoder: llama3 RoPE frequencies by hand (Llama-3.2-1B's scaling)", () => {
  const scaling = {
    factor: 32,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  };
  const { scaled, plain } = llama3InverseFrequencies({ headDim: 64, theta: 500000, scaling });
  // Wavelength 2π/f: below 8192/4 = 2048 kept, above 8192 divided by 32, between interpolated.
  let kept = 0;
  let divided = 0;
  for (let i = 0; i < 32; i++) {
    const wavelen = (2 * Math.PI) / plain[i];
    if (wavelen < 2048) {
      assertEquals(scaled[i], plain[i]);
      kept++;
    } else if (wavelen > 8192) {
      assertAlmostEquals(scaled[i], plain[i] / 32, 1e-18);
      divided++;
    } else {
      const smooth = (8192 / wavelen - 1) / 3;
      assertAlmostEquals(scaled[i], (1 - smooth) * plain[i] / 32 + smooth * plain[i], 1e-15);
    }
  }
  assertEquals([kept, divided], [15, 14]); // 17 of 32 differ: 14 divided, 3 interpolated
});
