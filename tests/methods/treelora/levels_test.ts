import * as tf from "@tensorflow/tfjs";
import { assertEquals, assertThrows } from "@std/assert";
import { initBackend } from "../../../lib/run/backend.ts";
import {
  levelTensors,
  levelValues,
  siteBlock,
  treeLevels,
} from "../../../lib/methods/treelora/levels.ts";

const NAMES = ["blocks.0.attn.k", "blocks.0.attn.v", "blocks.1.attn.k", "blocks.1.attn.v"];

Deno.test("treeLevels: one level per site, or one per block with its sites in order", () => {
  assertEquals(siteBlock("layers.12.attn.q"), "layers.12");
  assertThrows(() => siteBlock("q"), Error, "no block prefix");
  assertEquals(
    treeLevels(NAMES, { levels: "site", sizes: [3, 3, 3, 3] }).map((l) => l.sites),
    [[0], [1], [2], [3]],
  );
  assertEquals(treeLevels(NAMES, { levels: "block", sizes: [3, 3, 3, 3] }), [
    { name: "blocks.0", sites: [0, 1] },
    { name: "blocks.1", sites: [2, 3] },
  ]);
  // A block with one site more than the others cannot stack into an M×D matrix.
  assertThrows(
    () => treeLevels([...NAMES, "blocks.1.attn.q"], { levels: "block", sizes: [3, 3, 3, 3, 3] }),
    Error,
    "level blocks.1 has 9",
  );
  assertThrows(() => treeLevels([], { levels: "site", sizes: [] }), Error, "no LoRA sites");
});

Deno.test("levelValues and levelTensors: concatenation in site order, A − A_init", async () => {
  await initBackend("cpu");
  const levels = treeLevels(NAMES, { levels: "block", sizes: [2, 2, 2, 2] });
  const perSite = [[1, 2], [3, 4], [5, 6], [7, 8]].map((v) => Float32Array.from(v));
  assertEquals(levelValues(perSite, levels).map((v) => [...v]), [[1, 2, 3, 4], [5, 6, 7, 8]]);
  const a = perSite.map((v) => tf.tensor2d(v, [1, 2]));
  const initial = [Float32Array.of(1, 1, 1, 1), Float32Array.of(0, 0, 0, 8)];
  const moved = levelTensors(a, levels, { initial });
  assertEquals(moved.map((t) => [...t.dataSync()]), [[0, 1, 2, 3], [5, 6, 7, 0]]);
  // One site per level and no initial values: the site's own tensor, untouched.
  const single = levelTensors(a, treeLevels(NAMES, { levels: "site", sizes: [2, 2, 2, 2] }), {
    initial: null,
  });
  assertEquals(single, a);
  tf.dispose([...a, ...moved]);
});
