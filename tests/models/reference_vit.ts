/**
 * A plain-TypeScript reference of Hugging Face's `ViTModel` forward pass
 * (no tfjs: loops over Float64Arrays), written from the `transformers`
 * modules and tensor names, to check `hf_vit.ts` numerically:
 *
 *     embeddings = [cls, conv_{p×p, stride p}(x)] + position_embeddings
 *     for each layer:
 *       h = h + dense(attention(query(LN_before h), key(·), value(·)))
 *       h = h + output.dense(GELU_erf(intermediate.dense(LN_after h)))
 *     features = layernorm(h)[:, 0]
 *
 * and of half-pixel bilinear resizing (PIL/torchvision upsampling). LoRA
 * updates `scale · B·A` may be added to any linear map by module path.
 *
 * @module
 */

import type { TensorData } from "../../lib/models/safetensors.ts";

/**
 * erf in float64: Maclaurin series for |x| < 2.5, the continued fraction of
 * erfc beyond (both accurate to ~1e-14 there).
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  let r: number;
  if (ax < 2.5) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc(x) = exp(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …)))))
    let f = ax;
    for (let k = 80; k >= 1; k--) f = ax + k / 2 / f;
    r = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  }
  return x < 0 ? -r : r;
}

/** Exact GELU. */
export function geluExact(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** LoRA updates by module path (e.g. `vit.encoder.layer.0.attention.attention.query`). */
export type ReferenceLora = Map<string, { a: TensorData; b: TensorData; scale: number }>;

/** y[n, o] = Σ_i x[n, i]·W[o, i] + b[o] (+ scale·Σ_r B[o, r]·Σ_i A[r, i]·x[n, i]). */
export function denseRows(
  x: Float64Array,
  rows: number,
  options: {
    weight: TensorData;
    bias?: TensorData;
    lora?: { a: TensorData; b: TensorData; scale: number };
  },
): Float64Array {
  const [out, inp] = options.weight.shape;
  const w = options.weight.data;
  const y = new Float64Array(rows * out);
  for (let n = 0; n < rows; n++) {
    for (let o = 0; o < out; o++) {
      let s = options.bias ? options.bias.data[o] : 0;
      for (let i = 0; i < inp; i++) s += x[n * inp + i] * w[o * inp + i];
      y[n * out + o] = s;
    }
  }
  const l = options.lora;
  if (l) {
    const r = l.a.shape[0];
    for (let n = 0; n < rows; n++) {
      const down = new Float64Array(r);
      for (let k = 0; k < r; k++) {
        for (let i = 0; i < inp; i++) down[k] += l.a.data[k * inp + i] * x[n * inp + i];
      }
      for (let o = 0; o < out; o++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += l.b.data[o * r + k] * down[k];
        y[n * out + o] += l.scale * s;
      }
    }
  }
  return y;
}

function layerNormRows(
  x: Float64Array,
  rows: number,
  options: { weight: TensorData; bias: TensorData; eps: number },
): Float64Array {
  const d = options.weight.shape[0];
  const y = new Float64Array(x.length);
  for (let n = 0; n < rows; n++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[n * d + i];
    mean /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[n * d + i] - mean) ** 2;
    v /= d;
    const inv = 1 / Math.sqrt(v + options.eps);
    for (let i = 0; i < d; i++) {
      y[n * d + i] = (x[n * d + i] - mean) * inv * options.weight.data[i] + options.bias.data[i];
    }
  }
  return y;
}

/** Softmax attention over `t` tokens with `heads` heads on rows [t, d] (one image). */
function attention(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  t: number,
  d: number,
  heads: number,
): Float64Array {
  const dh = d / heads;
  const out = new Float64Array(t * d);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < t; i++) {
      const s = new Float64Array(t);
      let max = -Infinity;
      for (let j = 0; j < t; j++) {
        let dot = 0;
        for (let e = 0; e < dh; e++) dot += q[i * d + h * dh + e] * k[j * d + h * dh + e];
        s[j] = dot / Math.sqrt(dh);
        max = Math.max(max, s[j]);
      }
      let z = 0;
      for (let j = 0; j < t; j++) z += s[j] = Math.exp(s[j] - max);
      for (let e = 0; e < dh; e++) {
        let acc = 0;
        for (let j = 0; j < t; j++) acc += (s[j] / z) * v[j * d + h * dh + e];
        out[i * d + h * dh + e] = acc;
      }
    }
  }
  return out;
}

/**
 * The cls features [B, hidden] of HF ViT for NHWC images [B, S, S, C]
 * (already normalised and at `image_size`). `tensors` use HF names with
 * `prefix` ("vit." or ""); `config` is the config.json object.
 */
export function referenceVitFeatures(
  tensors: Map<string, TensorData>,
  options: {
    config: Record<string, unknown>;
    images: ArrayLike<number>;
    batch: number;
    prefix: string;
    lora?: ReferenceLora;
  },
): Float64Array {
  const cfg = options.config;
  const size = cfg.image_size as number;
  const p = cfg.patch_size as number;
  const c = cfg.num_channels as number;
  const d = cfg.hidden_size as number;
  const heads = cfg.num_attention_heads as number;
  const eps = (cfg.layer_norm_eps as number | undefined) ?? 1e-12;
  const layers = cfg.num_hidden_layers as number;
  const pre = options.prefix;
  const get = (name: string) => {
    const t = tensors.get(pre + name);
    if (!t) throw new Error(`reference: no tensor ${pre + name}`);
    return t;
  };
  const opt = (name: string) => tensors.get(pre + name);
  const grid = size / p;
  const t = grid * grid + 1;
  const out = new Float64Array(options.batch * d);
  const x = options.images;
  for (let b = 0; b < options.batch; b++) {
    // Embeddings.
    let h = new Float64Array(t * d);
    const cls = get("embeddings.cls_token").data;
    const pos = get("embeddings.position_embeddings").data;
    const pw = get("embeddings.patch_embeddings.projection.weight").data;
    const pb = get("embeddings.patch_embeddings.projection.bias").data;
    for (let e = 0; e < d; e++) h[e] = cls[e] + pos[e];
    for (let gy = 0; gy < grid; gy++) {
      for (let gx = 0; gx < grid; gx++) {
        const tok = 1 + gy * grid + gx;
        for (let e = 0; e < d; e++) {
          let s = pb[e];
          for (let ch = 0; ch < c; ch++) {
            for (let i = 0; i < p; i++) {
              for (let j = 0; j < p; j++) {
                const pixel = x[((b * size + gy * p + i) * size + gx * p + j) * c + ch];
                s += pixel * pw[((e * c + ch) * p + i) * p + j];
              }
            }
          }
          h[tok * d + e] = s + pos[tok * d + e];
        }
      }
    }
    for (let l = 0; l < layers; l++) {
      const L = `encoder.layer.${l}`;
      const lin = (name: string, input: Float64Array) =>
        denseRows(input, t, {
          weight: get(`${L}.${name}.weight`),
          bias: opt(`${L}.${name}.bias`),
          lora: options.lora?.get(`vit.${L}.${name}`),
        });
      const n1 = layerNormRows(h, t, {
        weight: get(`${L}.layernorm_before.weight`),
        bias: get(`${L}.layernorm_before.bias`),
        eps,
      });
      const a = attention(
        lin("attention.attention.query", n1),
        lin("attention.attention.key", n1),
        lin("attention.attention.value", n1),
        t,
        d,
        heads,
      );
      const proj = lin("attention.output.dense", a);
      h = h.map((v, i) => v + proj[i]);
      const n2 = layerNormRows(h, t, {
        weight: get(`${L}.layernorm_after.weight`),
        bias: get(`${L}.layernorm_after.bias`),
        eps,
      });
      const mid = lin("intermediate.dense", n2).map(geluExact);
      const o = lin("output.dense", mid);
      h = h.map((v, i) => v + o[i]);
    }
    const final = layerNormRows(h.subarray(0, d), 1, {
      weight: get("layernorm.weight"),
      bias: get("layernorm.bias"),
      eps,
    });
    out.set(final, b * d);
  }
  return out;
}

/**
 * Bilinear resize of NHWC images [B, from, from, C] to [B, to, to, C] with
 * half-pixel centres: source coordinate (i + 0.5)·from/to − 0.5, clamped.
 */
export function referenceResizeBilinear(
  x: ArrayLike<number>,
  options: { batch: number; from: number; to: number; channels: number },
): Float64Array {
  const { batch, from, to, channels: c } = options;
  const out = new Float64Array(batch * to * to * c);
  const coord = (i: number) => {
    const s = Math.max(0, (i + 0.5) * (from / to) - 0.5);
    const lo = Math.min(Math.floor(s), from - 1);
    const hi = Math.min(lo + 1, from - 1);
    return { lo, hi, f: s - lo };
  };
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < to; i++) {
      const y = coord(i);
      for (let j = 0; j < to; j++) {
        const xj = coord(j);
        for (let ch = 0; ch < c; ch++) {
          const at = (r: number, q: number) => x[((b * from + r) * from + q) * c + ch];
          const top = at(y.lo, xj.lo) * (1 - xj.f) + at(y.lo, xj.hi) * xj.f;
          const bottom = at(y.hi, xj.lo) * (1 - xj.f) + at(y.hi, xj.hi) * xj.f;
          out[((b * to + i) * to + j) * c + ch] = top * (1 - y.f) + bottom * y.f;
        }
      }
    }
  }
  return out;
}
