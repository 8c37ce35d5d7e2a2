#!/usr/bin/env python3
"""Writes the PyTorch golden fixtures that frugal's tests match (llm.c's "TENSOR OK" idea).

For each tiny model: a Hugging Face-style directory (config.json with the extra keys real configs carry,
model.safetensors in the given dtype) and golden.json with token ids, targets, logits, the mean
cross-entropy and every parameter's gradient, computed in float32 from the stored weights.
Run with Debian's python3-torch:  /usr/bin/python3 python/golden.py   (CI only reads the output.)
"""
import json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
import torch.nn.functional as F
from frugal_torch import CausalLM, save_safetensors

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures")

MODELS = {
    "tiny-llama-f32": (torch.float32, {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 40, "vocab_size": 23,
        "max_position_embeddings": 32, "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
        "hidden_act": "silu", "torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": 2}),
    "tiny-qwen2-bf16": (torch.bfloat16, {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 24, "num_hidden_layers": 2,
        "num_attention_heads": 6, "num_key_value_heads": 2, "intermediate_size": 48, "vocab_size": 29,
        "max_position_embeddings": 64, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
        "hidden_act": "silu", "torch_dtype": "bfloat16", "use_sliding_window": False, "sliding_window": 32,
        "attention_dropout": 0.0, "rope_scaling": None}),
    "tiny-llama-f16": (torch.float16, {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 2, "intermediate_size": 24, "vocab_size": 19,
        "max_position_embeddings": 16, "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": False}),
}


def main():
    for name, (dtype, cfg) in MODELS.items():
        torch.manual_seed(1234)
        m = CausalLM(cfg)
        with torch.no_grad():
            for p in m.parameters():
                p.normal_(0.0, 0.3)
                p.copy_(p.to(dtype).float())  # compute from exactly the stored (rounded) weights
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        save_safetensors(os.path.join(d, "model.safetensors"), {k: v.to(dtype) for k, v in m.state_dict().items()}, {"format": "pt"})
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        B, T, V = 2, 7, cfg["vocab_size"]
        g = torch.Generator().manual_seed(5)
        ids, tgt = torch.randint(0, V, (B, T), generator=g), torch.randint(0, V, (B, T), generator=g)
        logits = m(ids)
        loss = F.cross_entropy(logits.view(-1, V), tgt.view(-1))
        loss.backward()
        golden = {
            "B": B, "T": T, "ids": ids.flatten().tolist(), "targets": tgt.flatten().tolist(),
            "logits": logits.detach().flatten().tolist(), "loss": loss.item(),
            "grads": {k: p.grad.flatten().tolist() for k, p in m.named_parameters()},
            "torch": torch.__version__,
        }
        with open(os.path.join(d, "golden.json"), "w") as f:
            json.dump(golden, f)
        print(f"wrote {d}: loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
