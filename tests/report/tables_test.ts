import { assert, assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "@std/path";
import {
  formatMeanStd,
  readCsvRows,
  summariseOverSeeds,
  tableToCsv,
  tableToMarkdown,
  writeTable,
} from "../../lib/report/mod.ts";

Deno.test("tableToCsv: header, quoting, union of keys", () => {
  const csv = tableToCsv([
    { method: "seqlora", note: "a,b", acc: 88.5 },
    { method: "treelora", note: 'say "hi"', acc: 90, extra: 1 },
  ]);
  assertEquals(
    csv,
    'method,note,acc,extra\nseqlora,"a,b",88.5,\ntreelora,"say ""hi""",90,1\n',
  );
  assertEquals(tableToCsv([]), "");
});

Deno.test("writeTable → readCsvRows round-trips rows", async () => {
  const dir = await Deno.makeTempDir({ prefix: "treelora-tables-" });
  try {
    const rows = [
      { method: "seqlora", seed: 0, task: 1, acc: 88.123456789, note: "x,y" },
      { method: "treelora", seed: 1, task: 2, acc: 0.1 + 0.2, note: "plain" },
      { method: "treelora", seed: 2, task: 3, acc: NaN, note: 'q"uote' },
    ];
    const paths = await writeTable(join(dir, "sub", "matrix"), rows);
    assertEquals(paths, [join(dir, "sub", "matrix.csv"), join(dir, "sub", "matrix.md")]);
    const back = await readCsvRows(paths[0]);
    assertEquals(back.length, rows.length);
    for (let i = 0; i < rows.length; i++) {
      const { acc, ...rest } = rows[i];
      const { acc: accBack, ...restBack } = back[i];
      assertEquals(restBack, rest);
      if (Number.isNaN(acc)) assert(Number.isNaN(accBack as number));
      else assertEquals(accBack, acc, "full precision");
    }
    const md = await Deno.readTextFile(paths[1]);
    assert(md.startsWith("|method|seed|task|acc|note|\n"));
    // No temporary files left behind.
    const names = [...Deno.readDirSync(join(dir, "sub"))].map((e) => e.name).sort();
    assertEquals(names, ["matrix.csv", "matrix.md"]);
    const only = await writeTable(join(dir, "only"), rows, { formats: ["csv"] });
    assertEquals(only, [join(dir, "only.csv")]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readCsvRows: empty file gives [], missing file error names it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "treelora-tables-" });
  try {
    await Deno.writeTextFile(join(dir, "empty.csv"), "");
    assertEquals(await readCsvRows(join(dir, "empty.csv")), []);
    const missing = join(dir, "nope.csv");
    await assertRejects(() => readCsvRows(missing), Error, missing);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tableToMarkdown: fixed digits, integers plain, pipes escaped", () => {
  const md = tableToMarkdown(
    [{ method: "a|b", acc: 88.456, n: 3, bwt: NaN }, { method: "c", acc: null }],
    { digits: 1 },
  );
  assertEquals(md, "|method|acc|n|bwt|\n|:-|-:|-:|-:|\n|a\\|b|88.5|3|NaN|\n|c||||\n");
  assertEquals(
    tableToMarkdown([{ m: "x", v: 92, k: 1 }, { m: "y", v: 80.754, k: 2 }]),
    "|m|v|k|\n|:-|-:|-:|\n|x|92.00|1|\n|y|80.75|2|\n",
  );
});

/*
 * Hand example: method a, acc over seeds = 88.5, 88.6, 88.4
 *   mean = 265.5/3 = 88.5
 *   sample var = (0 + 0.01 + 0.01)/(3 − 1) = 0.01 → std = 0.1
 * method b: one seed, acc 70 → mean 70, std NaN (n = 1).
 * method c: bwt missing on one seed → bwt_mean and bwt_std NaN; acc 60, 64 → mean 62,
 *   var = (4 + 4)/1 = 8 → std = √8 = 2.8284…
 */
Deno.test("summariseOverSeeds: mean, sample std, n per group", () => {
  const rows = [
    { method: "a", seed: 0, acc: 88.5, bwt: -1 },
    { method: "b", seed: 0, acc: 70, bwt: -5 },
    { method: "a", seed: 1, acc: 88.6, bwt: -2 },
    { method: "c", seed: 0, acc: 60, bwt: NaN },
    { method: "a", seed: 2, acc: 88.4, bwt: -3 },
    { method: "c", seed: 1, acc: 64, bwt: -1 },
  ];
  const out = summariseOverSeeds(rows, { by: ["method"], values: ["acc", "bwt"] });
  assertEquals(out.map((r) => r.method), ["a", "b", "c"]);
  assertEquals(out.map((r) => r.n), [3, 1, 2]);
  const [a, b, c] = out;
  assertAlmostEquals(a.acc_mean as number, 88.5, 1e-9);
  assertAlmostEquals(a.acc_std as number, 0.1, 1e-9);
  assertAlmostEquals(a.bwt_mean as number, -2, 1e-9);
  assertAlmostEquals(a.bwt_std as number, 1, 1e-9);
  assertEquals(b.acc_mean, 70);
  assert(Number.isNaN(b.acc_std as number), "n = 1 → std NaN");
  assertAlmostEquals(c.acc_mean as number, 62, 1e-9);
  assertAlmostEquals(c.acc_std as number, Math.sqrt(8), 1e-9);
  assert(Number.isNaN(c.bwt_mean as number), "missing seed → mean NaN");
  assert(Number.isNaN(c.bwt_std as number));
  assertEquals(Object.keys(a), ["method", "n", "acc_mean", "acc_std", "bwt_mean", "bwt_std"]);
});

Deno.test("summariseOverSeeds: several keys, no keys, bad columns", () => {
  const rows = [
    { method: "a", task: 1, acc: 1 },
    { method: "a", task: 1, acc: 3 },
    { method: "a", task: 2, acc: 5 },
  ];
  const two = summariseOverSeeds(rows, { by: ["method", "task"], values: ["acc"] });
  assertEquals(two.map((r) => [r.method, r.task, r.n, r.acc_mean]), [["a", 1, 2, 2], [
    "a",
    2,
    1,
    5,
  ]]);
  const all = summariseOverSeeds(rows, { by: [], values: ["acc"] });
  assertEquals(all.length, 1);
  assertEquals(all[0].n, 3);
  assertEquals(all[0].acc_mean, 3);
  assertEquals(summariseOverSeeds([], { by: ["method"], values: ["acc"] }), []);
  assertThrows(() => summariseOverSeeds(rows, { by: ["nope"], values: ["acc"] }), Error, '"nope"');
  assertThrows(
    () => summariseOverSeeds(rows, { by: ["method"], values: [] }),
    Error,
    "at least one",
  );
});

Deno.test("formatMeanStd", () => {
  assertEquals(formatMeanStd(88.5421, 0.0498), "88.54 ± 0.05");
  assertEquals(formatMeanStd(88.5421, 0.0498, { digits: 1 }), "88.5 ± 0.0");
  assertEquals(formatMeanStd(88.5421, NaN), "88.54");
  assertEquals(formatMeanStd(NaN, NaN), "n/a");
  assertEquals(formatMeanStd(-1.25, 0.5, { digits: 3 }), "-1.250 ± 0.500");
});
