#!/usr/bin/python3
"""PyTorch eager yardstick for the engine benchmark: the same Llama / Qwen2 decoder in plain torch.

Usage (Debian's python3-torch with OpenBLAS: run bench/ensure_torch.sh first):
  /usr/bin/python3 bench/torch_ref.py --model DIR [--ids-json FILE]
      [--batch 16 --prompt-len 16 --new-tokens 256]
      [--train-batch 8 --train-seq 64 --train-steps 5]

DIR holds config.json and model.safetensors, or shards with model.safetensors.index.json
(Hugging Face names; F32, F16 or BF16). The safetensors files are parsed here (Debian ships no
safetensors package) and no transformers library is needed.
Prints one JSON object on stdout:
  logits_check  {"logits": [...]}: logits of row 0 of the ids in FILE ([[ids...], ...]), all positions, flattened
  decode_tok_s  greedy decoding with a KV cache: batch * (new_tokens - 1) / decode_s (the first new
                token comes from the prefill, which is timed apart)
  prefill_tok_s batch * prompt_len / prefill_s, the prompt's forward pass
  train_tok_s   AdamW steps (gradient clipping 1.0) of next-token cross-entropy on random ids
  prefill_s, decode_s, train_s  the raw seconds
  torch, threads, blas, matmul_gflops (512x512 float32, to show which BLAS runs)
"""
import argparse
import json
import math
import os
import re
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    """safetensors: u64 LE header length, JSON header {name: {dtype, shape, data_offsets}}, then data."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    start = 8 + n
    tensors = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        buf = raw[start + begin : start + end]
        if e["dtype"] == "F32":
            a = np.frombuffer(buf, dtype="<f4")
        elif e["dtype"] == "F16":
            a = np.frombuffer(buf, dtype="<f2").astype(np.float32)
        elif e["dtype"] == "BF16":
            a = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            sys.exit(f"{path}: tensor {name} has dtype {e['dtype']}; expected F32, F16 or BF16")
        tensors[name] = torch.from_numpy(a.copy()).reshape(e["shape"])
    return tensors


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    heads = cfg["num_attention_heads"]
    cfg.setdefault("num_key_value_heads", heads)
    if cfg.get("head_dim") is None:
        cfg["head_dim"] = cfg["hidden_size"] // heads
    cfg.setdefault("rope_theta", 10000.0)
    cfg.setdefault("rms_norm_eps", 1e-6)
    cfg.setdefault("tie_word_embeddings", False)
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(os.path.join(model_dir, "model.safetensors")) or not os.path.exists(index):
        w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    else:
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        w = {k: v for shard in shards for k, v in read_safetensors(os.path.join(model_dir, shard)).items()}
    if cfg["tie_word_embeddings"] or "lm_head.weight" not in w:
        w["lm_head.weight"] = w["model.embed_tokens.weight"]
    return cfg, w


def rms_norm(x, weight, eps):
    # HF LlamaRMSNorm: x / sqrt(mean(x^2) + eps) * weight
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate_half(x):
    # HF convention: the two halves of the head dimension, (x1, x2) -> (-x2, x1)
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_tables(cfg, max_len):
    d = cfg["head_dim"]
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    freqs = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


class Decoder(torch.nn.Module):
    """Llama / Qwen2 decoder: RMSNorm, RoPE, grouped-query attention (optional q/k/v bias), SwiGLU."""

    def __init__(self, cfg, weights):
        super().__init__()
        self.cfg = cfg
        # Tied embeddings share one Parameter, as in transformers.
        params = {}
        for t in weights.values():
            if id(t) not in params:
                params[id(t)] = torch.nn.Parameter(t.clone())
        self.p = torch.nn.ParameterDict({name.replace(".", "__"): params[id(t)] for name, t in weights.items()})
        self.cos, self.sin = rope_tables(cfg, cfg.get("max_position_embeddings", 2048) + 1024)

    def w(self, name):
        return self.p[name.replace(".", "__")]

    def linear(self, x, name, bias=False):
        key = (name + ".bias").replace(".", "__")
        b = self.p[key] if bias and key in self.p else None
        return F.linear(x, self.w(name + ".weight"), b)

    def forward(self, ids, start=0, cache=None):
        """ids [B, T] at positions start..start+T-1; cache: per layer (k, v) buffers [B, kv, max, d] filled in place."""
        cfg = self.cfg
        B, T = ids.shape
        nh, nkv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        cos = self.cos[start : start + T].view(1, 1, T, d)
        sin = self.sin[start : start + T].view(1, 1, T, d)
        x = F.embedding(ids, self.w("model.embed_tokens.weight"))
        for i in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{i}"
            h = rms_norm(x, self.w(f"{p}.input_layernorm.weight"), cfg["rms_norm_eps"])
            q = self.linear(h, f"{p}.self_attn.q_proj", True).view(B, T, nh, d).transpose(1, 2)
            k = self.linear(h, f"{p}.self_attn.k_proj", True).view(B, T, nkv, d).transpose(1, 2)
            v = self.linear(h, f"{p}.self_attn.v_proj", True).view(B, T, nkv, d).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if cache is not None:
                kc, vc = cache[i]
                kc[:, :, start : start + T] = k
                vc[:, :, start : start + T] = v
                k, v = kc[:, :, : start + T], vc[:, :, : start + T]
            # Grouped-query attention: query head j reads kv head j // (nh / nkv) (HF repeat_kv).
            rep = nh // nkv
            if rep > 1:
                k = k.repeat_interleave(rep, dim=1)
                v = v.repeat_interleave(rep, dim=1)
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(d)
            S = k.shape[2]
            if T > 1:
                causal = torch.ones(T, S, dtype=torch.bool).tril(S - T)
                scores = scores.masked_fill(~causal, float("-inf"))
            attn = torch.softmax(scores, dim=-1) @ v
            x = x + self.linear(attn.transpose(1, 2).reshape(B, T, nh * d), f"{p}.self_attn.o_proj")
            h = rms_norm(x, self.w(f"{p}.post_attention_layernorm.weight"), cfg["rms_norm_eps"])
            x = x + self.linear(F.silu(self.linear(h, f"{p}.mlp.gate_proj")) * self.linear(h, f"{p}.mlp.up_proj"), f"{p}.mlp.down_proj")
        x = rms_norm(x, self.w("model.norm.weight"), cfg["rms_norm_eps"])
        return F.linear(x, self.w("lm_head.weight"))

    def new_cache(self, batch, max_len):
        c = self.cfg
        shape = (batch, c["num_key_value_heads"], max_len, c["head_dim"])
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in range(c["num_hidden_layers"])]


def greedy_decode(model, prompt, new_tokens):
    """Prefill the prompt, then one token per step from the KV cache. Returns (prefill_s, decode_s)."""
    B, P = prompt.shape
    cache = model.new_cache(B, P + new_tokens)
    t0 = time.perf_counter()
    logits = model(prompt, 0, cache)
    t1 = time.perf_counter()
    token = logits[:, -1].argmax(-1, keepdim=True)
    for step in range(new_tokens - 1):
        token = model(token, P + step, cache)[:, -1].argmax(-1, keepdim=True)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def train_steps(model, vocab, batch, seq, steps, gen):
    """AdamW on next-token cross-entropy over random ids; returns seconds for `steps` steps after one warm-up step."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)

    def step():
        ids = torch.randint(0, vocab, (batch, seq + 1), generator=gen)
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - t0


def blas_library():
    """The BLAS shared library actually mapped into this process (BLAS_INFO in torch's config only says 'generic')."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "blas" in line.split()[-1].lower()})
        return ", ".join(libs) or "none mapped"
    except OSError:
        return "unknown"


def matmul_gflops(n=512, reps=20):
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids-json")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--train-batch", type=int, default=8)
    ap.add_argument("--train-seq", type=int, default=64)
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    args = ap.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    cfg, weights = load_model(args.model)
    model = Decoder(cfg, weights)
    vocab = cfg["vocab_size"]
    gflops = matmul_gflops()
    blas_info = re.search(r"BLAS_INFO=\w+", torch.__config__.show())
    blas = f"{blas_library()} ({blas_info.group(0) if blas_info else 'BLAS_INFO not shown'})"
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas, "matmul_gflops": round(gflops, 1)}

    if args.ids_json:
        with open(args.ids_json) as f:
            rows = json.load(f)
        with torch.inference_mode():
            logits = model(torch.tensor(rows, dtype=torch.long))
        out["logits_check"] = {"logits": logits[0].reshape(-1).tolist()}

    if args.new_tokens > 0 and args.batch > 0:
        with torch.inference_mode():
            warm = torch.randint(0, vocab, (args.batch, args.prompt_len), generator=gen)
            greedy_decode(model, warm, min(4, args.new_tokens))
            prompt = torch.randint(0, vocab, (args.batch, args.prompt_len), generator=gen)
            prefill_s, decode_s = greedy_decode(model, prompt, args.new_tokens)
        out["prefill_s"], out["decode_s"] = prefill_s, decode_s
        out["prefill_tok_s"] = args.batch * args.prompt_len / prefill_s
        # The first new token comes from the prefill; the loop makes the other new_tokens - 1.
        out["decode_tok_s"] = args.batch * max(args.new_tokens - 1, 1) / decode_s

    if args.train_steps > 0:
        seconds = train_steps(model, vocab, args.train_batch, args.train_seq, args.train_steps, gen)
        out["train_s"] = seconds
        out["train_tok_s"] = args.train_batch * args.train_seq * args.train_steps / seconds

    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
