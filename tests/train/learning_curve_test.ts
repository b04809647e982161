import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "@std/assert";
import { initBackend } from "../../lib/run/backend.ts";
import { imageBatch } from "../../lib/data/batches.ts";
import { createSeqLora } from "../../lib/methods/seq_lora.ts";
import type { VitClassifier } from "../../lib/models/vit_classifier.ts";
import { Rng } from "../../lib/random.ts";
import { type CurvePoint, trainClassIncremental } from "../../lib/train/class_incremental.ts";
import { taskOutputRange } from "../../lib/train/evaluate.ts";
import { CONFIG, microModel, stream } from "../methods/helpers.ts";

/** Accuracy (%) of the model on the first `n` test images of task `t`, argmax over its classes. */
function subsetAccuracy(model: VitClassifier, s: ReturnType<typeof stream>, t: number, n: number) {
  const idx = s.tasks[t].test.subarray(0, n);
  const [start, end] = taskOutputRange(s, s.tasks[t]);
  const batch = imageBatch(s.test, idx, {
    labelToOutput: s.labelToOutput,
    mean: CONFIG.mean,
    std: CONFIG.std,
  });
  const logits = tf.tidy(() =>
    model.logits(tf.tensor4d(batch.x, [idx.length, 32, 32, 3]), { training: false }).arraySync()
  ) as number[][];
  let correct = 0;
  logits.forEach((row, i) => {
    let best = start;
    for (let k = start; k < end; k++) if (row[k] > row[best]) best = k;
    if (best === batch.y[i]) correct++;
  });
  return (100 * correct) / idx.length;
}

Deno.test("learning curve: x = samples seen, y = accuracy on the task's first N test images, every K steps", async () => {
  await initBackend("cpu");
  const s = stream(2);
  const model = microModel(s.classOrder.length, 0);
  const before = subsetAccuracy(model, s, 0, 5);
  const points: CurvePoint[] = [];
  const timings: number[] = [];
  await trainClassIncremental(s, {
    model,
    method: createSeqLora(),
    // 16 training images per task, batch 8: 2 steps per epoch, 3 epochs = 6 steps.
    config: { ...CONFIG, epochs: 3, maxStepsPerEpoch: null, curveEvery: 2, curveImages: 5 },
    rngs: { data: new Rng(1), method: new Rng(2) },
    recorder: {
      taskDone: (_t, r) => {
        timings.push(r.timing.trainSeconds);
        return Promise.resolve();
      },
      losses: () => Promise.resolve(),
      curve: (p) => {
        points.push(...p);
        return Promise.resolve();
      },
    },
  });
  assertEquals(s.tasks[0].train.length, 16);
  assertEquals(points.map((p) => [p.task, p.step, p.samplesSeen, p.images]), [
    [0, 0, 0, 5],
    [0, 2, 16, 5],
    [0, 4, 32, 5],
    [0, 6, 48, 5],
    [1, 0, 0, 5],
    [1, 2, 16, 5],
    [1, 4, 32, 5],
    [1, 6, 48, 5],
  ]);
  // Before any step: the untrained model; after the last step (SeqLoRA's endTask does nothing):
  // the model as the run leaves it.
  assertEquals(points[0].accuracy, before);
  assertEquals(points[7].accuracy, subsetAccuracy(model, s, 1, 5));
  assert(points.every((p) => p.accuracy % 20 === 0), "5 images: multiples of 20 %");
  assert(timings.every((t) => t > 0));
  model.dispose();
});
