/**
 * lib/report/paper_check.ts: Fig. 1's curve points, the task-identity table, the plain-words
 * check of the ViT claim and the Table 1 orderings, on rows worked by hand.
 */

import { assertEquals, assertStringIncludes } from "@std/assert";
import {
  learningCurveRows,
  type MethodStats,
  PAPER_TABLE1_CIFAR,
  paperClaimCheck,
  table1Orderings,
  taskIdentityTable,
} from "../../lib/report/paper_check.ts";

function stat(method: string, acc: number, accStd: number, seconds: number, secondsStd: number) {
  return { method, runs: 3, acc, accStd, seconds, secondsStd } satisfies MethodStats;
}

Deno.test("learningCurveRows: per run the mean over tasks ≥ 2, then mean ± std over runs", () => {
  const rows = [
    { method: "m", seed: 0, task: 1, samples_seen: 0, accuracy: 99 }, // task 1: left out
    { method: "m", seed: 0, task: 2, samples_seen: 0, accuracy: 10 },
    { method: "m", seed: 0, task: 3, samples_seen: 0, accuracy: 30 }, // run 0: 20
    { method: "m", seed: 1, task: 2, samples_seen: 0, accuracy: 40 }, // run 1: 40
  ];
  const [p] = learningCurveRows(rows);
  assertEquals([p.method, p.samplesSeen, p.accuracy], ["m", 0, 30]);
  // sample std of 20 and 40: √200 = 14.142…
  assertEquals(+(p.high - p.accuracy).toFixed(3), 14.142);
  assertEquals(+(p.accuracy - p.low).toFixed(3), 14.142);
});

Deno.test("taskIdentityTable: final, new (diagonal from task 2) and old, per method", () => {
  const rows = [
    { method: "m", seed: 0, trained_through: 1, task: 1, tii_acc: 100 },
    { method: "m", seed: 0, trained_through: 2, task: 1, tii_acc: 80 },
    { method: "m", seed: 0, trained_through: 2, task: 2, tii_acc: 60 },
  ];
  assertEquals(taskIdentityTable(rows), [
    { method: "m", runs: 1, tii_final: "70.00", tii_new: "60.00", tii_old: "80.00" },
  ]);
});

Deno.test("paperClaimCheck: within 1 point at ≤ 0.5× reproduces; the control's share of the time saved", () => {
  const lines = paperClaimCheck([
    stat("hide-lora", 60, 1, 100, 0),
    stat("hide-treelora", 59.5, 1, 40, 0),
    stat("hide-lora-reduced-epochs", 59, 1, 70, 0),
  ], {
    reference: "hide-lora",
    candidates: ["hide-treelora"],
    controls: { "hide-treelora": "hide-lora-reduced-epochs" },
  });
  assertEquals(lines.length, 2);
  assertStringIncludes(lines[0], "(-0.50 points)");
  assertStringIncludes(lines[0], "(0.40×)");
  assertStringIncludes(lines[0], "**reproduces**");
  // (1 − 0.7) / (1 − 0.4) = 0.5
  assertStringIncludes(lines[1], "explains 50 % of hide-treelora's time saved");
  // 2 points below and 0.9× the time: neither condition
  const miss = paperClaimCheck([
    stat("hide-lora", 60, 1, 100, 0),
    stat("hide-treelora", 58, 1, 90, 0),
  ], {
    reference: "hide-lora",
    candidates: ["hide-treelora"],
  });
  assertStringIncludes(miss[0], "**does not reproduce**");
  assertEquals(
    paperClaimCheck([stat("seqlora", 1, 0, 1, 0)], { reference: "hide-lora", candidates: [] }),
    [],
  );
});

Deno.test("table1Orderings: the paper's order, the run's gap ± spread, holds / reversed / tie", () => {
  const lines = table1Orderings([
    stat("seqlora", 10, 1, 50, 1),
    stat("l2p", 30, 1, 60, 2),
    stat("hide-lora", 31, 2, 40, 1),
    stat("hide-treelora", 35, 0.5, 45, 0.5),
    stat("joint", 90, 0, 10, 0), // not in Table 1: no row
  ]);
  // header + 6 pairs × 2 measures
  assertEquals(lines.length, 2 + 12);
  const row = (pair: string, measure: string) =>
    lines.find((l) => l.startsWith(`| ${pair} | ${measure} |`));
  assertEquals(
    row("SeqLoRA vs L2P", "ACC"),
    "| SeqLoRA vs L2P | ACC | L2P higher (10.35 vs 79.66) | -20.00 points (± 2.00) | **holds** |",
  );
  assertEquals(
    row("SeqLoRA vs L2P", "TIME"),
    "| SeqLoRA vs L2P | TIME | L2P slower (694 vs 1240) | -10.00 s (± 3.00) | **holds** |",
  );
  // 694 ± 8 vs 692 ± 7: a gap of 2 ≤ 15 is a tie in the paper
  assertEquals(
    row("SeqLoRA vs HiDeLoRA", "TIME"),
    "| SeqLoRA vs HiDeLoRA | TIME | tie (694 vs 692) | +10.00 s (± 2.00) | — (paper: tie) |",
  );
  // right order, but 1 point is inside the 3-point spread
  assertEquals(
    row("L2P vs HiDeLoRA", "ACC"),
    "| L2P vs HiDeLoRA | ACC | HiDeLoRA higher (79.66 vs 88.46) | -1.00 points (± 3.00) | **holds**, within spread |",
  );
  // the paper's TreeLoRA takes 214 s against HiDeLoRA's 692; here it is 5 s slower
  assertEquals(
    row("HiDeLoRA vs TreeLoRA", "TIME"),
    "| HiDeLoRA vs TreeLoRA | TIME | HiDeLoRA slower (692 vs 214) | -5.00 s (± 1.50) | **reversed** |",
  );
  assertEquals(table1Orderings([stat("seqlora", 1, 0, 1, 0), stat("joint", 2, 0, 2, 0)]), []);
  assertEquals(PAPER_TABLE1_CIFAR["hide-treelora"].name, "TreeLoRA");
});
