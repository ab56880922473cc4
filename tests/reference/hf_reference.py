#!/usr/bin/python3
"""
A small PyTorch forward pass of Hugging Face's Llama / Qwen2 / Qwen3 decoders, written from the
equations of transformers' modeling_llama.py, modeling_qwen2.py and modeling_qwen3.py and sharing
nothing with the lab's TypeScript: the yardstick tests/unit/hf-parity.test.ts checks the lab's
logits against (docs/models.md, "Checked against PyTorch").

    /usr/bin/python3 tests/reference/hf_reference.py MODEL_DIR --ids 3,17,151643
        [--dtype float32,float64] [--format lists|base64] [--out FILE]

MODEL_DIR holds config.json and model.safetensors (or shards listed in model.safetensors.index.json).
Prints (or writes to FILE) JSON: {"model_type", "ids", "shape": [len(ids), vocab_size], "logits": {dtype: ...}},
one entry per dtype asked for (default float32; float64 gives the exact math to measure float32 against).
Each entry is a list of rows (--format lists, the default), or with --format base64 the row-major
little-endian bytes of the array in that dtype, base64-encoded: a 151936-token vocabulary gives
millions of numbers, which as decimal text take longer to print and parse than the forward takes.
Needs only torch and numpy (Debian's python3-torch); safetensors is read here with struct + numpy.
"""
import argparse
import base64
import json
import math
import os
import struct
import sys

import numpy as np
import torch

SUPPORTED = ("llama", "qwen2", "qwen3")


def fail(message):
    sys.stderr.write(f"hf_reference: {message}\n")
    sys.exit(2)


# ------------------------------------------------------------------------------------------ safetensors


def read_safetensors(path):
    """{name: float32 numpy array} from one .safetensors file: u64 header length, JSON header, raw bytes."""
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    base = 8 + length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        raw = data[base + start : base + end]
        dtype = entry["dtype"]
        if dtype == "BF16":
            # bfloat16 is the top half of a float32.
            array = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dtype in ("F32", "F16", "F64"):
            array = np.frombuffer(raw, dtype={"F32": "<f4", "F16": "<f2", "F64": "<f8"}[dtype]).astype(np.float32)
        else:
            fail(f"{path}: tensor {name} has dtype {dtype}, not a float")
        tensors[name] = array.reshape(entry["shape"])
    return tensors


def read_weights(folder):
    single = os.path.join(folder, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    index = os.path.join(folder, "model.safetensors.index.json")
    if not os.path.exists(index):
        fail(f"{folder}: no model.safetensors and no model.safetensors.index.json")
    with open(index) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    tensors = {}
    for shard in shards:
        tensors.update(read_safetensors(os.path.join(folder, shard)))
    return tensors


# ------------------------------------------------------------------------------------------ config


class Config:
    """The fields the forward pass reads, with transformers' defaults for each model type."""

    def __init__(self, raw):
        self.model_type = raw.get("model_type")
        if self.model_type not in SUPPORTED:
            fail(f"model_type {self.model_type!r} is not one of {SUPPORTED}")
        for field in ("rope_scaling", "quantization_config"):
            if raw.get(field) is not None:
                fail(f"{field} is set: this reference runs plain RoPE on float weights")
        if raw.get("use_sliding_window"):
            fail("use_sliding_window is true: this reference runs full attention")
        if raw.get("hidden_act", "silu") != "silu":
            fail(f"hidden_act {raw.get('hidden_act')!r}: this reference runs SwiGLU (silu)")
        self.hidden = raw["hidden_size"]
        self.intermediate = raw["intermediate_size"]
        self.layers = raw["num_hidden_layers"]
        self.heads = raw["num_attention_heads"]
        self.kv_heads = raw.get("num_key_value_heads") or self.heads
        default_head_dim = 128 if self.model_type == "qwen3" else self.hidden // self.heads
        self.head_dim = raw.get("head_dim") or default_head_dim
        self.theta = raw.get("rope_theta", 10000.0)
        self.eps = raw.get("rms_norm_eps", 1e-6)
        self.vocab = raw["vocab_size"]
        self.tied = raw.get("tie_word_embeddings", False)
        # Qwen2: q/k/v always biased, o_proj never. Llama, Qwen3: attention_bias on q, k, v and o.
        bias = raw.get("attention_bias", False)
        self.qkv_bias = True if self.model_type == "qwen2" else bias
        self.o_bias = False if self.model_type == "qwen2" else bias
        self.qk_norm = self.model_type == "qwen3"


# ------------------------------------------------------------------------------------------ forward


def rms_norm(x, weight, eps):
    """weight * x / sqrt(mean(x^2) + eps) over the last axis (LlamaRMSNorm)."""
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_tables(head_dim, theta, length, dtype):
    """cos, sin [length, head_dim]: angle(p, j) = p * theta^(-2(j mod d/2)/d), halves repeated."""
    # In float32 this rounds as transformers' default RoPE does (inv_freq and angles in float32).
    exponent = torch.arange(0, head_dim, 2, dtype=torch.int64).to(dtype) / head_dim
    inv_freq = 1.0 / (theta**exponent)
    positions = torch.arange(length, dtype=dtype)
    freqs = positions[:, None] * inv_freq[None, :]
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos(), angles.sin()


class Model:
    def __init__(self, folder, dtype):
        with open(os.path.join(folder, "config.json")) as f:
            self.cfg = Config(json.load(f))
        arrays = read_weights(folder)
        self.w = {name: torch.from_numpy(np.array(a)).to(dtype) for name, a in arrays.items()}
        self.dtype = dtype

    def get(self, name):
        if name not in self.w:
            fail(f"the checkpoint has no tensor {name}")
        return self.w[name]

    def linear(self, x, name, bias):
        """nn.Linear: x W^T + b, W stored [out, in]."""
        y = x @ self.get(f"{name}.weight").T
        return y + self.get(f"{name}.bias") if bias else y

    def attention(self, layer, x, cos, sin):
        c = self.cfg
        p = f"model.layers.{layer}.self_attn"
        length = x.shape[0]
        q = self.linear(x, f"{p}.q_proj", c.qkv_bias).view(length, c.heads, c.head_dim)
        k = self.linear(x, f"{p}.k_proj", c.qkv_bias).view(length, c.kv_heads, c.head_dim)
        v = self.linear(x, f"{p}.v_proj", c.qkv_bias).view(length, c.kv_heads, c.head_dim)
        if c.qk_norm:
            q = rms_norm(q, self.get(f"{p}.q_norm.weight"), c.eps)
            k = rms_norm(k, self.get(f"{p}.k_norm.weight"), c.eps)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [heads, T, head_dim]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: query head h reads key/value head h // (heads / kv_heads).
        group = c.heads // c.kv_heads
        k = k.repeat_interleave(group, dim=0)
        v = v.repeat_interleave(group, dim=0)
        scores = (q @ k.transpose(1, 2)) * (c.head_dim**-0.5)
        mask = torch.full((length, length), torch.finfo(self.dtype).min, dtype=self.dtype).triu(1)
        probs = torch.softmax(scores + mask, dim=-1)
        out = (probs @ v).transpose(0, 1).reshape(length, c.heads * c.head_dim)
        return self.linear(out, f"{p}.o_proj", c.o_bias)

    def mlp(self, layer, x):
        p = f"model.layers.{layer}.mlp"
        gate = self.linear(x, f"{p}.gate_proj", False)
        up = self.linear(x, f"{p}.up_proj", False)
        return self.linear(torch.nn.functional.silu(gate) * up, f"{p}.down_proj", False)

    def logits(self, ids):
        c = self.cfg
        embed = self.get("model.embed_tokens.weight")
        x = embed[torch.tensor(ids, dtype=torch.long)]
        cos, sin = rope_tables(c.head_dim, c.theta, len(ids), self.dtype)
        for layer in range(c.layers):
            p = f"model.layers.{layer}"
            x = x + self.attention(layer, rms_norm(x, self.get(f"{p}.input_layernorm.weight"), c.eps), cos, sin)
            x = x + self.mlp(layer, rms_norm(x, self.get(f"{p}.post_attention_layernorm.weight"), c.eps))
        x = rms_norm(x, self.get("model.norm.weight"), c.eps)
        head = embed if c.tied else self.get("lm_head.weight")
        return x @ head.T


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--ids", required=True, help="comma-separated token ids")
    parser.add_argument("--dtype", default="float32", help="float32, float64 or both, comma-separated")
    parser.add_argument("--format", choices=("lists", "base64"), default="lists")
    parser.add_argument("--out", help="write the JSON here instead of stdout")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dtypes = {"float32": torch.float32, "float64": torch.float64}
    names = args.dtype.split(",")
    unknown = [n for n in names if n not in dtypes]
    if unknown:
        fail(f"--dtype {','.join(unknown)}: expected float32 and/or float64")
    ids = [int(s) for s in args.ids.split(",")]
    result = {"ids": ids, "logits": {}}
    for name in names:
        model = Model(args.folder, dtypes[name])
        bad = [i for i in ids if not 0 <= i < model.cfg.vocab]
        if bad:
            fail(f"token ids {bad} are outside the vocabulary (0..{model.cfg.vocab - 1})")
        with torch.no_grad():
            logits = model.logits(ids)
        if not math.isfinite(float(logits.abs().max())):
            fail("the logits are not finite")
        result["model_type"] = model.cfg.model_type
        result["shape"] = list(logits.shape)
        if args.format == "lists":
            result["logits"][name] = logits.tolist()
        else:
            little = logits.numpy().astype("<f4" if name == "float32" else "<f8")
            result["logits"][name] = base64.b64encode(little.tobytes()).decode("ascii")
    text = json.dumps(result)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
