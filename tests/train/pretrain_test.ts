import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { initBackend } from "../../lib/run/backend.ts";
import { syntheticDataDir } from "../../lib/data/synthetic_cache.ts";
import { VIT_PRESETS } from "../../lib/models/vit.ts";
import { pretrainedBackbone } from "../../lib/train/pretrain.ts";

Deno.test("pretrainedBackbone trains once, then loads the same weights from the cache", async () => {
  await initBackend("wasm");
  const cacheDir = await Deno.makeTempDir();
  const pretrain = {
    seed: 2,
    trainPerClass: 2,
    testPerClass: 1,
    steps: 3,
    batchSize: 16,
    lr: 1e-3,
  };
  const first = await pretrainedBackbone(VIT_PRESETS.micro, { pretrain, cacheDir });
  assertEquals(first.cached, false);
  assert(first.report.testAccuracy >= 0 && first.report.testAccuracy <= 100);
  const second = await pretrainedBackbone(VIT_PRESETS.micro, { pretrain, cacheDir });
  assertEquals(second.cached, true);
  assertEquals(second.path, first.path);
  assertEquals(second.report, first.report);
  assertEquals([...second.weights.keys()], [...first.weights.keys()]);
  for (const [name, w] of first.weights) assertEquals(second.weights.get(name)!.data, w.data, name);
  // LoRA placement does not change the base, so it shares the cache entry; other steps do not.
  const other = await pretrainedBackbone({ ...VIT_PRESETS.micro, loraBlocks: [0] }, {
    pretrain,
    cacheDir,
  });
  assertEquals(other.path, first.path);
  const third = await pretrainedBackbone(VIT_PRESETS.micro, {
    pretrain: { ...pretrain, steps: 4 },
    cacheDir,
  });
  assert(third.path !== first.path);
  await Deno.remove(cacheDir, { recursive: true });
});

Deno.test("syntheticDataDir generates once and reuses the files", async () => {
  const root = await Deno.makeTempDir();
  const a = await syntheticDataDir(root, { seed: 1, trainPerClass: 1, testPerClass: 1 });
  const b = await syntheticDataDir(root, { seed: 1, trainPerClass: 1, testPerClass: 1 });
  assertEquals([a.cached, b.cached], [false, true]);
  assertEquals(a.dir, b.dir);
  const c = await syntheticDataDir(root, { seed: 2, trainPerClass: 1, testPerClass: 1 });
  assert(c.dir !== a.dir);
  assertEquals((await Deno.stat(join(a.dir, "train.bin"))).size, 100 * 3074);
  await Deno.remove(root, { recursive: true });
});
