import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "@std/path";
import {
  checkModelMemory,
  defaultMaxBytes,
  FALLBACK_MAX_BYTES,
  formatBytes,
  loadCheckpointWeights,
  loadShardedWeights,
  readSafetensorsIndex,
  saveShardedWeights,
} from "../../lib/models/safetensors_index.ts";
import { encodeSafetensors, saveWeights, type TensorData } from "../../lib/models/safetensors.ts";
import { withTempDir } from "../helpers.ts";

function tensors(): Map<string, TensorData> {
  return new Map([
    ["model.embed_tokens.weight", { shape: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
    ["model.layers.0.mlp.up_proj.weight", {
      shape: [2, 2],
      data: Float32Array.from([7, 8, 9, 10]),
    }],
    ["model.norm.weight", { shape: [2], data: Float32Array.from([11, 12]) }],
    ["lm_head.weight", { shape: [1, 2], data: Float32Array.from([13, 14]) }],
  ]);
}

Deno.test("sharded safetensors: write → index layout → read back in order", async () => {
  await withTempDir("treelora-shards-", async (dir) => {
    const files = await saveShardedWeights(dir, tensors(), { maxShardBytes: 24 });
    assertEquals(files.map((f) => f.slice(dir.length + 1)), [
      "model.safetensors.index.json",
      "model-00001-of-00003.safetensors",
      "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors",
    ]);
    const index = JSON.parse(await Deno.readTextFile(files[0]));
    assertEquals(index.metadata, { total_size: 56 });
    assertEquals(index.weight_map, {
      "model.embed_tokens.weight": "model-00001-of-00003.safetensors",
      "model.layers.0.mlp.up_proj.weight": "model-00002-of-00003.safetensors",
      "model.norm.weight": "model-00002-of-00003.safetensors",
      "lm_head.weight": "model-00003-of-00003.safetensors",
    });
    const loaded = await loadCheckpointWeights(dir);
    assertEquals(loaded.files, files);
    assertEquals([...loaded.tensors.keys()], [...tensors().keys()]);
    for (const [name, t] of tensors()) assertEquals(loaded.tensors.get(name), t);
    assertEquals((await readSafetensorsIndex(files[0])).weightMap.size, 4);
    // A single model.safetensors wins over an index.
    await saveWeights(
      join(dir, "model.safetensors"),
      new Map([["x", tensors().get("model.norm.weight")!]]),
    );
    assertEquals([...(await loadCheckpointWeights(dir)).tensors.keys()], ["x"]);
  });
});

Deno.test("sharded safetensors: a missing shard, a tensor absent from its shard and bad indexes are named", async () => {
  await withTempDir("treelora-shards-", async (dir) => {
    const files = await saveShardedWeights(dir, tensors(), { maxShardBytes: 24 });
    const index = files[0];
    await Deno.remove(files[2]);
    await assertRejects(
      () => loadShardedWeights(index),
      Error,
      `${index}: shard file(s) not found in ${dir}: model-00002-of-00003.safetensors ` +
        "(2 tensors, e.g. model.layers.0.mlp.up_proj.weight)",
    );
    await Deno.writeFile(
      files[2],
      encodeSafetensors(new Map([["model.norm.weight", tensors().get("model.norm.weight")!]])),
    );
    await assertRejects(
      () => loadShardedWeights(index),
      Error,
      `${index}: weight_map puts tensor(s) model.layers.0.mlp.up_proj.weight in ` +
        `model-00002-of-00003.safetensors, but ${files[2]} does not contain them`,
    );
    await Deno.writeTextFile(index, JSON.stringify({ weight_map: { a: "../escape.safetensors" } }));
    await assertRejects(
      () => loadShardedWeights(index),
      Error,
      "must be a file name in the index's directory",
    );
    await Deno.writeTextFile(index, JSON.stringify({ metadata: {} }));
    await assertRejects(
      () => loadShardedWeights(index),
      Error,
      `${index}: "weight_map" must be an object`,
    );
    await Deno.writeTextFile(index, "{");
    await assertRejects(() => loadShardedWeights(index), Error, `${index} is not valid JSON`);
    const empty = join(dir, "empty");
    await Deno.mkdir(empty);
    await Deno.writeTextFile(join(empty, "consolidated.00.pth"), "");
    await assertRejects(
      () => loadCheckpointWeights(empty),
      Error,
      `${empty}: no weights found: expected model.safetensors or model.safetensors.index.json ` +
        "with its shards (found consolidated.00.pth: PyTorch pickles must be converted",
    );
  });
});

Deno.test("model memory: parameters × 4 bytes stated; over the limit refused with the number", () => {
  const ok = checkModelMemory("m", { parameters: 1000, maxBytes: 4000 });
  assertEquals([ok.bytes, ok.limit.bytes], [4000, 4000]);
  assertEquals(
    ok.statement,
    "m: 1,000 parameters = 3.91 KiB as float32 (parameters × 4 bytes); limit 3.91 KiB (maxBytes option)",
  );
  assertThrows(
    () => checkModelMemory("m", { parameters: 1001, maxBytes: 4000 }),
    Error,
    "m will not fit: 1,001 parameters need 4004 bytes (3.91 KiB) as float32 (parameters × 4 bytes), " +
      "more than the limit of 4000 bytes",
  );
  // The tests run without --allow-sys: the documented fallback applies.
  const limit = defaultMaxBytes();
  if (Deno.permissions.querySync({ name: "sys", kind: "systemMemoryInfo" }).state !== "granted") {
    assertEquals(limit.bytes, FALLBACK_MAX_BYTES);
    assert(limit.source.includes("--allow-sys=systemMemoryInfo"));
  } else {
    assert(limit.bytes > 0 && limit.source.includes("half of the"));
  }
  assertEquals(formatBytes(4_943_257_600), "4.60 GiB");
  assertEquals(formatBytes(512), "512 B");
});
