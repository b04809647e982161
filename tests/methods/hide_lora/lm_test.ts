import * as tf from "@tensorflow/tfjs";
import { assertAlmostEquals, assertEquals } from "@std/assert";
import { initBackend } from "../../../lib/run/backend.ts";
import { gramCrossEntropy } from "../../../lib/methods/hide_lora/lm.ts";
import { createMethod } from "../../../lib/methods/registry.ts";

Deno.test("hide-lora Gram cross-entropy: hand value; the ViT track builds the ViT method", async () => {
  await initBackend("cpu");
  // M = I₂, τ = 1: each row's logits [1, 0] → −log softmax = log(1 + e⁻¹).
  const l = gramCrossEntropy(tf.eye(2) as tf.Tensor2D, { temperature: 1 });
  assertAlmostEquals((await l.data())[0], Math.log(1 + Math.exp(-1)), 1e-6);
  // M = [[1, 0], [1, 1]], τ = 0.8: rows of M·Mᵀ/τ = [[1.25, 1.25], [1.25, 2.5]].
  const m = gramCrossEntropy(tf.tensor2d([[1, 0], [1, 1]]), { temperature: 0.8 });
  const expected = (Math.log(2) + Math.log(1 + Math.exp(-1.25))) / 2;
  assertAlmostEquals((await m.data())[0], expected, 1e-6);
  tf.dispose([l, m]);
  assertEquals(createMethod("hide-lora", { track: "vit" }).options().tiiFeatures, "first-task");
  assertEquals(createMethod("hide-lora", { track: "lm" }).options().lambda1, 0.5);
});
