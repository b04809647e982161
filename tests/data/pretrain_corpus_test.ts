import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import {
  corpusOverlap,
  normalizeForOverlap,
  readPretrainCorpus,
} from "../../lib/data/pretrain_corpus.ts";

const OLORA = new URL("../../../shared/data/olora", import.meta.url).pathname;

async function writeTask(root: string, task: string, records: unknown): Promise<void> {
  await Deno.mkdir(join(root, task), { recursive: true });
  await Deno.writeTextFile(join(root, task, "train.json"), JSON.stringify(records));
}

Deno.test("readPretrainCorpus reads every task folder but the stream's, prompt + answer per document", async () => {
  const root = await Deno.makeTempDir();
  await writeTask(root, "A", [{ prompt: "p1 ", answer: "x" }, { prompt: "p2 ", answer: "y" }]);
  await writeTask(root, "B", [{ prompt: "q1 ", answer: "z" }]);
  await writeTask(root, "S", [{ prompt: "stream ", answer: "s" }]);
  await Deno.mkdir(join(root, "NoTrain")); // no train.json: skipped
  const c = await readPretrainCorpus([root], { exclude: ["S"], maxPerTask: 1 });
  assertEquals(c.documents, ["p1 x", "q1 z"]);
  assertEquals(c.tasks.map((t) => [t.name, t.documents]), [["A", 1], ["B", 1]]);
  assertEquals([c.excluded, c.characters], [["S"], 8]);
  await assertRejects(
    () => readPretrainCorpus([root], { exclude: ["A", "B", "S"] }),
    Error,
    "no training texts",
  );
  await writeTask(root, "Bad", [{ prompt: 3, answer: "x" }]);
  const err = await assertRejects(() => readPretrainCorpus([root], { exclude: [] }));
  assertStringIncludes((err as Error).message, join(root, "Bad", "train.json"));
  await Deno.remove(root, { recursive: true });
});

Deno.test("corpusOverlap finds a constructed overlapping pair after normalisation, and only it", () => {
  const stream = [
    {
      name: "T",
      train: [{ prompt: "Title: A\nText: one", answer: "World" }, {
        prompt: "unique",
        answer: "x",
      }],
      test: [{ prompt: "Title: B  text", answer: "Sports" }],
    },
  ];
  // The corpus holds the first training example re-wrapped and the test example's full text.
  const corpus = [
    { prompt: "title: a text:   ONE", answer: "?" },
    { prompt: "other", answer: "text" },
  ];
  let r = corpusOverlap(corpus, stream);
  assertEquals(r.checked, 3);
  assertEquals(r.overlaps, [{ task: "T", split: "train", index: 0 }]);
  r = corpusOverlap(["title: b textsports"], stream); // a plain document = prompt + answer
  assertEquals(r.overlaps, [{ task: "T", split: "test", index: 0 }]);
  r = corpusOverlap(["Title: B text sports"], stream); // a space is not a character of the text
  assertEquals(r.overlaps, []);
  assertEquals(normalizeForOverlap("Ｆｕｌｌ\u00a0WIDTH"), "full width");
});

Deno.test({
  name: "the O-LoRA copy: the other 11 tasks share no example with dbpedia, amazon, yahoo, agnews",
  ignore: !(() => {
    try {
      return Deno.statSync(OLORA).isDirectory;
    } catch {
      return false;
    }
  })(),
  async fn() {
    const stream = ["dbpedia", "amazon", "yahoo", "agnews"];
    const corpus = await readPretrainCorpus([OLORA], { exclude: stream });
    assertEquals(corpus.tasks.length, 11);
    assertEquals(corpus.documents.length, 5150);
    const tasks = [];
    for (const name of stream) {
      const read = (split: string) =>
        JSON.parse(Deno.readTextFileSync(join(OLORA, name, `${split}.json`)));
      tasks.push({ name, train: read("train"), test: read("test") });
    }
    const r = corpusOverlap(corpus.examples, tasks);
    assertEquals([r.checked, r.overlaps.length], [2400, 0]);
    // The check is not vacuous on this data: a stream task read as corpus overlaps fully.
    const self = await readPretrainCorpus([OLORA], { exclude: ["amazon", "yahoo", "agnews"] });
    assertEquals(corpusOverlap(self.examples, tasks).overlaps.length >= 500, true);
  },
});
