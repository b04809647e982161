/**
 * The one tokenizer interface of the language-model track. Implementations:
 * byte-level (the default; no files; `ByteTokenizer` in byte_tokenizer.ts) and
 * Hugging Face `tokenizer.json` (`loadHfTokenizer` in hf_tokenizer.ts; needs
 * the `@huggingface/tokenizers` import-map entry).
 *
 * Contract shared by both: `encode` never adds BOS/EOS (callers add them, see
 * spec §9.3–9.4); `decode` skips BOS/EOS/PAD and other special tokens and
 * never throws on a well-formed id, so arbitrary model output can be decoded.
 *
 * @module
 */

/** Turns text into token ids and back. */
export interface Tokenizer {
  /** Short description recorded in config.json (e.g. `byte-level`, `hf:<path>`). */
  readonly name: string;
  /** Number of ids the model's embedding must cover. */
  readonly vocabSize: number;
  /** Beginning-of-sequence id. */
  readonly bosId: number;
  /** End-of-sequence id. */
  readonly eosId: number;
  /** Padding id (never trained on: label −100, attention 0). */
  readonly padId: number;
  /** Ids of `text`, without special tokens. */
  encode(text: string): number[];
  /** Text of `ids`, special tokens skipped. */
  decode(ids: readonly number[]): string;
}
