"""frugal's transformer in PyTorch, with Hugging Face parameter names, for golden values and benchmarks.

Llama/Qwen2/Qwen3 layout, written from the Hugging Face modeling files: RMSNorm, RoPE (rotate-half; Llama 3's
rope_scaling), causal attention with grouped KV heads and an explicit head_dim, per-head q/k RMSNorm (Qwen3), SwiGLU,
optional q/k/v biases (Qwen2), tied or untied LM head. Only for checking frugal; never imported by frugal itself.
"""
import json, math, struct
import torch
import torch.nn.functional as F
from torch import nn


def head_dim(c):
    return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]


def inv_freq(c):
    """RoPE inverse frequencies, with Llama 3's rope_scaling (transformers' _compute_llama3_parameters)."""
    D = head_dim(c)
    inv = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    s = c.get("rope_scaling")
    if not s:
        return inv
    factor, lo, hi, old = s["factor"], s["low_freq_factor"], s["high_freq_factor"], s["original_max_position_embeddings"]
    lo_wavelen, hi_wavelen = old / lo, old / hi
    wavelen = 2 * math.pi / inv
    inv_l = torch.where(wavelen > lo_wavelen, inv / factor, inv)
    smooth = (old / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
    medium = ~(wavelen < hi_wavelen) * ~(wavelen > lo_wavelen)
    return torch.where(medium, smoothed, inv_l)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin):  # x (B, heads, T, D)
    d = x.shape[-1] // 2
    a, b = x[..., :d], x[..., d:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, H, KVH = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        self.H, self.KVH, self.D = H, KVH, head_dim(c)
        bias = c.get("attention_bias", c.get("model_type") == "qwen2")  # Qwen2 has q/k/v biases
        self.q_proj = nn.Linear(C, H * self.D, bias=bias)
        self.k_proj = nn.Linear(C, KVH * self.D, bias=bias)
        self.v_proj = nn.Linear(C, KVH * self.D, bias=bias)
        self.o_proj = nn.Linear(H * self.D, C, bias=False)
        self.qk_norm = c.get("model_type") == "qwen3"
        if self.qk_norm:  # Qwen3Attention: RMSNorm over each head's head_dim values, before RoPE
            self.q_norm, self.k_norm = RMSNorm(self.D, c.get("rms_norm_eps", 1e-6)), RMSNorm(self.D, c.get("rms_norm_eps", 1e-6))

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.D)
        k = self.k_proj(x).view(B, T, self.KVH, self.D)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q = rope(q.transpose(1, 2), cos, sin)
        k = rope(k.transpose(1, 2), cos, sin)
        v = self.v_proj(x).view(B, T, self.KVH, self.D).transpose(1, 2)
        rep = self.H // self.KVH
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        mask = torch.full((T, T), float("-inf")).triu(1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.D) + mask
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, self.H * self.D)
        return self.o_proj(y)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, I = c["hidden_size"], c["intermediate_size"]
        self.gate_proj, self.up_proj, self.down_proj = nn.Linear(C, I, bias=False), nn.Linear(C, I, bias=False), nn.Linear(I, C, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        eps = c.get("rms_norm_eps", 1e-5)
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(c["hidden_size"], eps), RMSNorm(c["hidden_size"], eps)
        self.self_attn, self.mlp = Attention(c), MLP(c)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c.get("rms_norm_eps", 1e-5))


class CausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Inner(c)
        self.tied = c.get("tie_word_embeddings", False)
        if not self.tied:
            self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)

    def forward(self, ids):
        T = ids.shape[1]
        ang = torch.arange(T, dtype=torch.float32)[:, None] * inv_freq(self.c)[None, :]
        cos, sin = ang.cos(), ang.sin()
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        x = self.model.norm(x)
        return x @ (self.model.embed_tokens.weight if self.tied else self.lm_head.weight).T


class LoraLinear(nn.Module):
    """PEFT's LoRA on a frozen nn.Linear: base(x) + (alpha / r) * B(A(x)), no dropout."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base, self.scale = base, alpha / r
        for p in base.parameters():
            p.requires_grad_(False)
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)

    def forward(self, x):
        return self.base(x) + self.scale * self.lora_B(self.lora_A(x))


def add_lora(model, r, alpha, modules):
    """Wraps every linear named in modules; returns {PEFT tensor name: parameter} of the adapters."""
    adapters = {}
    for name, parent in list(model.named_modules()):
        for child in modules:
            if isinstance(getattr(parent, child, None), nn.Linear):
                wrapped = LoraLinear(getattr(parent, child), r, alpha)
                setattr(parent, child, wrapped)
                stem = f"base_model.model.{name}.{child}"
                adapters[f"{stem}.lora_A.weight"], adapters[f"{stem}.lora_B.weight"] = wrapped.lora_A.weight, wrapped.lora_B.weight
    for p in model.model.embed_tokens.parameters():
        p.requires_grad_(False)
    for n, p in model.named_parameters():
        if "lora_" not in n:
            p.requires_grad_(False)
    return adapters


DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def save_safetensors(path, tensors, metadata=None):
    """Writes the safetensors format by hand (8-byte header length, JSON header, raw little-endian data)."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
