/**
 * The losses of a fixed-seed 20-step run are those of the code before the fused kernels
 * (issue 20): ViT micro and LM byte-micro with LoRA, Adam, clipping, dropout, on the cpu
 * backend with its own kernels (native BLAS off: with it the products sum in another order). The expected values were printed by this same training loop at main 441ef21 (tfjs's
 * autodiff of the attention, LoRA, RMSNorm and SiLU compositions, and tf.train.adam). With the
 * fused ops off (lib/models/fused_ops.ts) the loop runs that code again and gives the same
 * float32 values exactly; with them on, within 1e-5 relative.
 */
import * as tf from "@tensorflow/tfjs";
import { assert } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { createVitClassifier } from "../../lib/models/vit_classifier.ts";
import { VIT_PRESETS } from "../../lib/models/vit.ts";
import { createDecoder, DECODER_PRESETS } from "../../lib/models/decoder.ts";
import { lmLoss } from "../../lib/train/lm_loss.ts";
import { createAdam, optimizerStep } from "../../lib/train/step.ts";
import { Rng } from "../../lib/random.ts";
import { fusedOps, setFusedOps } from "../../lib/models/fused_ops.ts";
import { isFlatAdam } from "../../lib/train/flat_adam.ts";

const BEFORE = {
  "vit": [
    2.3488621711730957,
    2.1342031955718994,
    1.962444543838501,
    1.8232016563415527,
    1.6812982559204102,
    1.5331342220306396,
    1.3939464092254639,
    1.2519477605819702,
    1.0919257402420044,
    0.9605291485786438,
    0.8623194694519043,
    0.7158865332603455,
    0.6143636107444763,
    0.49307405948638916,
    0.4518612325191498,
    0.3518971800804138,
    0.28867724537849426,
    0.2502993941307068,
    0.21235987544059753,
    0.18540367484092712,
  ],
  "lm": [
    5.566956520080566,
    5.559726715087891,
    5.55079984664917,
    5.536561012268066,
    5.525862216949463,
    5.517032146453857,
    5.505126953125,
    5.4972453117370605,
    5.49094820022583,
    5.4841837882995605,
    5.476962089538574,
    5.471909046173096,
    5.469179153442383,
    5.468302249908447,
    5.463369846343994,
    5.460048198699951,
    5.4559197425842285,
    5.451157093048096,
    5.449807643890381,
    5.450001239776611,
  ],
};

function assertClose(actual: number[], expected: number[], what: string, tol: number): void {
  actual.forEach((a, i) => {
    const rel = Math.abs(a - expected[i]) / Math.abs(expected[i]);
    assert(rel <= tol, `${what} step ${i}: ${a} vs ${expected[i]} (relative ${rel})`);
  });
}

async function vitLosses(): Promise<number[]> {
  await initBackend("cpu", { blas: "off" });
  const lora = { rank: 4, alpha: 8, dropout: 0.1 };
  const c = VIT_PRESETS.micro;
  const model = createVitClassifier({ ...c, lora }, { numOutputs: 10, rng: new Rng(0) });
  const vars = [...model.loraSites().flatMap((s) => [s.a, s.b]), ...model.headVariables()];
  const opt = createAdam({ lr: 1e-2 });
  const d = new Rng(1);
  const x = Float32Array.from(
    { length: 8 * c.imageSize * c.imageSize * c.channels },
    () => d.normal(),
  );
  const y = Int32Array.from({ length: 8 }, () => d.int(10));
  const row: number[] = [];
  for (let s = 0; s < 20; s++) {
    const r = await optimizerStep(vars, () => ({
      total: tf.losses.softmaxCrossEntropy(
        tf.oneHot(tf.tensor1d(y, "int32"), 10),
        model.logits(tf.tensor4d(x, [8, c.imageSize, c.imageSize, c.channels]), {
          training: true,
          seed: 100 + s,
        }),
      ) as tf.Scalar,
      terms: {},
    }), { optimizer: opt, clipNorm: 1 });
    row.push(r.total);
  }
  assert(isFlatAdam(opt) === fusedOps(), "FlatAdam exactly when the fused ops are on");
  opt.dispose();
  model.dispose();
  return row;
}

async function lmLosses(): Promise<number[]> {
  await initBackend("cpu", { blas: "off" });
  const c = { ...DECODER_PRESETS["byte-micro"], lora: { rank: 4, alpha: 8, dropout: 0.1 } };
  const model = createDecoder(c, { rng: new Rng(0) });
  const vars = model.loraSites().flatMap((s) => [s.a, s.b]);
  const opt = createAdam({ lr: 1e-2, beta2: 0.95 });
  const d = new Rng(2);
  const ids = Int32Array.from({ length: 4 * 16 }, () => d.int(c.vocabSize));
  const row: number[] = [];
  for (let s = 0; s < 20; s++) {
    const r = await optimizerStep(vars, () => ({
      total: lmLoss(
        model.logits(tf.tensor2d(ids, [4, 16], "int32"), { training: true, seed: 200 + s }),
        ids,
      ),
      terms: {},
    }), { optimizer: opt, clipNorm: 1 });
    row.push(r.total);
  }
  opt.dispose();
  model.dispose();
  return row;
}

Deno.test("fused kernels and FlatAdam: a 20-step ViT LoRA run has the unfused code's losses (1e-5)", async () => {
  assertClose(await vitLosses(), BEFORE.vit, "vit micro", 1e-5);
});

Deno.test("fused kernels and FlatAdam: a 20-step LM LoRA run has the unfused code's losses (1e-5)", async () => {
  assertClose(await lmLosses(), BEFORE.lm, "lm byte-micro", 1e-5);
});

Deno.test("fused ops off: the 20-step runs give the pre-fusion code's float32 losses exactly", async () => {
  setFusedOps(false);
  try {
    assertClose(await vitLosses(), BEFORE.vit, "vit micro, unfused", 0);
    assertClose(await lmLosses(), BEFORE.lm, "lm byte-micro, unfused", 0);
  } finally {
    setFusedOps(true);
  }
});
