import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { initBackend } from "../../lib/run/backend.ts";
import {
  createHfVitClassifier,
  HF_VIT_PRESETS,
  hfVitName,
  loadHfVit,
  readHfVitCheckpoint,
  resizeImages,
  toHfVitName,
  vitConfigFromHf,
  vitParameterCount,
  vitWeightShapes,
} from "../../lib/models/hf_vit.ts";
import { loadAdapter, saveAdapter } from "../../lib/models/peft_adapter.ts";
import { loadWeights, type TensorData } from "../../lib/models/safetensors.ts";
import { createVit, VIT_PRESETS } from "../../lib/models/vit.ts";
import { Rng } from "../../lib/random.ts";
import { tinyVitConfig, writeTinyHfVit, writeWeights } from "./hf_fixtures.ts";
import {
  type ReferenceLora,
  referenceResizeBilinear,
  referenceVitFeatures,
} from "./reference_vit.ts";
import { maxAbsDiff, withTempDir } from "../helpers.ts";

const LORA = { rank: 2, alpha: 4, dropout: 0 };

function images(n: number, size: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * size * size * 3 }, () => rng.normal());
}

async function features(
  vit: { features(x: tf.Tensor4D, o: { training: boolean }): tf.Tensor2D },
  x: Float32Array,
  size: number,
): Promise<Float32Array> {
  const y = tf.tidy(() =>
    vit.features(tf.tensor4d(x, [x.length / (size * size * 3), size, size, 3]), {
      training: false,
    })
  );
  const data = (await y.data()) as Float32Array;
  y.dispose();
  return data;
}

Deno.test("hf vit: a tiny HF checkpoint's forward pass equals the plain-TypeScript reference to 1e-4", async () => {
  await initBackend("cpu");
  await withTempDir("treelora-hfvit-", async (dir) => {
    const { tensors, config } = await writeTinyHfVit(dir, { seed: 1 });
    const before = tf.memory().numTensors;
    const { vit, checkpoint } = await loadHfVit(dir, { lora: LORA, rng: new Rng(0) });
    assertEquals(checkpoint.config.gelu, "erf");
    assertEquals(checkpoint.config.layerNormEps, 1e-12);
    assertEquals(checkpoint.config.mlpRatio, 2);
    assertEquals(checkpoint.ignored, ["vit.pooler.dense.weight", "vit.pooler.dense.bias"]);
    assertEquals(checkpoint.preprocessing.mean, [0.5, 0.5, 0.5]);
    assertEquals(checkpoint.memory.parameters, vit.parameterCount().base);
    const x = images(2, 16, 7);
    const got = await features(vit, x, 16);
    const ref = referenceVitFeatures(tensors, { config, images: x, batch: 2, prefix: "vit." });
    const diff = maxAbsDiff(got, ref);
    assert(diff < 1e-4, `max |tfjs − reference| = ${diff}`);
    // The test can tell the GELUs apart: the tanh form is measurably further off.
    const tanh = createVit({ ...checkpoint.config, gelu: "tanh" }, {
      rng: new Rng(0),
      weights: new Map([...vit.baseWeights()].map(([n, v]) => [n, {
        shape: v.shape,
        data: v.dataSync() as Float32Array,
      }])),
    });
    const tanhDiff = maxAbsDiff(await features(tanh, x, 16), ref);
    assert(tanhDiff > 10 * diff, `tanh GELU ${tanhDiff} vs erf GELU ${diff}`);
    tanh.dispose();
    vit.dispose();
    assertEquals(tf.memory().numTensors, before);
  });
});

Deno.test("hf vit: ViTModel names (no prefix), 3 shards, preprocessor_config.json, qkv_bias false", async () => {
  await initBackend("cpu");
  await withTempDir("treelora-hfvit-", async (dir) => {
    const config = tinyVitConfig({ qkv_bias: false, layer_norm_eps: 1e-6 });
    const { tensors } = await writeTinyHfVit(dir, {
      seed: 2,
      prefix: "",
      config,
      shards: 3,
      preprocessor: {
        image_processor_type: "ViTImageProcessor",
        do_normalize: true,
        image_mean: [0.485, 0.456, 0.406],
        image_std: [0.229, 0.224, 0.225],
        do_rescale: true,
        rescale_factor: 1 / 255,
      },
    });
    const { vit, checkpoint } = await loadHfVit(dir, { lora: LORA, rng: new Rng(0) });
    assertEquals(checkpoint.files.length, 4); // index + 3 shards
    assertEquals(checkpoint.preprocessing.mean, [0.485, 0.456, 0.406]);
    assertEquals(checkpoint.preprocessing.std, [0.229, 0.224, 0.225]);
    const x = images(1, 16, 8);
    const ref = referenceVitFeatures(tensors, { config, images: x, batch: 1, prefix: "" });
    const diff = maxAbsDiff(await features(vit, x, 16), ref);
    assert(diff < 1e-4, `max |tfjs − reference| = ${diff}`);
    vit.dispose();
  });
});

Deno.test("hf vit: preprocessing defaults to 0.5/0.5; rescale factors fold into mean and std", async () => {
  await initBackend("cpu");
  await withTempDir("treelora-hfvit-", async (dir) => {
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(tinyVitConfig()));
    const ckptDir = join(dir, "pre");
    await Deno.mkdir(ckptDir);
    await writeTinyHfVit(ckptDir, {
      seed: 3,
      preprocessor: {
        image_mean: [127.5, 127.5, 127.5],
        image_std: [127.5, 63.75, 127.5],
        do_rescale: false,
      },
    });
    const p = (await readHfVitCheckpoint(ckptDir, {})).preprocessing;
    assertEquals(p.mean, [0.5, 0.5, 0.5]);
    assertEquals(p.std, [0.5, 0.25, 0.5]);
  });
});

Deno.test("hf vit: the resize is half-pixel bilinear; the classifier resizes, then runs the checkpoint", async () => {
  await initBackend("cpu");
  await withTempDir("treelora-hfvit-", async (dir) => {
    const x8 = images(2, 8, 9);
    const got = tf.tidy(() => resizeImages(tf.tensor4d(x8, [2, 8, 8, 3]), { size: 16 }).dataSync());
    const ref = referenceResizeBilinear(x8, { batch: 2, from: 8, to: 16, channels: 3 });
    assert(maxAbsDiff(got, ref) < 1e-5, `resize off by ${maxAbsDiff(got, ref)}`);

    const { tensors, config } = await writeTinyHfVit(dir, { seed: 4 });
    const ckpt = await readHfVitCheckpoint(dir, { lora: LORA });
    const model = createHfVitClassifier(ckpt, { numOutputs: 5, rng: new Rng(1) });
    const logits = tf.tidy(() =>
      model.logits(tf.tensor4d(x8, [2, 8, 8, 3]), { training: false }).dataSync()
    );
    const feats = referenceVitFeatures(tensors, { config, images: ref, batch: 2, prefix: "vit." });
    const w = model.head.weight.dataSync();
    const b = model.head.bias.dataSync();
    const expected = new Float64Array(10);
    for (let n = 0; n < 2; n++) {
      for (let k = 0; k < 5; k++) {
        let s = b[k];
        for (let i = 0; i < 24; i++) s += feats[n * 24 + i] * w[i * 5 + k];
        expected[n * 5 + k] = s;
      }
    }
    assert(maxAbsDiff(logits, expected) < 1e-4, `logits off by ${maxAbsDiff(logits, expected)}`);
    // The other image entry points (HiDe-LoRA features, L2P/DualPrompt query and prompted
    // logits) resize the same way: LoRA B is zero, so all three see the reference features.
    const x = () => tf.tensor4d(x8, [2, 8, 8, 3]);
    const f = tf.tidy(() => model.features!(x(), { training: false }).dataSync());
    const q = tf.tidy(() => model.queryFeatures!(x()).dataSync());
    const p = tf.tidy(() =>
      model.promptedLogits!(x(), { training: false, prompts: {} }).dataSync()
    );
    assert(maxAbsDiff(f, feats) < 1e-4, `features off by ${maxAbsDiff(f, feats)}`);
    assert(maxAbsDiff(q, feats) < 1e-4, `query features off by ${maxAbsDiff(q, feats)}`);
    assert(maxAbsDiff(p, expected) < 1e-4, `prompted logits off by ${maxAbsDiff(p, expected)}`);
    assertEquals(model.loraSites().length, 4);
    model.dispose();
  });
});

Deno.test("hf vit: a PEFT adapter loaded onto the checkpoint matches the reference with W + s·B·A", async () => {
  await initBackend("cpu");
  await withTempDir("treelora-hfvit-", async (dir) => {
    const { tensors, config } = await writeTinyHfVit(dir, { seed: 5 });
    const lora = { rank: 3, alpha: 6, dropout: 0 };
    const a = await loadHfVit(dir, { lora, loraBlocks: [1], rng: new Rng(1) });
    const rng = new Rng(11);
    for (const s of a.vit.loraSites()) {
      tf.tidy(() => s.b.assign(tf.randomNormal(s.b.shape, 0, 0.5, "float32", rng.int(1e6))));
    }
    const adapterDir = join(dir, "adapter");
    await saveAdapter(adapterDir, a.vit, { baseModel: dir });
    const b = await loadHfVit(dir, { lora, loraBlocks: [1], rng: new Rng(2) });
    await loadAdapter(adapterDir, b.vit);
    // The reference reads the adapter file by PEFT's names, independently of the loader.
    const file = await loadWeights(join(adapterDir, "adapter_model.safetensors"));
    const refLora: ReferenceLora = new Map();
    for (const [name, t] of file.tensors) {
      const m = /^base_model\.model\.(.+)\.lora_A\.weight$/.exec(name);
      if (m) {
        const bName = `base_model.model.${m[1]}.lora_B.weight`;
        refLora.set(m[1], { a: t, b: file.tensors.get(bName) as TensorData, scale: 2 });
      }
    }
    assertEquals([...refLora.keys()], [
      "vit.encoder.layer.1.attention.attention.query",
      "vit.encoder.layer.1.attention.attention.value",
    ]);
    const x = images(2, 16, 12);
    const ref = referenceVitFeatures(tensors, {
      config,
      images: x,
      batch: 2,
      prefix: "vit.",
      lora: refLora,
    });
    const got = await features(b.vit, x, 16);
    assert(maxAbsDiff(got, ref) < 1e-4, `with LoRA off by ${maxAbsDiff(got, ref)}`);
    const plain = referenceVitFeatures(tensors, { config, images: x, batch: 2, prefix: "vit." });
    assert(maxAbsDiff(plain, ref) > 1e-2, "the adapter must change the features");
    a.vit.dispose();
    b.vit.dispose();
  });
});

Deno.test("hf vit: errors name the file, the tensor and what was expected", async () => {
  await initBackend("cpu");
  await withTempDir("treelora-hfvit-", async (dir) => {
    const config = tinyVitConfig();
    const { tensors } = await writeTinyHfVit(dir, { seed: 6 });
    const variants: [string, (t: Map<string, TensorData>) => void, string][] = [
      [
        "unknown",
        (t) => t.set("vit.encoder.layer.0.extra.weight", t.get("vit.layernorm.bias")!),
        `1 tensor(s) are not part of a Hugging Face ViT: vit.encoder.layer.0.extra.weight`,
      ],
      [
        "missing",
        (t) => t.delete("vit.encoder.layer.1.output.dense.bias"),
        `missing 1 tensor(s) of a 2-block ViT: vit.encoder.layer.1.output.dense.bias`,
      ],
      [
        "shape",
        (t) =>
          t.set("vit.embeddings.position_embeddings", {
            shape: [1, 5, 24],
            data: new Float32Array(120),
          }),
        `tensor "vit.embeddings.position_embeddings" has shape [1,5,24], expected [1,17,24]`,
      ],
      [
        "layer",
        (t) => t.set("vit.encoder.layer.2.layernorm_after.bias", t.get("vit.layernorm.bias")!),
        `tensor "vit.encoder.layer.2.layernorm_after.bias" belongs to block 2, but config.json has num_hidden_layers 2`,
      ],
    ];
    for (const [label, edit, message] of variants) {
      const sub = join(dir, label);
      await Deno.mkdir(sub);
      await Deno.writeTextFile(join(sub, "config.json"), JSON.stringify(config));
      const t = new Map(tensors);
      edit(t);
      await writeWeights(sub, t);
      await assertRejects(
        () => readHfVitCheckpoint(sub, {}),
        Error,
        `${join(sub, "model.safetensors")}: ${message}`,
      );
    }
    const empty = join(dir, "empty");
    await Deno.mkdir(empty);
    await assertRejects(() => readHfVitCheckpoint(empty, {}), Error, `${empty}: no config.json`);
    await Deno.writeTextFile(join(empty, "config.json"), JSON.stringify(config));
    await Deno.writeTextFile(join(empty, "pytorch_model.bin"), "");
    await assertRejects(
      () => readHfVitCheckpoint(empty, {}),
      Error,
      `${empty}: no weights found: expected model.safetensors or model.safetensors.index.json`,
    );
    await assertRejects(
      () => readHfVitCheckpoint(dir, { preset: "vit-b16" }),
      Error,
      `does not describe a vit-b16: imageSize 16 (expected 224)`,
    );
    await Deno.writeTextFile(
      join(empty, "config.json"),
      JSON.stringify({ ...config, hidden_act: "relu" }),
    );
    await assertRejects(
      () => readHfVitCheckpoint(empty, {}),
      Error,
      `${join(empty, "config.json")}: field "hidden_act" is "relu"`,
    );
  });
});

Deno.test("hf vit: the memory is stated and an oversized model refused before any weight is read", async () => {
  await initBackend("cpu");
  await withTempDir("treelora-hfvit-", async (dir) => {
    // No config.json and no weights: the vit-b16 preset's size alone decides.
    const lines: string[] = [];
    await assertRejects(
      () =>
        readHfVitCheckpoint(dir, { preset: "vit-b16", maxBytes: 100e6, log: (l) => lines.push(l) }),
      Error,
      "85,798,656 parameters need 343194624 bytes (327 MiB) as float32 (parameters × 4 bytes), " +
        "more than the limit of 100000000 bytes",
    );
    await assertRejects(
      () =>
        readHfVitCheckpoint(dir, { preset: "vit-b16", maxBytes: 400e6, log: (l) => lines.push(l) }),
      Error,
      "no weights found",
    );
    assertEquals(lines.length, 1);
    assert(lines[0].includes("85,798,656 parameters = 327 MiB as float32"), lines[0]);
  });
});

Deno.test("hf vit: config and name mapping, the vit-b16 preset and parameter counts", () => {
  const b16 = HF_VIT_PRESETS["vit-b16"];
  assertEquals(
    [b16.imageSize, b16.patchSize, b16.dim, b16.depth, b16.heads, b16.mlpRatio, b16.gelu],
    [224, 16, 768, 12, 12, 4, "erf"],
  );
  assertAlmostEquals(b16.layerNormEps, 1e-12);
  assertEquals(vitParameterCount(b16), 85_798_656);
  for (const preset of Object.values(VIT_PRESETS)) {
    const shapes = vitWeightShapes(preset);
    let n = 0;
    for (const s of shapes.values()) n += s.reduce((a, b) => a * b, 1);
    assertEquals(vitParameterCount(preset), n);
  }
  const micro = createVit(VIT_PRESETS.micro, { rng: new Rng(0) });
  assertEquals(vitParameterCount(VIT_PRESETS.micro), micro.parameterCount().base);
  assertEquals([...micro.baseWeights().keys()], [...vitWeightShapes(VIT_PRESETS.micro).keys()]);
  for (const name of micro.baseWeights().keys()) assertEquals(hfVitName(toHfVitName(name)), name);
  micro.dispose();
  assertEquals(hfVitName("encoder.layer.0.intermediate.dense.weight"), "blocks.0.mlp.fc1.weight");
  assertEquals(hfVitName("classifier.weight"), undefined);
  const tanh = vitConfigFromHf(tinyVitConfig({ hidden_act: "gelu_pytorch_tanh" }), { source: "x" });
  assertEquals(tanh.gelu, "tanh");
});
