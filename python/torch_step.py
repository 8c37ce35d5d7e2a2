#!/usr/bin/env python3
"""Times one training step of frugal's model in PyTorch on CPU: the reference for `frugal bench engine`.

Same model (python/frugal_torch.py), same shapes, cross-entropy, AdamW with grad clipping, N threads; with "lora"
in the config, a LoRA step (frozen base) as `frugal bench byom` times it.
Prints one JSON line: {"torchStepMs": median, "torch": version}.
Usage: torch_step.py '{"hidden_size":256,...,"batch":16,"seq":128,"steps":8,"threads":2}'
"""
import json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
import torch.nn.functional as F
from frugal_torch import CausalLM, add_lora

cfg = json.loads(sys.argv[1])
torch.manual_seed(0)
torch.set_num_threads(cfg.get("threads", 2))
B, T, V = cfg["batch"], cfg["seq"], cfg["vocab_size"]
m = CausalLM(cfg)
# "lora": {"r": 16, "alpha": 32}: frozen base, adapters on every linear layer, only they in the optimizer
trained = list(add_lora(m, cfg["lora"]["r"], cfg["lora"]["alpha"], cfg["lora"]["modules"]).values()) if cfg.get("lora") else list(m.parameters())
opt = torch.optim.AdamW(trained, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
ids, tgt = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T))
times = []
warmup = cfg.get("warmup", 2)
for step in range(cfg.get("steps", 8) + warmup):
    t0 = time.perf_counter()
    loss = F.cross_entropy(m(ids).view(-1, V), tgt.view(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trained, 1.0)
    opt.step()
    if step >= warmup:
        times.append((time.perf_counter() - t0) * 1000)
times.sort()
print(json.dumps({"torchStepMs": times[len(times) // 2], "torch": torch.__version__}))
