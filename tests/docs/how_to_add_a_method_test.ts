/**
 * docs/how_to_add_a_method.md is executable: its code blocks whose info string names a file
 * (```ts file=my_methods/l2_anchor.ts) are written into a temporary folder at the repository
 * root (so that their `../mod.ts` imports resolve), the method module is imported and trained on
 * the method tests' tiny stream, and the walkthrough's own test file is run with `deno test`,
 * exactly as the page tells a reader to. The folder is removed afterwards.
 */

import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch } from "@std/assert";
import { basename, dirname, fromFileUrl, join, resolve, toFileUrl } from "@std/path";
import { initBackend } from "../../mod.ts";
import { createSeqLora } from "../../lib/methods/seq_lora.ts";
import type { ContinualMethod } from "../../lib/methods/method.ts";
import { collectingRecorder, microModel, stream, trainMicro } from "../methods/helpers.ts";

const ROOT = resolve(dirname(fromFileUrl(import.meta.url)), "..", "..");
const PAGE = join(ROOT, "docs", "how_to_add_a_method.md");

/** A fenced code block that names the file it becomes. */
interface FileBlock {
  /** The path the page gives (e.g. `my_methods/l2_anchor.ts`). */
  path: string;
  /** The block's text. */
  code: string;
}

/** Every fenced block of `markdown` whose info string has `file=PATH`, in page order. */
function fileBlocks(markdown: string): FileBlock[] {
  const out: FileBlock[] = [];
  const fence = /^```([^\n`]*)\n([\s\S]*?)^```[ \t]*$/gm;
  for (const m of markdown.matchAll(fence)) {
    const file = /(?:^|\s)file=(\S+)/.exec(m[1]);
    if (file) out.push({ path: file[1], code: m[2] });
  }
  return out;
}

/** The walkthrough's files, written into a fresh folder at the repository root. */
async function writeWalkthrough(): Promise<{ dir: string; blocks: FileBlock[] }> {
  const blocks = fileBlocks(await Deno.readTextFile(PAGE));
  // `*.tmp-*` is ignored by git; the folder sits at depth 1, where `../mod.ts` is the API.
  const dir = await Deno.makeTempDir({ dir: ROOT, prefix: ".how_to_add_a_method.tmp-" });
  for (const b of blocks) await Deno.writeTextFile(join(dir, basename(b.path)), b.code);
  return { dir, blocks };
}

Deno.test("how_to_add_a_method.md: the page holds the method and its test, in one folder", async () => {
  const blocks = fileBlocks(await Deno.readTextFile(PAGE));
  assertEquals(blocks.map((b) => b.path), [
    "my_methods/l2_anchor.ts",
    "my_methods/l2_anchor_test.ts",
  ]);
  // One folder directly under the repository root: the relative imports assume that depth.
  assert(blocks.every((b) => dirname(b.path) === "my_methods"));
  assert(blocks[0].code.includes('from "../mod.ts"'));
  assert(blocks[1].code.includes('from "./l2_anchor.ts"'));
});

Deno.test("how_to_add_a_method.md: the method trains, with the numbers the page quotes", async () => {
  const { dir } = await writeWalkthrough();
  try {
    const mod = await import(toFileUrl(join(dir, "l2_anchor.ts")).href);
    const create = mod.createL2Anchor as (o?: Record<string, unknown>) => ContinualMethod;
    await initBackend("cpu", { blas: "off" });

    const method = create();
    assertEquals(method.name, "l2-anchor");
    assertEquals(method.options(), { lambda: 1 });
    method.dispose();

    // The penalty on a case worked by hand: (2/2)·(1² + 1² + 1² + 1²) = 4, and 0 at the anchor.
    const penalty = (current: number[], anchor: number[], lambda: number) =>
      tf.tidy(() =>
        mod.l2AnchorPenalty([tf.tensor(current)], [tf.tensor(anchor)], lambda).dataSync()[0]
      ) as number;
    assertEquals(penalty([1, 1, 1, 1], [0, 0, 0, 0], 2), 4);
    assertEquals(penalty([0.25, -3], [0.25, -3], 7), 0);

    // The method tests' stream and model (tests/methods/helpers.ts) are the walkthrough's
    // fixtures: 2 tasks of 4 classes, 2 test images per class, a micro ViT with LoRA dropout 0.1.
    const run = async (m: ContinualMethod) => {
      const s = stream(2);
      const model = microModel(s.classOrder.length, 0.1);
      const lora = () =>
        model.loraSites().flatMap((site) => [site.a.dataSync(), site.b.dataSync()]);
      const c = collectingRecorder();
      let afterTask1: ArrayLike<number>[] = [];
      const recorder = {
        ...c.recorder,
        taskDone: async (...args: Parameters<typeof c.recorder.taskDone>) => {
          await c.recorder.taskDone(...args);
          if (args[0] === 0) afterTask1 = lora();
        },
      };
      await trainMicro(s, { model, method: m, recorder });
      const drift = lora().reduce(
        (sum, v, i) => sum + Array.from(v).reduce((a, x, j) => a + (x - afterTask1[i][j]) ** 2, 0),
        0,
      );
      model.dispose();
      m.dispose();
      return { ...c, drift };
    };

    // With λ = 0 the accuracy matrix is SeqLoRA's, bit for bit.
    const seqlora = await run(createSeqLora());
    const zero = await run(create({ lambda: 0 }));
    assertEquals(zero.rows, seqlora.rows);
    const terms = zero.losses.filter((l) => l.term === "l2_anchor");
    assert(terms.length > 0 && terms.every((l) => l.task === 1 && l.value === 0));

    // With λ = 10 the first step of task 2 starts at the anchor (penalty exactly 0), then moves.
    const pulled = await run(create({ lambda: 10 }));
    const pulledTerms = pulled.losses.filter((l) => l.term === "l2_anchor");
    assertEquals(pulledTerms[0].value, 0);
    assert(pulledTerms.slice(1).every((l) => l.value > 0));

    // The numbers the page quotes: task 1's accuracy after task 2 is 62.5 % (SeqLoRA) and 75 %
    // (λ = 10) on 8 test images, and the adapter's squared drift during task 2 is about a tenth.
    assertEquals(seqlora.rows[1].cil[0], 62.5);
    assertEquals(pulled.rows[1].cil[0], 75);
    assertEquals(pulled.rows[1].images, 16);
    const ratio = pulled.drift / seqlora.drift;
    assert(ratio > 0.05 && ratio < 0.2, `drift ratio ${ratio}`);
    const prose = (await Deno.readTextFile(PAGE)).replace(/\s+/g, " ");
    assert(prose.includes("75 % against SeqLoRA's 62.5 %") && prose.includes("about a tenth"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("how_to_add_a_method.md: the walkthrough's own test passes under `deno test`", async () => {
  const page = await Deno.readTextFile(PAGE);
  const command = "deno test --allow-read --allow-env my_methods/l2_anchor_test.ts";
  assert(page.includes(command), `the page should tell the reader to run: ${command}`);
  const { dir, blocks } = await writeWalkthrough();
  try {
    const tests = (blocks[1].code.match(/^Deno\.test\(/gm) ?? []).length;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--allow-read", "--allow-env", join(dir, "l2_anchor_test.ts")],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, `deno test failed:\n${text}`);
    assertMatch(text, new RegExp(`ok \\| ${tests} passed \\| 0 failed`));
    assert(page.includes(`ok | ${tests} passed | 0 failed`), "the page quotes the result line");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
