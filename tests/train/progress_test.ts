import { assertEquals } from "@std/assert";
import { formatProgress } from "../../lib/train/progress.ts";

Deno.test("formatProgress renders task, epoch, step, loss, throughput and ETA", () => {
  const line = formatProgress({
    label: "treelora",
    task: 3,
    tasks: 10,
    epoch: 1,
    epochs: 4,
    step: 7,
    steps: 32,
    loss: 1.234567,
    imagesPerSecond: 412.345,
    etaSeconds: 125,
  });
  assertEquals(line, "[treelora] task 3/10 epoch 1/4 step 7/32 loss 1.2346 412.3 img/s ETA 2m05s");
  assertEquals(
    formatProgress({
      label: "x",
      task: 1,
      tasks: 1,
      epoch: 1,
      epochs: 1,
      step: 1,
      steps: 1,
      loss: 0,
      imagesPerSecond: 0,
      etaSeconds: NaN,
    }).endsWith("ETA ?"),
    true,
  );
});
