/**
 * The releasing backward pass (lib/train/variable_grads.ts): the same gradients as
 * `tf.variableGrads`, bit for bit, on hand-computed cases and on the harness's ViT and decoder
 * (LoRA and full fine-tuning, fused ops on, cpu and wasm backends), with fewer bytes held and
 * no tensor left behind.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { releasingBackwardAvailable, variableGrads } from "../../lib/train/variable_grads.ts";
import { createVitClassifier } from "../../lib/models/vit_classifier.ts";
import { VIT_PRESETS } from "../../lib/models/vit.ts";
import { createDecoder, DECODER_PRESETS } from "../../lib/models/decoder.ts";
import { lmLoss } from "../../lib/train/lm_loss.ts";
import { Rng } from "../../lib/random.ts";
import type { Scalar, Variable } from "../../lib/tensor.ts";
import { createAdam, optimizerStep } from "../../lib/train/step.ts";
import { setFusedOps } from "../../lib/models/fused_ops.ts";

function engineState(): { activeTape: unknown; gradientDepth: number } {
  return tf.engine().state as unknown as { activeTape: unknown; gradientDepth: number };
}

async function read(grads: tf.NamedTensorMap): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const [k, g] of Object.entries(grads)) if (g) out[k] = (await g.data()) as Float32Array;
  return out;
}

/** Both ways, in fresh scopes; returns the values read back and checks nothing leaked. */
async function bothWays(f: () => Scalar, vars: Variable[]) {
  const before = tf.memory().numTensors;
  const mine = variableGrads(f, vars);
  const ours = { value: (await mine.value.data())[0], grads: await read(mine.grads) };
  tf.dispose([mine.value, ...Object.values(mine.grads)]);
  assertEquals(tf.memory().numTensors, before, "variableGrads left tensors behind");
  const stock = tf.variableGrads(f, vars);
  const theirs = { value: (await stock.value.data())[0], grads: await read(stock.grads) };
  tf.dispose([stock.value, ...Object.values(stock.grads)]);
  assertEquals(tf.memory().numTensors, before, "tf.variableGrads left tensors behind");
  assertEquals(engineState().activeTape, null);
  assertEquals(Object.hasOwn(tf.engine(), "addTapeNode"), false, "the engine's recorder restored");
  return { ours, theirs };
}

function assertBitIdentical(
  ours: { value: number; grads: Record<string, Float32Array> },
  theirs: { value: number; grads: Record<string, Float32Array> },
  what: string,
): void {
  assertEquals(ours.value, theirs.value, `${what}: loss`);
  assertEquals(Object.keys(ours.grads).sort(), Object.keys(theirs.grads).sort(), `${what}: names`);
  for (const [k, g] of Object.entries(theirs.grads)) {
    const o = ours.grads[k];
    assertEquals(o.length, g.length, `${what}: ${k} size`);
    for (let i = 0; i < g.length; i++) {
      if (!Object.is(o[i], g[i])) {
        throw new Error(`${what}: ${k}[${i}] = ${o[i]}, tf.variableGrads ${g[i]}`);
      }
    }
  }
}

Deno.test("variableGrads: a hand-computed case (broadcast bias, a frozen factor, a non-trainable variable)", async () => {
  await initBackend("cpu", { blas: "off" });
  const w = tf.variable(tf.tensor2d([[1, 2], [3, 4]]), true, "vg_w");
  const b = tf.variable(tf.tensor1d([0.5, -1]), true, "vg_b");
  const frozen = tf.variable(tf.tensor1d([2, 3]), false, "vg_frozen");
  const x = tf.tensor2d([[1, 1], [2, 0]]);
  // L = Σ ((x·w + b) ⊙ frozen)²; x·w = [[4, 6], [2, 4]], + b = [[4.5, 5], [2.5, 3]],
  // ⊙ [2, 3] = [[9, 15], [5, 9]]: L = 81 + 225 + 25 + 81 = 412.
  // dL/d(x·w + b) = 2·[[9, 15], [5, 9]] ⊙ [2, 3] = [[36, 90], [20, 54]]
  // dL/db = column sums = [56, 144]; dL/dw = xᵀ·that = [[1, 2], [1, 0]]·… = [[76, 198], [36, 90]].
  const f = () => tf.sum(tf.square(tf.mul(tf.add(tf.matMul(x, w), b), frozen))) as Scalar;
  const r = variableGrads(f, [w, b, frozen]);
  assertEquals((await r.value.data())[0], 412);
  assertEquals(Array.from(await r.grads["vg_w"].data()), [76, 198, 36, 90]);
  assertEquals(Array.from(await r.grads["vg_b"].data()), [56, 144]);
  assertEquals(r.grads["vg_frozen"], null);
  tf.dispose([r.value, r.grads["vg_w"], r.grads["vg_b"]]);
  const { ours, theirs } = await bothWays(f, [w, b, frozen]);
  assertBitIdentical(ours, theirs, "hand case");
  tf.dispose([w, b, frozen, x]);
});

Deno.test("variableGrads: a tensor used twice, an identity gradient, an unused variable", async () => {
  await initBackend("cpu", { blas: "off" });
  const w = tf.variable(tf.tensor1d([1, -2, 3]), true, "vg_twice");
  const unused = tf.variable(tf.tensor1d([7]), true, "vg_unused");
  // L = Σ w⊙w + Σ reshape(w) + Σ w: dL/dw = 2w + 2 = [4, -2, 8].
  const f = () =>
    tf.add(tf.add(tf.sum(tf.mul(w, w)), tf.sum(tf.reshape(w, [3, 1]))), tf.sum(w)) as Scalar;
  const r = variableGrads(f, [w, unused]);
  assertEquals(Array.from(await r.grads["vg_twice"].data()), [4, -2, 8]);
  assertEquals("vg_unused" in r.grads, false, "a variable that does not reach the loss: no entry");
  tf.dispose([r.value, r.grads["vg_twice"]]);
  const { ours, theirs } = await bothWays(f, [w, unused]);
  assertBitIdentical(ours, theirs, "twice");
  tf.dispose([w, unused]);
});

Deno.test("variableGrads: bad calls say what is wrong and leave the engine as it was", async () => {
  await initBackend("cpu", { blas: "off" });
  const w = tf.variable(tf.tensor1d([1, 2]), true, "vg_bad");
  const other = tf.variable(tf.tensor1d([1]), true, "vg_other");
  const nt = tf.variable(tf.scalar(1), false, "vg_nt");
  const before = tf.memory().numTensors;
  assertThrows(() => variableGrads(() => tf.mul(w, 2) as unknown as Scalar, [w]), Error, "scalar");
  assertThrows(
    () => variableGrads(() => tf.sum(w) as Scalar, [nt]),
    Error,
    "none of the 1 variables is trainable",
  );
  assertThrows(
    () => variableGrads(() => tf.sum(w) as Scalar, [other]),
    Error,
    "no trainable variable reaches",
  );
  assertThrows(
    () =>
      variableGrads(() => {
        tf.square(w);
        throw new Error("boom in the loss");
      }, [w]),
    Error,
    "boom",
  );
  assertEquals(tf.memory().numTensors, before, "nothing left behind by the failed calls");
  assertEquals(engineState().activeTape, null);
  assertEquals(engineState().gradientDepth, 0);
  assertEquals(Object.hasOwn(tf.engine(), "addTapeNode"), false);
  assert(releasingBackwardAvailable());
  // Inside another gradient computation it is tfjs's own variableGrads (second order).
  const outer = tf.grad((x: tf.Tensor) => {
    assert(!releasingBackwardAvailable());
    const { value } = variableGrads(() => tf.sum(tf.mul(w, x)) as Scalar, [w]);
    return value;
  });
  assertEquals(Array.from(await outer(tf.tensor1d([3, 4])).data()), [1, 2]);
  tf.dispose([w, other, nt]);
});

/** A ViT micro and a decoder byte-micro loss with LoRA (dropout on) or full fine-tuning. */
function models(mode: "lora" | "full") {
  const lora = { rank: 4, alpha: 8, dropout: 0.1 };
  const c = VIT_PRESETS.micro;
  const vit = createVitClassifier({ ...c, lora }, { numOutputs: 10, rng: new Rng(0) });
  const d = new Rng(1);
  const x = tf.tensor4d(
    Float32Array.from({ length: 8 * c.imageSize * c.imageSize * c.channels }, () => d.normal()),
    [8, c.imageSize, c.imageSize, c.channels],
  );
  const y = tf.oneHot(tf.tensor1d(Int32Array.from({ length: 8 }, () => d.int(10)), "int32"), 10);
  if (mode === "full") vit.vit.setBaseTrainable(true);
  const vitVars = mode === "lora"
    ? [...vit.loraSites().flatMap((s) => [s.a, s.b]), ...vit.headVariables()]
    : [...vit.vit.baseWeights().values(), ...vit.headVariables()];
  const dc = { ...DECODER_PRESETS["byte-micro"], lora };
  const lm = createDecoder(dc, { rng: new Rng(0) });
  const ids = Int32Array.from({ length: 4 * 16 }, () => d.int(dc.vocabSize));
  const idT = tf.tensor2d(ids, [4, 16], "int32");
  if (mode === "full") lm.setBaseTrainable(true);
  const lmVars = mode === "lora"
    ? lm.loraSites().flatMap((s) => [s.a, s.b])
    : [...lm.baseWeights().values()];
  return {
    cases: [
      {
        name: `vit micro ${mode}`,
        vars: vitVars,
        f: () =>
          tf.losses.softmaxCrossEntropy(y, vit.logits(x, { training: true, seed: 5 })) as Scalar,
      },
      {
        name: `lm byte-micro ${mode}`,
        vars: lmVars,
        f: () => lmLoss(lm.logits(idT, { training: true, seed: 6 }), ids),
      },
    ],
    dispose: () => {
      vit.dispose();
      lm.dispose();
      tf.dispose([x, y, idT]);
    },
  };
}

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`variableGrads: the ViT's and the decoder's gradients are tf.variableGrads's bit for bit (${backend}, LoRA and full)`, async () => {
    await initBackend(backend, { blas: "off" });
    for (const mode of ["lora", "full"] as const) {
      const m = models(mode);
      try {
        for (const c of m.cases) {
          assert(c.vars.length > 0, `${c.name}: variables`);
          const { ours, theirs } = await bothWays(c.f, c.vars);
          assertBitIdentical(ours, theirs, `${c.name} (${backend})`);
        }
      } finally {
        m.dispose();
      }
    }
  });
}

Deno.test("variableGrads: a LoRA step holds at most 60% of tf.variableGrads's peak tensor bytes", async () => {
  await initBackend("cpu", { blas: "off" });
  const m = models("lora");
  try {
    for (const c of m.cases) {
      const peak = async (grads: typeof variableGrads) =>
        (await tf.profile(() => {
          const r = grads(c.f, c.vars);
          tf.dispose([r.value, ...Object.values(r.grads)]);
        })).peakBytes;
      const ours = await peak(variableGrads);
      const theirs = await peak(tf.variableGrads as typeof variableGrads);
      assert(ours <= 0.6 * theirs, `${c.name}: peak ${ours} vs tf.variableGrads ${theirs} bytes`);
    }
  } finally {
    m.dispose();
  }
});

Deno.test("variableGrads: a shape-only save is kept when another gradient for the kernel is registered", async () => {
  await initBackend("cpu", { blas: "off" });
  const stock = tf.getGradient("Add")!;
  let read = 0;
  tf.registerGradient({
    kernelName: "Add",
    inputsToSave: ["a", "b"],
    gradFunc: (dy, saved) => {
      // Reads the saved input's values: disposing it at record time would throw here.
      read += (saved[0].dataSync() as Float32Array).length;
      return stock.gradFunc(dy, saved, {});
    },
  });
  try {
    const w = tf.variable(tf.tensor1d([1, 2, 3]), true, "vg_custom_add");
    const x = tf.tensor1d([1, 1, 1]);
    const r = variableGrads(() => tf.sum(tf.square(tf.add(x, w))) as Scalar, [w]);
    assertEquals(Array.from(await r.grads["vg_custom_add"].data()), [4, 6, 8]);
    assertEquals(read, 3);
    tf.dispose([r.value, r.grads["vg_custom_add"], w, x]);
  } finally {
    tf.registerGradient(stock);
  }
});

Deno.test("variableGrads: a gradient computed inside the loss function keeps what it needs", async () => {
  await initBackend("cpu", { blas: "off" });
  const w = tf.variable(tf.tensor2d([[1, 2], [3, 4]]), true, "vg_nested_w");
  const u0 = tf.tensor2d([[1, -1], [2, 0.5]]);
  // Inside f: g = d/du Σ (u·2w) = 1·(2w)ᵀ, which reads 2w: made inside the inner function, so
  // only the product's save keeps it; the product's other input u does not depend on w, which
  // for the loss's own nodes would drop that save. Then L = Σ (g ⊙ w)·u0.
  const f = () => {
    const g = tf.grad((u: tf.Tensor) => tf.sum(tf.matMul(u as tf.Tensor2D, tf.mul(w, 2))))(u0);
    return tf.sum(tf.mul(tf.mul(g, w), u0)) as Scalar;
  };
  const { ours, theirs } = await bothWays(f, [w]);
  assertBitIdentical(ours, theirs, "nested");
  tf.dispose([w, u0]);
});

Deno.test("optimizerStep: with the fused ops on it takes the releasing backward pass (a lower peak, the same first loss to 1e-5)", async () => {
  await initBackend("cpu", { blas: "off" });
  const peakOf = async (fused: boolean) => {
    setFusedOps(fused);
    try {
      const m = models("lora");
      const c = m.cases[0];
      const opt = createAdam({ lr: 1e-3 });
      let total = NaN;
      const peak = (await tf.profile(async () => {
        total = (await optimizerStep(c.vars, () => ({ total: c.f(), terms: {} }), {
          optimizer: opt,
          clipNorm: 1,
        })).total;
      })).peakBytes;
      opt.dispose();
      m.dispose();
      return { peak, total };
    } finally {
      setFusedOps(true);
    }
  };
  const on = await peakOf(true);
  const off = await peakOf(false);
  // The forward passes differ only by the fused ops' float rounding (fused_losses_test.ts).
  assert(
    Math.abs(on.total - off.total) <= 1e-5 * Math.abs(off.total),
    `${on.total} vs ${off.total}`,
  );
  assert(on.peak <= 0.6 * off.peak, `peak ${on.peak} with the fused ops, ${off.peak} without`);
});
