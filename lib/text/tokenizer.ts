/**
 * The one tokenizer interface of the language-model track. Implementations:
 * byte-level (the default; no files) and Hugging Face `tokenizer.json`.
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
