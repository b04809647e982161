/**
 * Train a byte-level BPE tokenizer (the GPT-2 scheme) on a corpus and write it
 * as a Hugging Face `tokenizer.json`, which `loadHfTokenizer` reads through
 * `@huggingface/tokenizers`.
 *
 * The algorithm, step by step:
 * 1. split every document into words with the GPT-2 pre-tokenisation pattern
 *    (`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`),
 *    the pattern the ByteLevel pre-tokenizer applies at encoding time;
 * 2. write each word's UTF-8 bytes as the 256 printable stand-in characters
 *    of GPT-2's `bytes_to_unicode` (so a space is `Ġ`), and count the words;
 * 3. start from the 256 byte symbols; repeatedly merge the adjacent pair with
 *    the highest count over all words (weighted by word frequency), ties
 *    broken by the smaller pair in code-unit order of its two strings, until
 *    the vocabulary has `vocabSize` symbols or no pair occurs `minFrequency`
 *    times;
 * 4. append the special tokens `<|startoftext|>` (BOS), `<|endoftext|>` (EOS)
 *    and `<|padding|>` (PAD) after the learnt symbols (not `<s>`/`</s>`: those
 *    occur literally in TRACE's Py150 texts and would be read as specials).
 *
 * Because every byte has a symbol, every text round-trips
 * (`decode(encode(s)) === s`).
 *
 * @module
 */

/** Version of the trainer; part of every cache key that holds its output. */
export const BPE_TRAINER_VERSION = 2;

/** BOS, EOS and PAD of a trained tokenizer, in id order after the learnt symbols. */
export const SPECIAL_TOKENS: readonly string[] = Object.freeze([
  "<|startoftext|>",
  "<|endoftext|>",
  "<|padding|>",
]);

/** The GPT-2 pre-tokenisation pattern (the ByteLevel pre-tokenizer's `use_regex`). */
const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's `bytes_to_unicode`: byte b → a printable character (printable
 * Latin-1 bytes map to themselves, the others to U+0100 onwards, in order).
 *
 * @example
 * ```ts
 * import { byteToUnicode } from "./bpe_trainer.ts";
 * const table = byteToUnicode();
 * [table[65], table[32], table[10]]; // ["A", "Ġ", "Ċ"]
 * ```
 */
export function byteToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const table = new Array<string>(256);
  const kept = new Set(keep);
  for (const b of keep) table[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!kept.has(b)) table[b] = String.fromCodePoint(256 + n++);
  }
  return table;
}

/** Options of {@link trainBpe}. */
export interface TrainBpeOptions {
  /** Symbols before the 3 special tokens: 256 bytes + merges (≥ 256). */
  vocabSize: number;
  /** A pair must occur at least this often to be merged (default 2). */
  minFrequency?: number;
}

/** A trained tokenizer: the `tokenizer.json` object and what it holds. */
export interface TrainedBpe {
  /** The Hugging Face `tokenizer.json` content. */
  json: Record<string, unknown>;
  /** Merges learnt, in priority order. */
  merges: [string, string][];
  /** Total ids, special tokens included. */
  vocabSize: number;
  /** Distinct words counted. */
  words: number;
}

/**
 * Learn byte-level BPE merges on `docs` (see the module doc for the algorithm).
 *
 * @example
 * ```ts
 * import { trainBpe } from "./bpe_trainer.ts";
 * const bpe = trainBpe(["low lower lowest", "low low"], { vocabSize: 258 });
 * bpe.merges; // [["l", "o"], ["lo", "w"]]
 * ```
 */
export function trainBpe(docs: readonly string[], options: TrainBpeOptions): TrainedBpe {
  const { vocabSize } = options;
  const minFrequency = options.minFrequency ?? 2;
  if (!Number.isInteger(vocabSize) || vocabSize < 256 || vocabSize > 65_000) {
    throw new RangeError(
      `trainBpe: vocabSize must be an integer in [256, 65000], got ${vocabSize}`,
    );
  }
  if (!Number.isInteger(minFrequency) || minFrequency < 1) {
    throw new RangeError(`trainBpe: minFrequency must be an integer >= 1, got ${minFrequency}`);
  }
  const b2u = byteToUnicode();
  const encoder = new TextEncoder();
  // 1–2. Word counts, each word as byte symbols (ids 0..255 = bytes).
  const counts = new Map<string, number>();
  for (const doc of docs) {
    for (const m of doc.matchAll(GPT2_PATTERN)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
  }
  const symbols: string[] = [...b2u];
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [word, count] of counts) {
    words.push([...encoder.encode(word)]);
    freq.push(count);
  }
  // Pair statistics: key = a * 65536 + b, with the words each pair occurs in.
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const add = (w: number, delta: number) => {
    const s = words[w];
    for (let k = 0; k + 1 < s.length; k++) {
      const key = s[k] * 65536 + s[k + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + delta * freq[w]);
      if (delta > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, set = new Set());
        set.add(w);
      }
    }
  };
  for (let w = 0; w < words.length; w++) add(w, 1);
  const merges: [string, string][] = [];
  // 3. Merge until the vocabulary is full.
  while (symbols.length < vocabSize) {
    let best = -1;
    let bestCount = 0;
    for (const [key, c] of pairCount) {
      if (c < minFrequency || c < bestCount) continue;
      if (c > bestCount || tieBefore(key, best, symbols)) {
        best = key;
        bestCount = c;
      }
    }
    if (best < 0) break;
    const a = Math.floor(best / 65536);
    const b = best % 65536;
    const id = symbols.length;
    symbols.push(symbols[a] + symbols[b]);
    merges.push([symbols[a], symbols[b]]);
    for (const w of pairWords.get(best) ?? []) {
      const s = words[w];
      add(w, -1);
      const out: number[] = [];
      for (let k = 0; k < s.length; k++) {
        if (k + 1 < s.length && s[k] === a && s[k + 1] === b) {
          out.push(id);
          k++;
        } else out.push(s[k]);
      }
      words[w] = out;
      add(w, 1);
    }
    pairWords.delete(best);
    pairCount.delete(best);
  }
  // 4. The tokenizer.json.
  const vocab: Record<string, number> = {};
  symbols.forEach((sym, id) => (vocab[sym] = id));
  const specials = SPECIAL_TOKENS.map((content, k) => ({ id: symbols.length + k, content }));
  const json = byteLevelBpeJson({ vocab, merges, specials });
  return { json, merges, vocabSize: symbols.length + specials.length, words: words.length };
}

/** Options of {@link byteLevelBpeJson}. */
export interface ByteLevelBpeJsonOptions {
  /** Symbol (in the byte-to-unicode alphabet) → id. */
  vocab: Record<string, number>;
  /** Merges in rank order. */
  merges: readonly (readonly [string, string])[];
  /** Added special tokens. */
  specials: readonly { id: number; content: string }[];
  /** A post-processor object (default none). */
  postProcessor?: Record<string, unknown> | null;
  /** Write merges as `[a, b]` arrays (newer `tokenizers` files) instead of `"a b"` strings. */
  mergesAsArrays?: boolean;
}

/**
 * A Hugging Face `tokenizer.json` object for a GPT-2-style byte-level BPE: ByteLevel
 * pre-tokenizer (GPT-2 pattern, no prefix space) and decoder, BPE model without unknown
 * token or dropout, and the given specials as added tokens (`special: true`, not normalised).
 *
 * @example
 * ```ts
 * import { byteLevelBpeJson } from "./bpe_trainer.ts";
 * const json = byteLevelBpeJson({
 *   vocab: { a: 0, b: 1, ab: 2 },
 *   merges: [["a", "b"]],
 *   specials: [{ id: 3, content: "<|endoftext|>" }],
 * });
 * (json.model as { merges: string[] }).merges; // ["a b"]
 * ```
 */
export function byteLevelBpeJson(options: ByteLevelBpeJsonOptions): Record<string, unknown> {
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: options.specials.map(({ id, content }) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: {
      type: "ByteLevel",
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: options.postProcessor ?? null,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: options.vocab,
      merges: options.mergesAsArrays
        ? options.merges.map(([x, y]) => [x, y])
        : options.merges.map(([x, y]) => `${x} ${y}`),
    },
  };
}

/** True when pair `key` comes before pair `other` among equal counts (smaller strings first). */
function tieBefore(key: number, other: number, symbols: readonly string[]): boolean {
  if (other < 0) return true;
  const ka = symbols[Math.floor(key / 65536)];
  const kb = symbols[key % 65536];
  const oa = symbols[Math.floor(other / 65536)];
  const ob = symbols[other % 65536];
  if (ka !== oa) return ka < oa;
  return kb < ob;
}
