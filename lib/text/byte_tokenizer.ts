/**
 * The default tokenizer of the language-model track: one token per UTF-8 byte.
 *
 * Ids 0–255 are the byte values; three special ids follow:
 *
 * | id  | token |
 * |-----|-------|
 * | 256 | BOS   |
 * | 257 | EOS   |
 * | 258 | PAD   |
 *
 * so the vocabulary has 259 entries. It needs no files, never fails to encode,
 * and `decode(encode(s)) === s` for every string `s` whose UTF-16 is well formed.
 * Decoding is lenient: specials are skipped and a byte sequence that is not
 * valid UTF-8 (a model can emit anything) becomes U+FFFD replacement
 * characters instead of an error.
 *
 * @module
 */

import type { Tokenizer } from "./tokenizer.ts";

/**
 * Beginning-of-sequence id of {@link ByteTokenizer}.
 *
 * @example
 * ```ts
 * import { BYTE_BOS_ID } from "./byte_tokenizer.ts";
 * const ids = [BYTE_BOS_ID, 104, 105]; // BOS "h" "i"
 * ```
 */
export const BYTE_BOS_ID = 256;

/**
 * End-of-sequence id of {@link ByteTokenizer}.
 *
 * @example
 * ```ts
 * import { BYTE_EOS_ID } from "./byte_tokenizer.ts";
 * const done = (id: number) => id === BYTE_EOS_ID;
 * ```
 */
export const BYTE_EOS_ID = 257;

/**
 * Padding id of {@link ByteTokenizer}.
 *
 * @example
 * ```ts
 * import { BYTE_PAD_ID } from "./byte_tokenizer.ts";
 * const leftPadded = [BYTE_PAD_ID, BYTE_PAD_ID, 104, 105];
 * ```
 */
export const BYTE_PAD_ID = 258;

/**
 * Vocabulary size of {@link ByteTokenizer}: 256 byte values + BOS, EOS, PAD.
 *
 * @example
 * ```ts
 * import { BYTE_VOCAB_SIZE } from "./byte_tokenizer.ts";
 * const embeddingRows = BYTE_VOCAB_SIZE; // 259
 * ```
 */
export const BYTE_VOCAB_SIZE = 259;

const ENCODER = new TextEncoder();
// `ignoreBOM: true` keeps a leading U+FEFF in the output (the default would
// silently drop it and break the round trip); `fatal: false` is the lenient mode.
const DECODER = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * Byte-level tokenizer: UTF-8 bytes are the tokens (see the module doc).
 *
 * @example
 * ```ts
 * import { ByteTokenizer } from "./byte_tokenizer.ts";
 * const tok = new ByteTokenizer();
 * const ids = tok.encode("Grüezi"); // [71, 114, 195, 188, 101, 122, 105]
 * tok.decode([tok.bosId, ...ids, tok.eosId]); // "Grüezi"
 * ```
 */
export class ByteTokenizer implements Tokenizer {
  /** Recorded in config.json. */
  readonly name: string = "byte-level";
  /** 259: bytes 0–255, BOS, EOS, PAD. */
  readonly vocabSize: number = BYTE_VOCAB_SIZE;
  /** 256. */
  readonly bosId: number = BYTE_BOS_ID;
  /** 257. */
  readonly eosId: number = BYTE_EOS_ID;
  /** 258. */
  readonly padId: number = BYTE_PAD_ID;

  /** The UTF-8 bytes of `text`, one id per byte, without special tokens. */
  encode(text: string): number[] {
    return Array.from(ENCODER.encode(text));
  }

  /**
   * Text of `ids`: BOS/EOS/PAD are skipped, the remaining bytes are decoded as
   * UTF-8 with invalid sequences replaced by U+FFFD. Throws on an id that is
   * not an integer in 0..258.
   */
  decode(ids: readonly number[]): string {
    const bytes = new Uint8Array(ids.length);
    let n = 0;
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k];
      if (!Number.isInteger(id) || id < 0 || id >= BYTE_VOCAB_SIZE) {
        throw new RangeError(
          `ByteTokenizer.decode: id ${id} at position ${k} is not a byte-level id ` +
            `(expected an integer in 0..${BYTE_VOCAB_SIZE - 1})`,
        );
      }
      if (id < 256) bytes[n++] = id;
    }
    return DECODER.decode(bytes.subarray(0, n));
  }
}
