import { assertEquals, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { majorityRate, taskTable } from "../../lib/report/task_table.ts";
import type { Row } from "../../lib/report/tables.ts";

Deno.test("majorityRate is the share of the most frequent reference", () => {
  assertEquals(majorityRate(["World", "Sports", "World", "Business"]), 50);
  assertEquals(majorityRate(["a"]), 100);
  assertThrows(() => majorityRate([]), RangeError);
});

Deno.test("taskTable: learning and final scores per method beside the majority-label rate", async () => {
  const dir = await Deno.makeTempDir();
  const m = (method: string, seed: number, t: number, task: number, name: string, score: number) =>
    ({
      method,
      seed,
      order: "o",
      trained_through: t,
      task,
      task_name: name,
      metric: name === "gen" ? "rouge_l" : "accuracy",
      score,
    }) as Row;
  // Two tasks; seqlora with two seeds, treelora with one.
  const matrix: Row[] = [
    m("seqlora", 0, 1, 1, "cls", 60),
    m("seqlora", 0, 2, 1, "cls", 20),
    m("seqlora", 0, 2, 2, "gen", 30),
    m("seqlora", 1, 1, 1, "cls", 40),
    m("seqlora", 1, 2, 1, "cls", 10),
    m("seqlora", 1, 2, 2, "gen", 50),
    m("treelora", 0, 1, 1, "cls", 50),
    m("treelora", 0, 2, 1, "cls", 45),
    m("treelora", 0, 2, 2, "gen", 10),
  ];
  // The first run's last round holds the references: cls has 3 × "A" and 1 × "B".
  const folder = join(dir, "predictions", "seqlora", "seed-0-order-o");
  await Deno.mkdir(folder, { recursive: true });
  const lines = [
    ...["A", "A", "B", "A"].map((r) => ({ task: "cls", reference: r, score: 0 })),
    ...["x", "y"].map((r) => ({ task: "gen", reference: r, score: 0 })),
  ].map((x) => JSON.stringify({ prompt: "p", prediction: "q", ...x }));
  await Deno.writeTextFile(join(folder, "round-02.jsonl"), lines.join("\n") + "\n");
  const rows = await taskTable(dir, matrix, ["seqlora", "treelora"]);
  assertEquals(rows, [
    {
      task: "cls",
      metric: "accuracy",
      test_examples: 4,
      majority_rate: "75.00",
      "seqlora learn": "50.00", // (60 + 40) / 2
      "seqlora final": "15.00", // (20 + 10) / 2
      "treelora learn": "50.00",
      "treelora final": "45.00",
    },
    {
      task: "gen",
      metric: "rouge_l",
      test_examples: 2,
      majority_rate: "n/a", // not a label task
      "seqlora learn": "40.00",
      "seqlora final": "40.00",
      "treelora learn": "10.00",
      "treelora final": "10.00",
    },
  ]);
  await Deno.remove(dir, { recursive: true });
});
