/**
 * A plain-TypeScript reference of Hugging Face's `LlamaForCausalLM` forward
 * pass for one unpadded sequence (no tfjs: loops over Float64Arrays),
 * written from the `transformers` modules and tensor names, to check
 * `hf_decoder.ts` numerically:
 *
 *     h = embed_tokens[ids]
 *     for each layer:
 *       x = RMSNorm(h)·w_in
 *       q, k = RoPE(q_proj x), RoPE(k_proj x)   (rotate-half, θ^(−2i/d), positions 0…T−1)
 *       h = h + o_proj(causal softmax(q·kᵀ/√d)·v_proj x)   (query head j uses KV head ⌊j / (H/Hkv)⌋)
 *       h = h + down_proj(SiLU(gate_proj y) ⊙ up_proj y),  y = RMSNorm(h)·w_post
 *     logits = RMSNorm(h)·w_norm · W_lmᵀ   (W_lm = embed_tokens when tied)
 *
 * LoRA updates are added by module path (`model.layers.{i}.self_attn.q_proj`).
 *
 * @module
 */

import type { TensorData } from "../../lib/models/safetensors.ts";
import { denseRows, type ReferenceLora } from "./reference_vit.ts";

function rmsNormRows(x: Float64Array, rows: number, w: TensorData, eps: number): Float64Array {
  const d = w.shape[0];
  const y = new Float64Array(x.length);
  for (let n = 0; n < rows; n++) {
    let ms = 0;
    for (let i = 0; i < d; i++) ms += x[n * d + i] ** 2;
    const inv = 1 / Math.sqrt(ms / d + eps);
    for (let i = 0; i < d; i++) y[n * d + i] = x[n * d + i] * inv * w.data[i];
  }
  return y;
}

/** Rotate every head of rows [T, heads·hd] in place by its position's angles. */
function rope(x: Float64Array, options: { t: number; heads: number; hd: number; theta: number }) {
  const { t, heads, hd, theta } = options;
  const half = hd / 2;
  for (let pos = 0; pos < t; pos++) {
    for (let h = 0; h < heads; h++) {
      const base = pos * heads * hd + h * hd;
      for (let i = 0; i < half; i++) {
        const angle = pos * theta ** (-(2 * i) / hd);
        const [cos, sin] = [Math.cos(angle), Math.sin(angle)];
        const a = x[base + i];
        const b = x[base + i + half];
        x[base + i] = a * cos - b * sin;
        x[base + i + half] = b * cos + a * sin;
      }
    }
  }
}

/** Logits [T, vocab] of HF LLaMA for token ids (positions 0…T−1, no padding). */
export function referenceLlamaLogits(
  tensors: Map<string, TensorData>,
  options: { config: Record<string, unknown>; ids: number[]; lora?: ReferenceLora },
): Float64Array {
  const cfg = options.config;
  const d = cfg.hidden_size as number;
  const heads = cfg.num_attention_heads as number;
  const kv = (cfg.num_key_value_heads as number | undefined) ?? heads;
  const hd = (cfg.head_dim as number | undefined) ?? d / heads;
  const eps = cfg.rms_norm_eps as number;
  const theta = (cfg.rope_theta as number | undefined) ?? 10000;
  const vocab = cfg.vocab_size as number;
  const ids = options.ids;
  const t = ids.length;
  const get = (name: string) => {
    const x = tensors.get(name);
    if (!x) throw new Error(`reference: no tensor ${name}`);
    return x;
  };
  const embed = get("model.embed_tokens.weight");
  let h = new Float64Array(t * d);
  ids.forEach((id, n) => {
    for (let i = 0; i < d; i++) h[n * d + i] = embed.data[id * d + i];
  });
  for (let l = 0; l < (cfg.num_hidden_layers as number); l++) {
    const P = `model.layers.${l}`;
    const lin = (name: string, x: Float64Array) =>
      denseRows(x, t, {
        weight: get(`${P}.${name}.weight`),
        lora: options.lora?.get(`${P}.${name}`),
      });
    const x = rmsNormRows(h, t, get(`${P}.input_layernorm.weight`), eps);
    const q = lin("self_attn.q_proj", x);
    const k = lin("self_attn.k_proj", x);
    const v = lin("self_attn.v_proj", x);
    rope(q, { t, heads, hd, theta });
    rope(k, { t, heads: kv, hd, theta });
    const att = new Float64Array(t * heads * hd);
    const group = heads / kv;
    for (let j = 0; j < heads; j++) {
      const g = Math.floor(j / group);
      for (let i = 0; i < t; i++) {
        const s = new Float64Array(i + 1);
        let max = -Infinity;
        for (let m = 0; m <= i; m++) {
          let dot = 0;
          for (let e = 0; e < hd; e++) {
            dot += q[i * heads * hd + j * hd + e] * k[m * kv * hd + g * hd + e];
          }
          s[m] = dot / Math.sqrt(hd);
          max = Math.max(max, s[m]);
        }
        let z = 0;
        for (let m = 0; m <= i; m++) z += s[m] = Math.exp(s[m] - max);
        for (let e = 0; e < hd; e++) {
          let acc = 0;
          for (let m = 0; m <= i; m++) acc += (s[m] / z) * v[m * kv * hd + g * hd + e];
          att[i * heads * hd + j * hd + e] = acc;
        }
      }
    }
    const o = lin("self_attn.o_proj", att);
    h = h.map((val, i) => val + o[i]);
    const y = rmsNormRows(h, t, get(`${P}.post_attention_layernorm.weight`), eps);
    const gate = lin("mlp.gate_proj", y);
    const up = lin("mlp.up_proj", y);
    const act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]);
    const down = lin("mlp.down_proj", act);
    h = h.map((val, i) => val + down[i]);
  }
  const final = rmsNormRows(h, t, get("model.norm.weight"), eps);
  const head = cfg.tie_word_embeddings ? embed : get("lm_head.weight");
  const logits = denseRows(final, t, { weight: head });
  if (logits.length !== t * vocab) throw new Error("reference: bad logits size");
  return logits;
}
