import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { initBackend } from "../../lib/run/backend.ts";
import type { LoraSite } from "../../lib/models/backbone.ts";
import { createDecoder, DECODER_PRESETS, type DecoderConfig } from "../../lib/models/decoder.ts";
import {
  loadAdapter,
  peftModulePath,
  peftTensorNames,
  readAdapterConfig,
  saveAdapter,
} from "../../lib/models/peft_adapter.ts";
import { encodeSafetensors, loadWeights } from "../../lib/models/safetensors.ts";
import { createVitClassifier } from "../../lib/models/vit_classifier.ts";
import { createVit, VIT_PRESETS, type VitConfig } from "../../lib/models/vit.ts";
import { Rng } from "../../lib/random.ts";
import { withTempDir } from "../helpers.ts";

const VIT: VitConfig = { ...VIT_PRESETS.micro, lora: { rank: 2, alpha: 8, dropout: 0.1 } };
const LM: DecoderConfig = {
  ...DECODER_PRESETS["byte-micro"],
  kvHeads: 1,
  lora: { rank: 4, alpha: 32, dropout: 0.1 },
};

function randomize(sites: LoraSite[], seed: number): void {
  const rng = new Rng(seed);
  for (const s of sites) {
    for (const v of [s.a, s.b]) {
      const data = Float32Array.from({ length: v.size }, () => rng.normal());
      tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
    }
  }
}

function values(sites: LoraSite[]): number[][] {
  return sites.flatMap((s) => [Array.from(s.a.dataSync()), Array.from(s.b.dataSync())]);
}

Deno.test("peft adapter: ViT round trip in PEFT's file layout; forward pass unchanged", async () => {
  await initBackend("cpu");
  await withTempDir("treelora-peft-", async (dir) => {
    const config = { ...VIT, loraBlocks: [0] };
    const a = createVit(config, { rng: new Rng(1) });
    randomize(a.loraSites(), 3);
    const paths = await saveAdapter(dir, a, { baseModel: "google/vit-base-patch16-224-in21k" });
    assertEquals(paths, {
      config: join(dir, "adapter_config.json"),
      weights: join(dir, "adapter_model.safetensors"),
    });
    const file = await loadWeights(paths.weights);
    assertEquals(
      [...file.tensors].map(([n, t]) => [n, t.shape]),
      [
        ["base_model.model.vit.encoder.layer.0.attention.attention.query.lora_A.weight", [2, 32]],
        ["base_model.model.vit.encoder.layer.0.attention.attention.query.lora_B.weight", [32, 2]],
        ["base_model.model.vit.encoder.layer.0.attention.attention.value.lora_A.weight", [2, 32]],
        ["base_model.model.vit.encoder.layer.0.attention.attention.value.lora_B.weight", [32, 2]],
      ],
    );
    const json = JSON.parse(await Deno.readTextFile(paths.config));
    assertEquals(
      [
        json.peft_type,
        json.task_type,
        json.r,
        json.lora_alpha,
        json.lora_dropout,
        json.target_modules,
        json.layers_to_transform,
        json.layers_pattern,
        json.base_model_name_or_path,
        json.bias,
        json.modules_to_save,
      ],
      [
        "LORA",
        null,
        2,
        8,
        0.1,
        ["query", "value"],
        [0],
        "layer",
        "google/vit-base-patch16-224-in21k",
        "none",
        null,
      ],
    );
    // Same base as a, different LoRA until the adapter is loaded.
    const weights = new Map([...a.baseWeights()].map(([n, v]) => [n, {
      shape: v.shape,
      data: v.dataSync() as Float32Array,
    }]));
    const c = createVit(config, { rng: new Rng(2), weights });
    const report = await loadAdapter(dir, c);
    assertEquals(report.sites, ["blocks.0.attn.q", "blocks.0.attn.v"]);
    assertEquals(values(c.loraSites()), values(a.loraSites()));
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, "float32", 7) as tf.Tensor4D;
    const fa = a.features(x, { training: false });
    const fc = c.features(x, { training: false });
    assertEquals(Array.from(fa.dataSync()), Array.from(fc.dataSync()));
    tf.dispose([x, fa, fc]);
    [a, c].forEach((m) => m.dispose());
  });
});

Deno.test("peft adapter: decoder round trip (GQA v_proj [out = kvHeads·headDim, r]) and a classifier head", async () => {
  await initBackend("cpu");
  await withTempDir("treelora-peft-", async (dir) => {
    const a = createDecoder(LM, { rng: new Rng(1) });
    randomize(a.loraSites(), 4);
    await saveAdapter(dir, a, { baseModel: "meta-llama/Llama-3.2-1B" });
    const cfg = await readAdapterConfig(dir);
    assertEquals(
      [
        cfg.task_type,
        cfg.target_modules,
        cfg.layers_to_transform,
        cfg.layers_pattern,
        cfg.r,
        cfg.lora_alpha,
      ],
      ["CAUSAL_LM", ["q_proj", "v_proj"], null, null, 4, 32],
    );
    const file = await loadWeights(join(dir, "adapter_model.safetensors"));
    assertEquals(
      file.tensors.get("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight")!.shape,
      [16, 4],
    );
    const b = createDecoder(LM, { rng: new Rng(9) });
    await loadAdapter(dir, b);
    assertEquals(values(b.loraSites()), values(a.loraSites()));
    a.dispose();
    b.dispose();

    // A ViT classifier with its head as modules_to_save.
    const headDir = join(dir, "head");
    const m1 = createVitClassifier(VIT, { numOutputs: 7, rng: new Rng(1) });
    randomize(m1.loraSites(), 5);
    tf.tidy(() => m1.head.weight.assign(tf.randomNormal(m1.head.weight.shape, 0, 1, "float32", 3)));
    await saveAdapter(headDir, m1.vit, { baseModel: null, head: m1.head });
    assertEquals((await readAdapterConfig(headDir)).modules_to_save, ["classifier"]);
    const headFile = await loadWeights(join(headDir, "adapter_model.safetensors"));
    assertEquals(headFile.tensors.get("base_model.model.classifier.weight")!.shape, [7, 32]);
    const m2 = createVitClassifier(VIT, { numOutputs: 7, rng: new Rng(2) });
    const r = await loadAdapter(headDir, m2.vit, { head: m2.head });
    assert(r.head);
    assertEquals(Array.from(m2.head.weight.dataSync()), Array.from(m1.head.weight.dataSync()));
    assertEquals(values(m2.loraSites()), values(m1.loraSites()));
    m1.dispose();
    m2.dispose();
  });
});

Deno.test("peft adapter: mismatches are refused before anything is assigned, naming file, tensor and expectation", async () => {
  await initBackend("cpu");
  await withTempDir("treelora-peft-", async (dir) => {
    const a = createDecoder(LM, { rng: new Rng(1) });
    randomize(a.loraSites(), 4);
    await saveAdapter(dir, a, { baseModel: null });
    const weights = join(dir, "adapter_model.safetensors");
    const configPath = join(dir, "adapter_config.json");

    const scaled = createDecoder({ ...LM, lora: { rank: 4, alpha: 8, dropout: 0 } }, {
      rng: new Rng(2),
    });
    const before = values(scaled.loraSites());
    await assertRejects(
      () => loadAdapter(dir, scaled),
      Error,
      `${configPath}: lora_alpha 32 / r 4 = 8, but the model was built with scale 2`,
    );
    assertEquals(values(scaled.loraSites()), before);
    const rank = createDecoder({ ...LM, lora: { rank: 2, alpha: 16, dropout: 0 } }, {
      rng: new Rng(2),
    });
    await assertRejects(
      () => loadAdapter(dir, rank),
      Error,
      `${configPath}: r is 4, but the model's site layers.0.attn.q has rank 2; build the model ` +
        "with lora.rank 4",
    );
    const fewer = createDecoder({ ...LM, loraLayers: [1] }, { rng: new Rng(2) });
    await assertRejects(
      () => loadAdapter(dir, fewer),
      Error,
      `${weights}: 4 tensor(s) target modules the model has no LoRA site on: ` +
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
    );
    const original = await loadWeights(weights);
    const t = new Map(original.tensors);
    t.delete(peftTensorNames("layers.1.attn.v").b);
    await Deno.writeFile(weights, encodeSafetensors(t));
    const full = createDecoder(LM, { rng: new Rng(2) });
    await assertRejects(
      () => loadAdapter(dir, full),
      Error,
      `${weights}: no tensor "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight" ` +
        "for the model's LoRA site layers.1.attn.v",
    );
    await Deno.writeTextFile(configPath, JSON.stringify({ peft_type: "PREFIX_TUNING", r: 4 }));
    await assertRejects(() => readAdapterConfig(dir), Error, `peft_type is "PREFIX_TUNING"`);
    await Deno.writeTextFile(
      configPath,
      JSON.stringify({ peft_type: "LORA", r: 4, lora_alpha: 32, use_dora: true }),
    );
    await assertRejects(() => readAdapterConfig(dir), Error, `field "use_dora" is true`);
    [a, scaled, rank, fewer, full].forEach((m) => m.dispose());
  });
});

Deno.test("peft adapter: module paths of both model families", () => {
  assertEquals(
    peftModulePath("blocks.11.attn.v").path,
    "vit.encoder.layer.11.attention.attention.value",
  );
  assertEquals(peftModulePath("layers.15.attn.q").target, "q_proj");
  assertEquals(
    peftTensorNames("blocks.2.attn.q").b,
    "base_model.model.vit.encoder.layer.2.attention.attention.query.lora_B.weight",
  );
  let message = "";
  try {
    peftModulePath("blocks.0.mlp.fc1");
  } catch (err) {
    message = (err as Error).message;
  }
  assert(message.includes(`no PEFT module path for LoRA site "blocks.0.mlp.fc1"`));
});
