/**
 * A Hugging Face `tokenizer.json` behind the {@link Tokenizer} interface.
 *
 * The heavy lifting (normalizers, pre-tokenizers, BPE / WordPiece / Unigram
 * models, decoders, added tokens) is done by the npm package
 * `@huggingface/tokenizers` (tokenizers.js, pure JavaScript, no dependencies,
 * no network access: it is handed the parsed JSON, it never fetches). The
 * package is loaded lazily through the import-map name
 * {@link HF_TOKENIZERS_MODULE}; deno.json must map it, e.g.
 *
 * ```json
 * "@huggingface/tokenizers": "npm:@huggingface/tokenizers@0.2.0"
 * ```
 *
 * Without that entry everything else in the harness still works; only
 * {@link loadHfTokenizer} / {@link hfTokenizerFromJson} throw, saying so.
 *
 * **Semantics.** `encode` never adds BOS/EOS (`add_special_tokens: false`), but
 * a special token written literally in the text (e.g. `<|endoftext|>`) is still
 * recognised as that token, as in Python `transformers`. `decode` skips special
 * tokens and does not "clean up tokenization spaces", so that
 * `decode(encode(s)) === s` for byte-level BPE tokenizers — this matches the
 * TRACE/TreeLoRA inference code, which decodes with
 * `skip_special_tokens=True, clean_up_tokenization_spaces=False`.
 *
 * **Special ids.** BOS, EOS and PAD are found, in this order of preference, from
 * the options, from `tokenizer_config.json` next to the tokenizer file
 * (`bos_token`, `eos_token`, `pad_token`), or from well-known names among the
 * added tokens (`<|begin_of_text|>`, `<s>`, `<|endoftext|>`, `</s>`, …).
 * A missing BOS or PAD falls back to EOS (GPT-2 and LLaMA-3 have no PAD); a
 * missing EOS is an error.
 *
 * @module
 */

import { dirname, join } from "@std/path";
import type { Tokenizer } from "./tokenizer.ts";

/**
 * Import-map name under which the tokenizers.js package must be mapped.
 *
 * @example
 * ```ts
 * import { HF_TOKENIZERS_MODULE } from "./hf_tokenizer.ts";
 * console.log(`deno.json needs "${HF_TOKENIZERS_MODULE}": "npm:@huggingface/tokenizers@0.2.0"`);
 * ```
 */
export const HF_TOKENIZERS_MODULE = "@huggingface/tokenizers";

/** The import-map line this module was written and tested against. */
const IMPORT_MAP_LINE = `"${HF_TOKENIZERS_MODULE}": "npm:@huggingface/tokenizers@0.2.0"`;

/** The part of tokenizers.js' `Tokenizer` class used here (structural, so no static import). */
interface JsTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
  decode(
    ids: number[],
    options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean },
  ): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens?: boolean): Map<string, number>;
}

interface JsTokenizersModule {
  Tokenizer: new (tokenizerJson: object, tokenizerConfig: object) => JsTokenizer;
}

let modulePromise: Promise<JsTokenizersModule> | undefined;

function importTokenizers(): Promise<JsTokenizersModule> {
  if (modulePromise === undefined) {
    // A non-literal specifier keeps `deno check` from resolving the package at
    // type-check time, so the rest of the harness builds without the mapping.
    const specifier: string = HF_TOKENIZERS_MODULE;
    modulePromise = (import(specifier) as Promise<JsTokenizersModule>).catch((err) => {
      modulePromise = undefined;
      throw new Error(
        `the npm package ${HF_TOKENIZERS_MODULE} is not importable (${(err as Error).message}); ` +
          `add ${IMPORT_MAP_LINE} to "imports" in deno.json to use Hugging Face tokenizers, ` +
          `or use the byte-level tokenizer`,
        { cause: err },
      );
    });
  }
  return modulePromise;
}

/**
 * True when the tokenizers.js package can be imported (the import map maps
 * {@link HF_TOKENIZERS_MODULE} and the package is installed or installable).
 *
 * @example
 * ```ts
 * import { hfTokenizersAvailable } from "./hf_tokenizer.ts";
 * if (!(await hfTokenizersAvailable())) console.log("byte-level tokenizer only");
 * ```
 */
export async function hfTokenizersAvailable(): Promise<boolean> {
  try {
    await importTokenizers();
    return true;
  } catch {
    return false;
  }
}

/** Options of {@link loadHfTokenizer}. */
export interface HfTokenizerOptions {
  /** BOS token string (overrides tokenizer_config.json and the built-in candidates). */
  bos?: string;
  /** EOS token string. */
  eos?: string;
  /** PAD token string. */
  pad?: string;
  /**
   * Path of `tokenizer_config.json`. Default: the file of that name next to the
   * tokenizer file, when it exists. `null`: read none.
   */
  configPath?: string | null;
}

/** Options of {@link hfTokenizerFromJson}. */
export interface HfTokenizerFromJsonOptions extends Omit<HfTokenizerOptions, "configPath"> {
  /** Where the JSON came from; used in error messages and in `name` (`hf:<source>`). */
  source: string;
  /** Parsed `tokenizer_config.json`, if any. */
  config?: Record<string, unknown>;
}

/** A Hugging Face tokenizer; {@link Tokenizer} plus token-string lookups. */
export interface HfTokenizer extends Tokenizer {
  /** Id of a token string (vocabulary or added token), if it exists. */
  tokenToId(token: string): number | undefined;
  /** Token string of an id, if it exists. */
  idToToken(id: number): string | undefined;
}

const BOS_CANDIDATES = ["<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>", "[CLS]"];
const EOS_CANDIDATES = [
  "<|end_of_text|>",
  "</s>",
  "<eos>",
  "<|endoftext|>",
  "<|eot_id|>",
  "<|im_end|>",
  "[SEP]",
];
const PAD_CANDIDATES = ["<pad>", "<|pad|>", "[PAD]", "<|finetune_right_pad_id|>", "<|padding|>"];

/** `bos_token` etc. in tokenizer_config.json are a string or `{ content: string }`. */
function configToken(config: Record<string, unknown> | undefined, key: string): string | undefined {
  const v = config?.[key];
  if (typeof v === "string") return v;
  if (
    v !== null && typeof v === "object" && typeof (v as { content?: unknown }).content === "string"
  ) {
    return (v as { content: string }).content;
  }
  return undefined;
}

function checkTokenizerJson(
  json: unknown,
  source: string,
): asserts json is Record<string, unknown> {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new TypeError(`${source}: a tokenizer.json must be a JSON object, got ${typeof json}`);
  }
  const t = json as Record<string, unknown>;
  const model = t.model as Record<string, unknown> | undefined;
  if (model === null || typeof model !== "object") {
    throw new TypeError(`${source}: tokenizer.json has no "model" object`);
  }
  if (!Array.isArray(t.added_tokens)) {
    throw new TypeError(`${source}: tokenizer.json has no "added_tokens" array`);
  }
  // The vocabulary: token → id for the BPE, WordPiece and WordLevel models (ids are
  // non-negative integers), [token, score] pairs for Unigram.
  const vocab = model.vocab;
  if (model.type === "Unigram") {
    if (!Array.isArray(vocab)) {
      throw new TypeError(`${source}: model.vocab of a Unigram tokenizer must be an array`);
    }
  } else if (vocab !== undefined) {
    if (vocab === null || typeof vocab !== "object" || Array.isArray(vocab)) {
      throw new TypeError(
        `${source}: model.vocab must be an object of token → id, got ${
          Array.isArray(vocab) ? "an array" : typeof vocab
        }`,
      );
    }
    for (const [token, id] of Object.entries(vocab as Record<string, unknown>)) {
      if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= 2 ** 31) {
        throw new TypeError(
          `${source}: model.vocab[${JSON.stringify(token)}] is ${
            JSON.stringify(id)
          }; expected an integer id from 0 to 2^31 − 1`,
        );
      }
    }
  }
  for (const key of ["normalizer", "pre_tokenizer", "post_processor", "decoder"]) {
    if (!(key in t)) {
      throw new TypeError(`${source}: tokenizer.json lacks the "${key}" field (null is allowed)`);
    }
  }
}

/**
 * Build a tokenizer from an already parsed `tokenizer.json` (and optionally
 * `tokenizer_config.json`). Needs the tokenizers.js package (see the module doc).
 *
 * @example
 * ```ts ignore
 * import { hfTokenizerFromJson } from "./hf_tokenizer.ts";
 * const json = JSON.parse(await Deno.readTextFile("models/gpt2/tokenizer.json"));
 * const tok = await hfTokenizerFromJson(json, { source: "models/gpt2/tokenizer.json" });
 * tok.decode(tok.encode("hello world")); // "hello world"
 * ```
 */
export async function hfTokenizerFromJson(
  json: unknown,
  options: HfTokenizerFromJsonOptions,
): Promise<HfTokenizer> {
  const { source, config } = options;
  checkTokenizerJson(json, source);
  const mod = await importTokenizers();
  let inner: JsTokenizer;
  try {
    inner = new mod.Tokenizer(json, config ?? {});
  } catch (err) {
    throw new Error(
      `${source}: tokenizers.js rejected this tokenizer.json: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const vocab = inner.get_vocab(true);
  let maxId = -1;
  for (const [token, id] of vocab) {
    if (!Number.isInteger(id) || id < 0 || id >= 2 ** 31) {
      throw new Error(
        `${source}: token ${JSON.stringify(token)} has id ${id}; expected an integer from 0 ` +
          "to 2^31 − 1",
      );
    }
    if (id > maxId) maxId = id;
  }
  if (maxId < 0) throw new Error(`${source}: the tokenizer has an empty vocabulary`);
  const vocabSize = maxId + 1;

  const find = (
    role: string,
    explicit: string | undefined,
    configKey: string,
    candidates: string[],
  ) => {
    // token_to_id returns whatever the file's added_tokens say (an array, a string, …): an id is
    // used only when it is an integer inside the vocabulary.
    const checked = (token: string): number | undefined => {
      const id: unknown = inner.token_to_id(token);
      if (id === undefined || id === null) return undefined;
      if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new Error(
          `${source}: the ${role} token ${JSON.stringify(token)} has id ${
            JSON.stringify(id)
          }; expected an integer in 0..${vocabSize - 1}`,
        );
      }
      return id;
    };
    const wanted = explicit ?? configToken(config, configKey);
    if (wanted !== undefined) {
      const id = checked(wanted);
      if (id === undefined) {
        throw new Error(
          `${source}: the ${role} token ${JSON.stringify(wanted)} ` +
            `(${
              explicit !== undefined
                ? "from the options"
                : `from ${configKey} in tokenizer_config.json`
            }) ` +
            `is not in the vocabulary`,
        );
      }
      return id;
    }
    for (const c of candidates) {
      const id = checked(c);
      if (id !== undefined) return id;
    }
    return undefined;
  };
  const eosId = find("EOS", options.eos, "eos_token", EOS_CANDIDATES);
  if (eosId === undefined) {
    throw new Error(
      `${source}: cannot tell which token is EOS; expected eos_token in tokenizer_config.json, ` +
        `one of ${EOS_CANDIDATES.join(" ")} among the tokens, or the eos option`,
    );
  }
  const bosId = find("BOS", options.bos, "bos_token", BOS_CANDIDATES) ?? eosId;
  const padId = find("PAD", options.pad, "pad_token", PAD_CANDIDATES) ?? eosId;

  return {
    name: `hf:${source}`,
    vocabSize,
    bosId,
    eosId,
    padId,
    encode(text: string): number[] {
      return inner.encode(text, { add_special_tokens: false }).ids;
    },
    decode(ids: readonly number[]): string {
      for (let k = 0; k < ids.length; k++) {
        const id = ids[k];
        if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
          throw new RangeError(
            `hf:${source} decode: id ${id} at position ${k} is outside the vocabulary ` +
              `(expected an integer in 0..${vocabSize - 1})`,
          );
        }
      }
      if (ids.length === 0) return ""; // tokenizers.js refuses an empty id list
      return inner.decode([...ids], {
        skip_special_tokens: true,
        clean_up_tokenization_spaces: false,
      });
    },
    tokenToId: (token: string) => inner.token_to_id(token),
    idToToken: (id: number) => inner.id_to_token(id),
  };
}

async function readJsonFile(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new Error(`could not read ${what} ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Load a Hugging Face `tokenizer.json` from a local file (nothing is
 * downloaded). Reads `tokenizer_config.json` next to it when present.
 *
 * @example
 * ```ts ignore
 * import { loadHfTokenizer } from "./hf_tokenizer.ts";
 * const tok = await loadHfTokenizer("models/llama-3.2-1b/tokenizer.json");
 * console.log(tok.name, tok.vocabSize, tok.bosId, tok.eosId);
 * ```
 */
export async function loadHfTokenizer(
  path: string,
  options: HfTokenizerOptions = {},
): Promise<HfTokenizer> {
  const json = await readJsonFile(path, "tokenizer file");
  let config: Record<string, unknown> | undefined;
  const configPath = options.configPath === undefined
    ? join(dirname(path), "tokenizer_config.json")
    : options.configPath;
  if (configPath !== null) {
    let present = true;
    try {
      await Deno.stat(configPath);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound) || options.configPath !== undefined) {
        throw new Error(
          `could not read tokenizer config ${configPath}: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
      present = false;
    }
    if (present) {
      const c = await readJsonFile(configPath, "tokenizer config");
      if (c === null || typeof c !== "object" || Array.isArray(c)) {
        throw new TypeError(`${configPath}: tokenizer_config.json must be a JSON object`);
      }
      config = c as Record<string, unknown>;
    }
  }
  return await hfTokenizerFromJson(json, {
    source: path,
    config,
    bos: options.bos,
    eos: options.eos,
    pad: options.pad,
  });
}
