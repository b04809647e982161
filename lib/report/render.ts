/**
 * Render Vega-Lite specs to SVG (vega, headless) and PNG (@resvg/resvg-wasm).
 *
 * SVG needs no fonts: the text is kept as `<text>` elements. PNG rasterises
 * the text, and resvg-wasm sees no system fonts, so a TTF/OTF file must be
 * passed explicitly — without one the PNG has lines but no text at all.
 * {@link findFontFile} locates one (`TREELORA_FONT` overrides the search);
 * {@link writePlot} writes the PNG only when a font is available and reports
 * which font it used.
 *
 * Permissions: `--allow-read` (fonts, the resvg `.wasm`), `--allow-write` for
 * {@link writePlot}; `TREELORA_FONT` is read only when `--allow-env` grants it.
 *
 * @module
 */

import * as vega from "vega";
import * as vl from "vega-lite";
import { initWasm, Resvg } from "@resvg/resvg-wasm";
import { join } from "@std/path";
import { writeFileAtomic } from "../io.ts";

/** A Vega-Lite specification of one figure (vega-lite's `TopLevelSpec`). */
export type PlotSpec = vl.TopLevelSpec;

/** Sans-serif TTF files tried in order by {@link findFontFile} (Debian/Ubuntu, Fedora, Arch, Alpine, macOS). */
export const FONT_CANDIDATES: readonly string[] = Object.freeze([
  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
  "/usr/share/fonts/dejavu/DejaVuSans.ttf",
  "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
  "/usr/share/fonts/TTF/DejaVuSans.ttf",
  "/usr/share/fonts/ttf-dejavu/DejaVuSans.ttf",
  "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
  "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
  "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
  "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
  "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
  "/usr/share/fonts/noto/NotoSans-Regular.ttf",
  "/usr/share/fonts/google-noto/NotoSans-Regular.ttf",
  "/System/Library/Fonts/Supplemental/Arial.ttf",
  "/Library/Fonts/Arial.ttf",
]);

/** The environment variable that names a font file and overrides the search. */
export const FONT_ENV_VAR = "TREELORA_FONT";

/**
 * Compile a Vega-Lite spec and render it to an SVG string, headless
 * (vega's "none" renderer; text stays as `<text>`, so no fonts are needed).
 * The spec is not modified.
 *
 * @example
 * ```ts
 * import { renderSvg } from "./render.ts";
 * const svg = await renderSvg({
 *   $schema: "https://vega.github.io/schema/vega-lite/v6.json",
 *   data: { values: [{ x: 1, y: 2 }] },
 *   mark: "point",
 *   encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" } },
 * });
 * ```
 */
export async function renderSvg(vlSpec: PlotSpec): Promise<string> {
  // vega tags ingested data objects in place (a symbol id); keep the caller's spec untouched.
  const compiled = vl.compile(structuredClone(vlSpec)).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function envFont(): string | undefined {
  const state = Deno.permissions.querySync({ name: "env", variable: FONT_ENV_VAR }).state;
  if (state !== "granted") return undefined;
  const value = Deno.env.get(FONT_ENV_VAR);
  return value === undefined || value === "" ? undefined : value;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotCapable) return false;
    throw err;
  }
}

/**
 * Locate a font file for PNG rendering: `$TREELORA_FONT` when set (and
 * readable via `--allow-env`), else the first existing path of `candidates`
 * (default {@link FONT_CANDIDATES}), else `null`. Throws when
 * `TREELORA_FONT` names a file that does not exist.
 *
 * @example
 * ```ts
 * import { findFontFile } from "./render.ts";
 * const font = await findFontFile(); // e.g. "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf" or null
 * ```
 */
export async function findFontFile(
  options: { candidates?: readonly string[] } = {},
): Promise<string | null> {
  const fromEnv = envFont();
  if (fromEnv !== undefined) {
    if (!(await isFile(fromEnv))) {
      throw new Error(`${FONT_ENV_VAR}=${fromEnv}, but no such font file exists`);
    }
    return fromEnv;
  }
  for (const path of options.candidates ?? FONT_CANDIDATES) {
    if (await isFile(path)) return path;
  }
  return null;
}

/**
 * Read the family name (name ID 16, else 1) from a TrueType/OpenType font's
 * `name` table; `null` when the file is not a parsable sfnt.
 *
 * @example
 * ```ts
 * import { fontFamilyName } from "./render.ts";
 * const bytes = await Deno.readFile("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").catch(() => null);
 * if (bytes) fontFamilyName(bytes); // "DejaVu Sans"
 * ```
 */
export function fontFamilyName(bytes: Uint8Array): string | null {
  try {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const numTables = dv.getUint16(4);
    let nameOffset = -1;
    for (let t = 0; t < numTables; t++) {
      const rec = 12 + 16 * t;
      const tag = String.fromCharCode(...bytes.subarray(rec, rec + 4));
      if (tag === "name") nameOffset = dv.getUint32(rec + 8);
    }
    if (nameOffset < 0) return null;
    const count = dv.getUint16(nameOffset + 2);
    const strings = nameOffset + dv.getUint16(nameOffset + 4);
    const found = new Map<number, string>();
    for (let r = 0; r < count; r++) {
      const rec = nameOffset + 6 + 12 * r;
      const platform = dv.getUint16(rec);
      const language = dv.getUint16(rec + 4);
      const nameId = dv.getUint16(rec + 6);
      if (nameId !== 1 && nameId !== 16) continue;
      const length = dv.getUint16(rec + 8);
      const start = strings + dv.getUint16(rec + 10);
      const raw = bytes.subarray(start, start + length);
      let text: string | null = null;
      if (platform === 3 || platform === 0) {
        if (platform === 3 && language !== 0x409) continue;
        text = new TextDecoder("utf-16be").decode(raw);
      } else if (platform === 1 && language === 0) {
        text = new TextDecoder("latin1").decode(raw);
      }
      if (text && !found.has(nameId)) found.set(nameId, text);
    }
    return found.get(16) ?? found.get(1) ?? null;
  } catch {
    return null;
  }
}

let wasmReady: Promise<void> | null = null;

function ensureResvg(): Promise<void> {
  if (wasmReady === null) {
    const url = new URL(import.meta.resolve("@resvg/resvg-wasm/index_bg.wasm"));
    wasmReady = Deno.readFile(url)
      .then((bytes) => initWasm(bytes))
      .catch((err: Error) => {
        // Another module in this process may have initialised resvg already.
        if (/already initiali[sz]ed/i.test(err.message)) return;
        wasmReady = null;
        throw new Error(`could not initialise @resvg/resvg-wasm: ${err.message}`, { cause: err });
      });
  }
  return wasmReady;
}

interface LoadedFont {
  file: string;
  bytes: Uint8Array;
  family: string | null;
}

async function loadFont(fontFile?: string): Promise<LoadedFont | null> {
  const file = fontFile ?? await findFontFile();
  if (file === null) return null;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (err) {
    throw new Error(`could not read font ${file}: ${(err as Error).message}`, { cause: err });
  }
  return { file, bytes, family: fontFamilyName(bytes) };
}

async function rasterise(svg: string, font: LoadedFont, scale: number): Promise<Uint8Array> {
  await ensureResvg();
  const family = font.family ?? undefined;
  const resvg = new Resvg(svg, {
    fitTo: { mode: "zoom", value: scale },
    font: {
      fontBuffers: [font.bytes],
      defaultFontFamily: family,
      sansSerifFamily: family,
      serifFamily: family,
      monospaceFamily: family,
    },
  });
  try {
    const image = resvg.render();
    try {
      return image.asPng();
    } finally {
      image.free();
    }
  } finally {
    resvg.free();
  }
}

/**
 * Rasterise an SVG string to PNG bytes with @resvg/resvg-wasm.
 *
 * `fontFile` is loaded and used for every generic family (sans-serif, serif,
 * monospace) and as the default; when omitted, {@link findFontFile} is used,
 * and an error is thrown if no font is found (the PNG would have no text).
 * `scale` zooms the output (default 2, for legible text).
 *
 * @example
 * ```ts ignore
 * import { renderPng, renderSvg } from "./render.ts";
 * const png = await renderPng(await renderSvg(spec), { fontFile: "/path/DejaVuSans.ttf" });
 * ```
 */
export async function renderPng(
  svg: string,
  options: { fontFile?: string; scale?: number } = {},
): Promise<Uint8Array> {
  const font = await loadFont(options.fontFile);
  if (font === null) {
    throw new Error(
      `renderPng: no font file found (tried ${FONT_ENV_VAR} and ${FONT_CANDIDATES.length} ` +
        `common paths); pass { fontFile } or set ${FONT_ENV_VAR}, or text would not render`,
    );
  }
  return await rasterise(svg, font, options.scale ?? 2);
}

/** What {@link writePlot} wrote. */
export interface PlotFiles {
  /** Every path written, in order (`.vl.json`, `.svg`, then `.png` if written). */
  files: string[];
  /** The Vega-Lite spec, `<dir>/<name>.vl.json`. */
  vlJson: string;
  /** The rendered SVG, `<dir>/<name>.svg`. */
  svg: string;
  /** The PNG, `<dir>/<name>.png`, or `null` when not written. */
  png: string | null;
  /** The font file used for the PNG, or `null` when no PNG was written. */
  font: string | null;
  /** That font's family name as read from the file, when known. */
  fontFamily: string | null;
}

/**
 * Write `<dir>/<name>.vl.json`, `<dir>/<name>.svg` and, depending on `png`,
 * `<dir>/<name>.png`, each atomically (`dir` is created if needed).
 *
 * `png`: `"auto"` (default) writes the PNG when a font is found and skips it
 * otherwise; `true` requires it (throws without a font); `false` skips it.
 * `fontFile` overrides the font search; `scale` is the PNG zoom (default 2).
 * The result lists the paths written and the font used, so a report can state it.
 *
 * @example
 * ```ts ignore
 * import { writePlot } from "./render.ts";
 * import { accuracyCurveSpec } from "./plots.ts";
 * const out = await writePlot("results/x/plots", "accuracy_curve", accuracyCurveSpec(rows));
 * console.log(out.png ? `PNG font: ${out.font}` : "PNG skipped: no font");
 * ```
 */
export async function writePlot(
  dir: string,
  name: string,
  spec: PlotSpec,
  options: { png?: boolean | "auto"; fontFile?: string; scale?: number } = {},
): Promise<PlotFiles> {
  if (name === "" || /[\\/]/.test(name)) {
    throw new Error(`writePlot: name must be a plain file name, got ${JSON.stringify(name)}`);
  }
  const want = options.png ?? "auto";
  const base = join(dir, name);
  const vlJson = `${base}.vl.json`;
  const svgPath = `${base}.svg`;
  const svg = await renderSvg(spec);
  await writeFileAtomic(vlJson, JSON.stringify(spec, null, 2) + "\n");
  await writeFileAtomic(svgPath, svg);
  const out: PlotFiles = {
    files: [vlJson, svgPath],
    vlJson,
    svg: svgPath,
    png: null,
    font: null,
    fontFamily: null,
  };
  if (want === false) return out;
  const font = await loadFont(options.fontFile);
  if (font === null) {
    if (want === true) {
      throw new Error(`writePlot: png: true, but no font file was found; set ${FONT_ENV_VAR}`);
    }
    return out;
  }
  const pngPath = `${base}.png`;
  await writeFileAtomic(pngPath, await rasterise(svg, font, options.scale ?? 2));
  out.files.push(pngPath);
  out.png = pngPath;
  out.font = font.file;
  out.fontFamily = font.family;
  return out;
}
