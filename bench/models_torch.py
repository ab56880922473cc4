#!/usr/bin/python3
"""PyTorch eager yardstick of `npm run bench -- models`: the decoder of bench/torch_ref.py on the
same model folder, timed as the lab is timed.

Usage: /usr/bin/python3 bench/models_torch.py --model DIR [--prompt-len 128] [--decode-prompt 16]
           [--new-tokens 16] [--train-seq 64] [--train-steps 2] [--lora-rank 8] [--lora-targets q_proj,v_proj]

Prints one JSON object on stdout:
  load_s          reading the safetensors file and building the module
  prefill_tok_s   prompt_len / seconds of one forward over a prompt of prompt_len tokens (batch 1)
  decode_tok_s    greedy decoding at batch 1 with a KV cache (preallocated per-layer buffers written in
                  place, bench/torch_ref.py): (new_tokens - 1) / seconds after the prompt's forward
  lora_train_tok_s  train_seq * steps / seconds of AdamW steps (clip 1.0) on a LoRA adapter of the given
                  rank on the given modules (frozen base, B = 0 at the start, scale alpha / r = 1),
                  next-token cross-entropy of random ids, batch 1, after one warm-up step
  peak_rss_mb     the process's high-water mark (VmHWM)
  torch, threads, blas, matmul_gflops (512x512 float32, to show which BLAS runs)
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ref import Decoder, blas_library, greedy_decode, load_model, matmul_gflops  # noqa: E402


class LoraDecoder(Decoder):
    """The decoder with y += scale · (x·Aᵀ)·Bᵀ on the named Linear layers (Hu et al. 2021)."""

    def __init__(self, cfg, weights, rank, targets):
        super().__init__(cfg, weights)
        for p in self.parameters():
            p.requires_grad_(False)
        self.scale = 1.0  # alpha = r, the lab's default
        self.lora = torch.nn.ParameterDict()
        for i in range(cfg["num_hidden_layers"]):
            for t in targets:
                group = "mlp" if t in ("gate_proj", "up_proj", "down_proj") else "self_attn"
                name = f"model.layers.{i}.{group}.{t}"
                w = self.w(name + ".weight")
                out_f, in_f = w.shape
                key = name.replace(".", "__")
                self.lora[key + "__A"] = torch.nn.Parameter(torch.empty(rank, in_f).uniform_(-1 / math.sqrt(in_f), 1 / math.sqrt(in_f)))
                self.lora[key + "__B"] = torch.nn.Parameter(torch.zeros(out_f, rank))

    def linear(self, x, name, bias=False):
        y = super().linear(x, name, bias)
        key = name.replace(".", "__")
        if key + "__A" in self.lora:
            y = y + self.scale * F.linear(F.linear(x, self.lora[key + "__A"]), self.lora[key + "__B"])
        return y


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--decode-prompt", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--train-seq", type=int, default=64)
    ap.add_argument("--train-steps", type=int, default=2)
    ap.add_argument("--lora-rank", type=int, default=8)
    ap.add_argument("--lora-targets", default="q_proj,v_proj")
    args = ap.parse_args()

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    cfg, weights = load_model(args.model)
    model = LoraDecoder(cfg, weights, args.lora_rank, args.lora_targets.split(","))
    del weights
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "load_s": time.perf_counter() - t0}
    out["blas"], out["matmul_gflops"] = blas_library(), round(matmul_gflops(), 1)
    vocab = cfg["vocab_size"]

    with torch.inference_mode():
        model(torch.randint(0, vocab, (1, 8), generator=gen))  # warm-up
        prompt = torch.randint(0, vocab, (1, args.prompt_len), generator=gen)
        t0 = time.perf_counter()
        model(prompt)
        s = time.perf_counter() - t0
        out["prefill_s"], out["prefill_tok_s"] = s, args.prompt_len / s
        greedy_decode(model, torch.randint(0, vocab, (1, args.decode_prompt), generator=gen), 3)  # warm-up
        _, decode_s = greedy_decode(model, torch.randint(0, vocab, (1, args.decode_prompt), generator=gen), args.new_tokens)
        out["decode_s"], out["decode_tok_s"] = decode_s, (args.new_tokens - 1) / decode_s

    if args.train_steps > 0:
        params = list(model.lora.parameters())
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)

        def step():
            ids = torch.randint(0, vocab, (1, args.train_seq + 1), generator=gen)
            logits = model(ids[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, vocab), ids[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()

        step()
        t0 = time.perf_counter()
        for _ in range(args.train_steps):
            step()
        s = time.perf_counter() - t0
        out["train_s"], out["lora_train_tok_s"] = s, args.train_seq * args.train_steps / s
        out["lora_parameters"] = sum(p.numel() for p in params)
    out["peak_rss_mb"] = peak_rss_mb()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
