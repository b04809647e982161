import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import {
  accuracyCurveSpec,
  accuracyHeatmapSpec,
  findFontFile,
  fontFamilyName,
  renderPng,
  renderSvg,
  writePlot,
} from "../../lib/report/mod.ts";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const spec = accuracyCurveSpec([
  { method: "seqlora", task: 1, acc: 95 },
  { method: "seqlora", task: 2, acc: 78 },
  { method: "treelora", task: 1, acc: 95 },
  { method: "treelora", task: 2, acc: 86 },
]);

const font = await findFontFile();
if (font === null) console.warn("render_test: no font file found; PNG tests are skipped");

function isPng(bytes: Uint8Array): boolean {
  return PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

/** Width and height from the IHDR chunk. */
function pngSize(bytes: Uint8Array): [number, number] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  return [dv.getUint32(16), dv.getUint32(20)];
}

Deno.test("renderSvg: SVG with the title and method names as text", async () => {
  const svg = await renderSvg(spec);
  assert(svg.startsWith("<svg"));
  assert(svg.includes("Average accuracy after each task"));
  assert(svg.includes("treelora"));
});

Deno.test("findFontFile: candidates list, missing candidates give null", async () => {
  const none = Deno.env.get("TREELORA_FONT") === undefined
    ? await findFontFile({ candidates: ["/nonexistent/font.ttf"] })
    : null;
  assertEquals(none, null);
  if (font !== null) {
    assertEquals(await findFontFile({ candidates: ["/nonexistent/font.ttf", font] }), font);
  }
});

Deno.test("findFontFile: TREELORA_FONT overrides, and a missing file is an error", async () => {
  const saved = Deno.env.get("TREELORA_FONT");
  try {
    Deno.env.set("TREELORA_FONT", "/nonexistent/custom.ttf");
    await assertRejects(() => findFontFile(), Error, "/nonexistent/custom.ttf");
    if (font !== null) {
      Deno.env.set("TREELORA_FONT", font);
      assertEquals(await findFontFile({ candidates: [] }), font);
    }
  } finally {
    if (saved === undefined) Deno.env.delete("TREELORA_FONT");
    else Deno.env.set("TREELORA_FONT", saved);
  }
});

Deno.test({
  name: "fontFamilyName reads the name table",
  ignore: font === null,
  fn: async () => {
    const family = fontFamilyName(await Deno.readFile(font!));
    assert(family !== null && family.length > 0);
    if (font!.endsWith("DejaVuSans.ttf")) assertEquals(family, "DejaVu Sans");
    assertEquals(fontFamilyName(new Uint8Array([1, 2, 3])), null);
  },
});

Deno.test({
  name: "renderPng: valid PNG signature, scaled size",
  ignore: font === null,
  fn: async () => {
    const svg = await renderSvg(spec);
    const png1 = await renderPng(svg, { fontFile: font!, scale: 1 });
    const png2 = await renderPng(svg, { fontFile: font! });
    assert(isPng(png1) && isPng(png2));
    const [w1, h1] = pngSize(png1);
    const [w2, h2] = pngSize(png2);
    assert(w1 > 100 && h1 > 100, `size ${w1}×${h1}`);
    assertEquals([w2, h2], [w1 * 2, h1 * 2]);
  },
});

Deno.test("renderPng: a missing font file is a clear error", async () => {
  const svg = await renderSvg(spec);
  await assertRejects(
    () => renderPng(svg, { fontFile: "/nonexistent/font.ttf" }),
    Error,
    "could not read font /nonexistent/font.ttf",
  );
});

Deno.test("writePlot: vl.json + svg (+ png with a font), reports the font", async () => {
  const dir = await Deno.makeTempDir({ prefix: "treelora-plots-" });
  try {
    const heat = accuracyHeatmapSpec([[90, NaN], [70, 92]], { method: "seqlora" });
    const plots = join(dir, "plots");
    const base = join(plots, "heatmap");
    const out = await writePlot(plots, "heatmap", heat);
    assertEquals(out.vlJson, `${base}.vl.json`);
    assertEquals(out.svg, `${base}.svg`);
    assertEquals(JSON.parse(await Deno.readTextFile(out.vlJson)), heat);
    assert((await Deno.readTextFile(out.svg)).includes("seqlora"));
    if (font === null) {
      assertEquals(out.png, null);
      assertEquals(out.font, null);
      assertEquals(out.files, [out.vlJson, out.svg]);
    } else {
      assertEquals(out.png, `${base}.png`);
      assertEquals(out.font, font);
      assert(out.fontFamily !== null);
      assert(isPng(await Deno.readFile(out.png!)));
      assertEquals(out.files, [out.vlJson, out.svg, out.png!]);
    }
    const noPng = await writePlot(dir, "nopng", heat, { png: false });
    assertEquals(noPng.png, null);
    assertEquals(noPng.font, null);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assertEquals(names, ["nopng.svg", "nopng.vl.json", "plots"]);
    assertEquals([...Deno.readDirSync(plots)].length, font === null ? 2 : 3, "no temp files left");
    await assertRejects(() => writePlot(dir, "a/b", heat), Error, "plain file name");
    await assertRejects(
      () => writePlot(dir, "x", heat, { png: true, fontFile: "/nonexistent/font.ttf" }),
      Error,
      "could not read font",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("renderSvg leaves the spec untouched", async () => {
  const s = accuracyCurveSpec([{ method: "seqlora", task: 1, acc: 95 }]);
  const copy = structuredClone(s);
  await renderSvg(s);
  assertEquals(s, copy);
  const values = (s.data as { values: object[] }).values;
  assertEquals(Object.getOwnPropertySymbols(values[0]), []);
});
