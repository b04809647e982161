#!/usr/bin/env python3
"""PyTorch peer of `deno task bench`: one model, one configuration, timed training steps.

The TypeScript bench (experiments/bench/mod.ts) runs this script as a child process, interleaved
with its own TensorFlow.js rounds, and passes the harness's model configuration as JSON, so both
sides build the same architecture from the same numbers:

- ViT (lib/models/vit.ts + vit_classifier.ts): patch embedding (a p x p, stride p convolution,
  the same [dim, C, p, p] weight as the harness's reshape + matMul), cls token, position
  embedding, pre-LN blocks h += proj(attn(q, k, v)(LN1 h)); h += fc2(gelu(fc1(LN2 h))) with the
  tanh (or erf) GELU, final LayerNorm of the cls token, a linear head over `numClasses`.
- LM (lib/models/decoder.ts): LLaMA-style decoder: token embedding, RMSNorm, RoPE
  (rotate-half), causal (grouped-query) attention, SwiGLU / GeGLU MLP, untied or tied LM head.
- LoRA (lib/models/lora.ts) on the q and v projections of the configured blocks/layers:
  y = W x + b + s * B A drop(x), s = alpha / rank, A ~ U(+-1/sqrt(d_in)), B = 0.

Modes: `lora` trains the LoRA matrices (and the ViT head), as the continual-learning trainers
do; `full` trains every base weight (and the ViT head), as the harness's pre-training does; the
LoRA branches stay in the forward pass in both. Adam, global-norm gradient clipping, softmax
cross-entropy (ViT) or next-token cross-entropy (LM) on synthetic inputs.

Usage:
    python3 experiments/torch_peer.py --probe
    python3 experiments/torch_peer.py --spec '{"model": "vit", ...}' [--threads 1]

Prints one JSON object on stdout: parameter counts (base, lora, head, total, trainable), the
per-step times in ms of the timed steps (after warm-up), their median, samples/s, peak RSS,
torch version and threads, and the BLAS library in use; with `"profileSteps": n` in the spec,
also each op's self CPU time over n more steps under torch.profiler (`profile`). `--threads` sets
torch's intra-op threads (default 1: Debian's torch calls the system BLAS, and OpenBLAS's own
pthreads then use the cores; more torch threads on top oversubscribe them).
"""

import argparse
import ctypes
import json
import math
import os
import platform
import re
import resource
import statistics
import sys
import time


def rss_mib():
    """Current resident set size in MiB (from /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib():
    """Peak resident set size of this process in MiB: VmHWM of /proc/self/status.

    Not getrusage's ru_maxrss: Linux carries that over from the parent across fork and exec, so
    a peer started by the (larger) Deno process would report Deno's peak.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def blas_info(torch):
    """The BLAS torch was built against and the libraries actually mapped into this process."""
    show = torch.__config__.show()
    build = re.search(r"BLAS_INFO=([^,\s]+)", show)
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and re.search(r"blas|lapack|mkl", os.path.basename(parts[-1])):
                libs.add(parts[-1])
    info = {"buildBlas": build.group(1) if build else None, "libraries": sorted(libs)}
    for path in sorted(libs):
        if "openblas" not in path:
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(lib, "openblas_get_num_threads"):
            lib.openblas_get_num_threads.restype = ctypes.c_int
            info["openblasThreads"] = lib.openblas_get_num_threads()
        if hasattr(lib, "openblas_get_config"):
            lib.openblas_get_config.restype = ctypes.c_char_p
            info["openblasConfig"] = lib.openblas_get_config().decode().strip()
        if hasattr(lib, "openblas_get_corename"):
            lib.openblas_get_corename.restype = ctypes.c_char_p
            info["openblasCore"] = lib.openblas_get_corename().decode().strip()
        break
    info["env"] = {
        k: os.environ[k]
        for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
        if k in os.environ
    }
    return info


def runtime_info(torch):
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "executable": sys.executable,
        "threads": torch.get_num_threads(),
        "interopThreads": torch.get_num_interop_threads(),
        "blas": blas_info(torch),
    }


def build_modules(torch):
    """Module classes, defined once torch is imported."""
    nn = torch.nn
    F = torch.nn.functional

    class LoraLinear(nn.Module):
        """nn.Linear plus an optional LoRA branch s * B A drop(x)."""

        def __init__(self, d_in, d_out, bias, lora):
            super().__init__()
            self.base = nn.Linear(d_in, d_out, bias=bias)
            nn.init.trunc_normal_(self.base.weight, std=0.02, a=-0.04, b=0.04)
            if bias:
                nn.init.zeros_(self.base.bias)
            self.has_lora = lora is not None
            if self.has_lora:
                r = lora["rank"]
                bound = 1 / math.sqrt(d_in)
                self.lora_a = nn.Parameter(torch.empty(r, d_in).uniform_(-bound, bound))
                self.lora_b = nn.Parameter(torch.zeros(d_out, r))
                self.scale = lora["alpha"] / r
                self.drop = nn.Dropout(lora["dropout"])

        def forward(self, x):
            y = self.base(x)
            if self.has_lora:
                y = y + (self.drop(x) @ self.lora_a.t()) @ (self.lora_b.t() * self.scale)
            return y

    def gelu_of(kind):
        if kind == "erf":
            return lambda x: F.gelu(x)
        return lambda x: F.gelu(x, approximate="tanh")

    class VitBlock(nn.Module):
        def __init__(self, c, lora):
            super().__init__()
            d, eps = c["dim"], c["layerNormEps"]
            self.heads = c["heads"]
            self.norm1 = nn.LayerNorm(d, eps=eps)
            self.q = LoraLinear(d, d, True, lora)
            self.k = LoraLinear(d, d, True, None)
            self.v = LoraLinear(d, d, True, lora)
            self.proj = LoraLinear(d, d, True, None)
            self.norm2 = nn.LayerNorm(d, eps=eps)
            hidden = int(c["mlpRatio"] * d)
            self.fc1 = LoraLinear(d, hidden, True, None)
            self.fc2 = LoraLinear(hidden, d, True, None)
            self.gelu = gelu_of(c.get("gelu", "tanh"))

        def forward(self, h):
            b, t, d = h.shape
            hh, dh = self.heads, d // self.heads
            x = self.norm1(h)
            q = self.q(x).view(b, t, hh, dh).transpose(1, 2) * (dh**-0.5)
            k = self.k(x).view(b, t, hh, dh).transpose(1, 2)
            v = self.v(x).view(b, t, hh, dh).transpose(1, 2)
            a = torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
            h = h + self.proj(a.transpose(1, 2).reshape(b, t, d))
            return h + self.fc2(self.gelu(self.fc1(self.norm2(h))))

    class VitClassifier(nn.Module):
        def __init__(self, c, num_classes):
            super().__init__()
            d, p = c["dim"], c["patchSize"]
            tokens = (c["imageSize"] // p) ** 2 + 1
            lora_blocks = set(c.get("loraBlocks") or range(c["depth"]))
            self.patch_embed = nn.Conv2d(c["channels"], d, kernel_size=p, stride=p)
            nn.init.trunc_normal_(self.patch_embed.weight, std=0.02, a=-0.04, b=0.04)
            nn.init.zeros_(self.patch_embed.bias)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
            self.pos_embed = nn.Parameter(torch.zeros(1, tokens, d))
            nn.init.trunc_normal_(self.cls_token, std=0.02, a=-0.04, b=0.04)
            nn.init.trunc_normal_(self.pos_embed, std=0.02, a=-0.04, b=0.04)
            self.blocks = nn.ModuleList(
                VitBlock(c, c["lora"] if i in lora_blocks else None) for i in range(c["depth"])
            )
            self.norm = nn.LayerNorm(d, eps=c["layerNormEps"])
            self.head = nn.Linear(d, num_classes)
            nn.init.trunc_normal_(self.head.weight, std=0.02, a=-0.04, b=0.04)
            nn.init.zeros_(self.head.bias)

        def forward(self, x):
            tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # [B, T-1, d]
            cls = self.cls_token.expand(x.shape[0], -1, -1)
            h = torch.cat([cls, tokens], dim=1) + self.pos_embed
            for blk in self.blocks:
                h = blk(h)
            return self.head(self.norm(h[:, 0]))

    class RmsNorm(nn.Module):
        def __init__(self, d, eps):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))
            self.eps = eps

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

    def rotate_half(x):
        half = x.shape[-1] // 2
        return torch.cat([-x[..., half:], x[..., :half]], dim=-1)

    class DecoderLayer(nn.Module):
        def __init__(self, c, lora):
            super().__init__()
            d, hd = c["dim"], c["headDim"]
            self.heads, self.kv_heads, self.head_dim = c["heads"], c["kvHeads"], hd
            self.input_layernorm = RmsNorm(d, c["normEps"])
            self.q_proj = LoraLinear(d, c["heads"] * hd, False, lora)
            self.k_proj = LoraLinear(d, c["kvHeads"] * hd, False, None)
            self.v_proj = LoraLinear(d, c["kvHeads"] * hd, False, lora)
            self.o_proj = LoraLinear(c["heads"] * hd, d, False, None)
            self.post_attention_layernorm = RmsNorm(d, c["normEps"])
            self.gate_proj = LoraLinear(d, c["mlpHidden"], False, None)
            self.up_proj = LoraLinear(d, c["mlpHidden"], False, None)
            self.down_proj = LoraLinear(c["mlpHidden"], d, False, None)
            if c.get("mlpActivation", "silu") == "silu":
                self.act = F.silu
            else:
                self.act = lambda x: F.gelu(x, approximate="tanh")

        def forward(self, h, cos, sin, bias):
            b, t, _ = h.shape
            hh, hkv, hd = self.heads, self.kv_heads, self.head_dim
            x = self.input_layernorm(h)
            q = self.q_proj(x).view(b, t, hh, hd)
            k = self.k_proj(x).view(b, t, hkv, hd)
            v = self.v_proj(x).view(b, t, hkv, hd)
            q = (q * cos + rotate_half(q) * sin).transpose(1, 2)
            k = (k * cos + rotate_half(k) * sin).transpose(1, 2)
            v = v.transpose(1, 2)
            if hh != hkv:
                k = k.repeat_interleave(hh // hkv, dim=1)
                v = v.repeat_interleave(hh // hkv, dim=1)
            scores = (q * (hd**-0.5)) @ k.transpose(-2, -1) + bias
            a = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, t, hh * hd)
            h = h + self.o_proj(a)
            x = self.post_attention_layernorm(h)
            return h + self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))

    class Decoder(nn.Module):
        def __init__(self, c):
            super().__init__()
            layers = c["layers"]
            lora_layers = set(c.get("loraLayers") or range(layers))
            self.c = c
            self.embed_tokens = nn.Embedding(c["vocabSize"], c["dim"])
            nn.init.trunc_normal_(self.embed_tokens.weight, std=0.02, a=-0.04, b=0.04)
            self.layers = nn.ModuleList(
                DecoderLayer(c, c["lora"] if i in lora_layers else None) for i in range(layers)
            )
            self.norm = RmsNorm(c["dim"], c["normEps"])
            self.lm_head = None
            if not c["tieEmbeddings"]:
                self.lm_head = nn.Linear(c["dim"], c["vocabSize"], bias=False)
                nn.init.trunc_normal_(self.lm_head.weight, std=0.02, a=-0.04, b=0.04)

        def forward(self, ids):
            c = self.c
            b, t = ids.shape
            hd = c["headDim"]
            inv_freq = c["ropeTheta"] ** (-torch.arange(0, hd, 2, dtype=torch.float32) / hd)
            angles = torch.arange(t, dtype=torch.float32)[:, None] * inv_freq[None, :]
            both = torch.cat([angles, angles], dim=-1)[None, :, None, :]  # [1, T, 1, hd]
            cos, sin = both.cos(), both.sin()
            bias = torch.triu(torch.full((t, t), -1e9), diagonal=1)
            h = self.embed_tokens(ids)
            if c.get("embeddingScale", 1) != 1:
                h = h * c["embeddingScale"]
            for layer in self.layers:
                h = layer(h, cos, sin, bias)
            h = self.norm(h)
            w = self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
            return h @ w.t()

    return VitClassifier, Decoder


def param_counts(model, head_prefix):
    """Counts by role: LoRA (names with `lora_`), the classifier head, the rest (base)."""
    out = {"base": 0, "lora": 0, "head": 0, "total": 0, "trainable": 0}
    for name, p in model.named_parameters():
        n = p.numel()
        if ".lora_" in name:
            out["lora"] += n
        elif head_prefix and name.startswith(head_prefix):
            out["head"] += n
        else:
            out["base"] += n
        out["total"] += n
        if p.requires_grad:
            out["trainable"] += n
    return out


def set_trainable(model, mode, head_prefix):
    """lora: LoRA matrices (+ head) train; full: base weights (+ head) train, LoRA frozen."""
    for name, p in model.named_parameters():
        is_lora = ".lora_" in name
        is_head = bool(head_prefix) and name.startswith(head_prefix)
        p.requires_grad_(is_head or (is_lora if mode == "lora" else not is_lora))


def saved_for_backward_mib(torch, model, loss_fn):
    """MiB of the distinct storages autograd saves for the backward pass of one forward pass.

    Counted with saved_tensors_hooks at the end of the forward pass, each storage once, the
    model's parameters left out: the activation memory the backward pass needs (autograd frees
    each node's saved tensors as soon as that node's backward has run). The pass is then
    backpropagated and its gradients dropped, so the model is left as it was.
    """
    weights = {p.data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        st = t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()
        ptr = st.data_ptr()
        if ptr not in weights:
            seen[ptr] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn()
    loss.backward()
    for p in model.parameters():
        p.grad = None
    return sum(seen.values()) / 2**20


def profile_steps(torch, step, steps):
    """`steps` more training steps under torch.profiler (CPU): each op's self CPU time and call
    count, per step. Self time is the time inside an op less the ops it calls, so the rows add
    up to the profiled time; autograd's engine and the optimiser appear as rows of their own
    (`autograd::engine::...`, `Optimizer.step#Adam.step`). None when steps is 0."""
    if steps <= 0:
        return None
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    ops = [
        {
            "name": e.key,
            "calls": round(e.count / steps, 3),
            "ms": round(e.self_cpu_time_total / 1000 / steps, 4),
        }
        for e in prof.key_averages()
        if e.self_cpu_time_total > 0
    ]
    ops.sort(key=lambda o: -o["ms"])
    return {"steps": steps, "ops": ops}


def run(spec, torch):
    torch.manual_seed(spec.get("seed", 0))
    VitClassifier, Decoder = build_modules(torch)
    F = torch.nn.functional
    mode = spec["mode"]
    if mode not in ("lora", "full"):
        raise ValueError(f"mode must be lora or full, got {mode!r}")
    batch = spec["batch"]
    if spec["model"] == "vit":
        c = spec["config"]
        model = VitClassifier(c, spec["numClasses"])
        head_prefix = "head."
        x = torch.randn(batch, c["channels"], c["imageSize"], c["imageSize"])
        y = torch.randint(0, spec["numClasses"], (batch,))

        def loss_fn():
            return F.cross_entropy(model(x), y)

        samples_per_step = batch
    elif spec["model"] == "lm":
        c = spec["config"]
        model = Decoder(c)
        head_prefix = None
        t = spec["seqLength"]
        ids = torch.randint(0, c["vocabSize"], (batch, t))

        def loss_fn():
            logits = model(ids)
            v = logits.shape[-1]
            return F.cross_entropy(logits[:, :-1].reshape(-1, v), ids[:, 1:].reshape(-1))

        samples_per_step = batch
    else:
        raise ValueError(f"model must be vit or lm, got {spec['model']!r}")
    set_trainable(model, mode, head_prefix)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(
        params, lr=spec["lr"], betas=(spec["beta1"], spec["beta2"]), eps=spec.get("eps", 1e-8)
    )
    clip = spec.get("clipNorm", 0)
    rss_built = rss_mib()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        return loss.item()

    losses = [step() for _ in range(spec.get("warmup", 2))]
    times = []
    for _ in range(spec["steps"]):
        t0 = time.perf_counter()
        losses.append(step())
        times.append((time.perf_counter() - t0) * 1000)
    saved_mib = saved_for_backward_mib(torch, model, loss_fn)
    med = statistics.median(times)
    peak_rss = peak_rss_mib()  # before profiling, which adds its own memory
    profile = profile_steps(torch, step, int(spec.get("profileSteps", 0)))
    return {
        "params": param_counts(model, head_prefix),
        "msPerStep": [round(v, 3) for v in times],
        "medianMs": round(med, 3),
        "samplesPerSecond": round(samples_per_step * 1000 / med, 2),
        "rssAfterBuildMiB": round(rss_built, 1),
        "peakRssMiB": round(peak_rss, 1),
        "savedForBackwardMiB": round(saved_mib, 1),
        "loss": {"first": losses[0], "last": losses[-1]},
        **({"profile": profile} if profile is not None else {}),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--probe", action="store_true", help="print torch/BLAS info and exit")
    ap.add_argument("--spec", help="JSON run spec (see experiments/bench/mod.ts)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = ap.parse_args()
    try:
        import torch
    except ImportError as err:
        print(json.dumps({"ok": False, "error": f"cannot import torch: {err}"}))
        return 3
    torch.set_num_threads(args.threads)
    info = runtime_info(torch)
    if args.probe:
        print(json.dumps({"ok": True, **info, "rssAfterImportMiB": round(rss_mib(), 1)}))
        return 0
    if not args.spec:
        ap.error("--spec or --probe is required")
    spec = json.loads(args.spec)
    try:
        result = run(spec, torch)
    except Exception as err:  # reported to the caller as JSON, with the traceback on stderr
        import traceback

        traceback.print_exc()
        print(json.dumps({"ok": False, "error": f"{type(err).__name__}: {err}", **info}))
        return 1
    print(json.dumps({"ok": True, **info, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
