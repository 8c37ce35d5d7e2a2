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
from frugal_torch import CausalLM, add_lora, save_safetensors

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
    # Llama 3: rope_scaling "llama3" (cut-offs chosen so each of the three frequency bands occurs at head_dim 8),
    # head_dim wider than hidden/heads, weights in two shards with an index
    "tiny-llama3-sharded": (torch.float32, {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 24, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "intermediate_size": 40, "vocab_size": 31,
        "max_position_embeddings": 64, "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
        "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "torch_dtype": "float32",
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64}}),
    # Qwen3: q/k RMSNorm per head, explicit head_dim, tied head, bf16
    "tiny-qwen3-bf16": (torch.bfloat16, {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 24, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "intermediate_size": 48, "vocab_size": 37,
        "max_position_embeddings": 64, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
        "hidden_act": "silu", "attention_bias": False, "torch_dtype": "bfloat16", "use_sliding_window": False,
        "sliding_window": None, "max_window_layers": 2, "rope_scaling": None}),
}
SHARDED = {"tiny-llama3-sharded": 2}


def save_weights(d, name, tensors):
    """model.safetensors, or n shards with model.safetensors.index.json as transformers writes them."""
    n = SHARDED.get(name)
    if not n:
        save_safetensors(os.path.join(d, "model.safetensors"), tensors, {"format": "pt"})
        return
    names, weight_map = list(tensors), {}
    for i in range(n):
        shard = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
        part = names[i * len(names) // n:(i + 1) * len(names) // n]
        save_safetensors(os.path.join(d, shard), {k: tensors[k] for k in part}, {"format": "pt"})
        weight_map.update({k: shard for k in part})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(t.numel() * t.element_size() for t in tensors.values())},
                   "weight_map": weight_map}, f, indent=2)


def greedy(m, prompt, n):
    """n greedy tokens after prompt, each from a full forward of everything so far (no cache)."""
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(m(torch.tensor([ids]))[0, -1].argmax()))
    return ids[len(prompt):]


def stored_model(cfg, dtype):
    """The fixture's model: seeded N(0, 0.3) weights rounded to dtype, computed in float32 from exactly those."""
    torch.manual_seed(1234)
    m = CausalLM(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 0.3)
            p.copy_(p.to(dtype).float())
    return m


def write_golden(d, m, V, params):
    """golden.json: ids, targets, logits, mean cross-entropy, the gradients of `params` ({name: parameter}), greedy."""
    B, T = 2, 7
    g = torch.Generator().manual_seed(5)
    ids, tgt = torch.randint(0, V, (B, T), generator=g), torch.randint(0, V, (B, T), generator=g)
    logits = m(ids)
    loss = F.cross_entropy(logits.view(-1, V), tgt.view(-1))
    loss.backward()
    golden = {
        "B": B, "T": T, "ids": ids.flatten().tolist(), "targets": tgt.flatten().tolist(),
        "logits": logits.detach().flatten().tolist(), "loss": loss.item(),
        "grads": {k: p.grad.flatten().tolist() for k, p in params.items()},
        "prompt": ids[0, :4].tolist(), "greedy": greedy(m, ids[0, :4].tolist(), 8),
        "torch": torch.__version__,
    }
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(golden, f)
    print(f"wrote {d}: loss {loss.item():.6f}")


def main():
    for name, (dtype, cfg) in MODELS.items():
        m = stored_model(cfg, dtype)
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        save_weights(d, name, {k: v.to(dtype) for k, v in m.state_dict().items()})
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        write_golden(d, m, cfg["vocab_size"], dict(m.named_parameters()))


LORA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def lora_golden():
    """PEFT adapters (rank 4, alpha 8, all linear layers) on tiny-qwen3-bf16: logits, loss and adapter gradients."""
    base = "tiny-qwen3-bf16"
    with open(os.path.join(OUT, base, "config.json")) as f:
        cfg = json.load(f)
    m = stored_model(cfg, torch.bfloat16)  # the same stored weights as the base fixture
    adapters = add_lora(m, 4, 8, LORA_MODULES)
    torch.manual_seed(99)
    with torch.no_grad():  # B is zero after PEFT's init; random here so every gradient is exercised
        for p in adapters.values():
            p.normal_(0.0, 0.3)
    d = os.path.join(OUT, "tiny-qwen3-lora")
    os.makedirs(d, exist_ok=True)
    save_safetensors(os.path.join(d, "adapter_model.safetensors"), {k: v.detach() for k, v in adapters.items()})
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": f"../{base}", "r": 4,
                   "lora_alpha": 8, "target_modules": LORA_MODULES, "lora_dropout": 0.0, "bias": "none",
                   "fan_in_fan_out": False, "use_rslora": False, "modules_to_save": None}, f, indent=2)
    write_golden(d, m, cfg["vocab_size"], adapters)


if __name__ == "__main__":
    main()
    lora_golden()
