/**
 * Fuzz test of the Hugging Face `tokenizer.json` loader (`loadHfTokenizer`,
 * lib/text/hf_tokenizer.ts; parsing by the npm package @huggingface/tokenizers).
 *
 * Format: a JSON object with `model` (here a tiny GPT-2-style byte-level BPE: 256 byte
 * symbols, 4 merges), `added_tokens`, `normalizer`, `pre_tokenizer`, `post_processor` and
 * `decoder`.
 *
 * Mutations (seeded, see mutate.ts): 200 cases, 70 % structural JSON mutations (drop a key,
 * replace a value by null / a number / 1e308 / a negative / a NaN-ish string / an array / an
 * object, duplicate an added token or a key, rename a key, wrap a value in an array) and 30 %
 * byte mutations of the file text (flip, overwrite, truncation, insertion, deletion).
 *
 * Asserted for every case: the load either succeeds (a positive vocabulary size, BOS/EOS/PAD
 * ids inside it) or throws an `Error` whose message names the file. A second, stricter test
 * (it failed before the fix, see FINDING below) also asserts that a tokenizer that loads is usable:
 * `encode("hello world")` gives ids inside the vocabulary, and `decode` accepts them.
 */

import { assert } from "@std/assert";
import { join } from "@std/path";
import { hfTokenizersAvailable, loadHfTokenizer } from "../../lib/text/hf_tokenizer.ts";
import { tinyTokenizerJson } from "../models/hf_fixtures.ts";
import { attempt, describeError, FuzzLog, mutateJsonText, Prng } from "./mutate.ts";

const SEED = 0x70c;
const CASES = 200;
const available = await hfTokenizersAvailable();

async function fuzzTokenizer(checkUse: boolean): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "treelora-fuzz-tokenizer-" });
  try {
    const path = join(dir, "tokenizer.json");
    const valid = tinyTokenizerJson();
    const rng = new Prng(SEED);
    const log = new FuzzLog(checkUse ? "tokenizer.json (use)" : "tokenizer.json", SEED);
    for (let c = 0; c < CASES; c++) {
      const m = mutateJsonText(valid, rng, { structural: 0.7 });
      await Deno.writeFile(path, m.value);
      log.cases++;
      const out = await attempt(() => loadHfTokenizer(path, { configPath: null }));
      if (!out.ok) {
        log.refusedNaming(c, m.description, out.error, [path]);
        continue;
      }
      log.accepted++;
      const tok = out.value;
      const size = tok.vocabSize;
      const inVocab = (id: number) => Number.isInteger(id) && id >= 0 && id < size;
      if (!Number.isInteger(size) || size < 1) {
        log.fail(c, m.description, `vocabSize ${size}`);
        continue;
      }
      if (![tok.bosId, tok.eosId, tok.padId].every(inVocab)) {
        log.fail(c, m.description, `special ids ${tok.bosId}/${tok.eosId}/${tok.padId}`);
        continue;
      }
      if (!checkUse) continue;
      const use = await attempt(() => {
        const ids = tok.encode("hello world");
        if (ids.length === 0 || !ids.every(inVocab)) {
          throw new Error(`encode("hello world") gave [${ids}]`);
        }
        return tok.decode(ids);
      });
      if (!use.ok) {
        log.fail(c, m.description, `loaded, but then ${describeError(use.error)}`);
      }
    }
    log.assertClean();
    assert(log.accepted > 0 && log.refused > 0, "both outcomes exercised");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "fuzz tokenizer.json: every mutation loads or is refused naming the file",
  ignore: !available,
  fn: () => fuzzTokenizer(false),
});

// FINDING (fixed: lib/text/hf_tokenizer.ts now validates the vocabulary), seed 0x70c:
// - case 187, "model"."vocab"."Ġ" replaced by -1e308: loads (vocabSize 262), and
//   encode("hello world") returns [259, -1e308, 86, 78, 81, 75, 67]; decode then throws
//   RangeError "hf:<path> decode: id -1e+308 at position 1 is outside the vocabulary".
// - case 182, "model"."vocab" wrapped in an array: loads, encode("hello world") returns [],
//   and decode([]) throws tokenizers.js' "token_ids must be a non-empty array of integers."
//   (no file name).
Deno.test({
  name: "fuzz tokenizer.json (strict): a tokenizer that loads encodes and decodes",
  ignore: !available,
  fn: () => fuzzTokenizer(true),
});
