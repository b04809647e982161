import { assertEquals, assertStringIncludes } from "@std/assert";
import { oloraTable10Section, PAPER_TABLE10 } from "../../lib/report/olora_table.ts";
import type { Row } from "../../lib/report/tables.ts";

function rows(method: string, op: number, bwt: number, seconds: number): Row[] {
  const out: Row[] = [];
  for (const order of ["olora-1", "olora-2", "olora-3"]) {
    for (const seed of [0, 1]) {
      // seed 1 is 2 points above seed 0 in OP, so std = sqrt(2) for every cell.
      out.push({
        method,
        seed,
        order,
        op_trace: op + 2 * seed,
        bwt_trace: bwt,
        train_seconds: seconds,
      });
    }
  }
  return out;
}

Deno.test("Table 10 beside the run: cells, forgetting sign, time ratio and the checked orderings", () => {
  const wide = [
    ...rows("seqlora", 30, -20, 10),
    ...rows("o-lora", 40, -5, 12),
    ...rows("tree", 45, -4, 6),
  ];
  const md = oloraTable10Section(wide, {
    nameOf: (l) => (l === "tree" ? "treelora" : l),
    scale: "test scale",
  });
  // OP 30 and 32 over two seeds: 31 ± 1.41; forgetting is −bwt_trace = 20 (std 0).
  assertStringIncludes(md, "| seqlora | 31.00 ± 1.41 (55.71) | 31.00 ± 1.41 (45.26) |");
  assertStringIncludes(md, "20.00 ± 0.00 (8.63)");
  // Time: 3 orders × 6 s = 18 s per seed for TreeLoRA, 36 s for O-LoRA: 0.50 (paper 45/58).
  assertStringIncludes(md, "| 18.0 (45) | 0.50 (0.78) |");
  assertStringIncludes(md, "seqlora 20.00 vs o-lora 5.00, treelora 4.00: **holds**");
  assertStringIncludes(
    md,
    "18.0 vs 36.0 s, 0.50×; the per-seed spread (std) is 0.0 and 0.0 s: **holds**",
  );
  const withEpochs = oloraTable10Section(wide, {
    nameOf: (l) => (l === "tree" ? "treelora" : l),
    scale: "",
    epochsOf: (l) => (l === "tree" ? [2, 1] : [3, 3]),
  });
  assertStringIncludes(withEpochs, "0.50×, with different epochs per task (see the Methods list)");
  assertStringIncludes(
    md,
    "treelora 46.00; seqlora 31.00, o-lora 41.00: TreeLoRA is **the highest**",
  );
  assertStringIncludes(md, "Scale here: test scale.");

  // Forgetting that does not separate the groups is reported as not holding.
  const flat = [...rows("seqlora", 30, -3, 10), ...rows("o-lora", 40, -5, 12)];
  assertStringIncludes(
    oloraTable10Section(flat, { nameOf: (l) => l, scale: "" }),
    "**does not hold**",
  );
  // A run without all three orders gets no section.
  assertEquals(
    oloraTable10Section(wide.filter((r) => r.order !== "olora-3"), {
      nameOf: (l) => l,
      scale: "",
    }),
    "",
  );
  assertEquals(PAPER_TABLE10.treelora.op, [59.73, 53.78, 62.76]);
});
