"""A character-level GPT (decoder-only transformer) trained from scratch on Jane
Austen's "Pride and Prejudice" (public domain; data/pride_and_prejudice.txt, see
PROVENANCE.txt). The first 90% of the text is the training set, the rest validation.
Writes <out_dir>/final_info.json in The AI Scientist v1 format and
<out_dir>/all_results.json (loss curves and a generated sample).

    python experiment.py --out_dir run_0

Uses the GPU when there is one. EXPERIMENT_SMOKE=1 shrinks everything to a few seconds
on a CPU (for CI); EXPERIMENT_BUDGET=0.1 keeps the full setup but trains 10% of the steps.
EXPERIMENT_SEED=k (k = 1, 2, ...) moves every random seed by 1000*k; unset, the baseline's seeds.
"""

import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def seed_offset():
    """1000 * k for EXPERIMENT_SEED=k (unset, empty or 0: no offset, the baseline's seeds).
    Any other value than a whole number from 0 to 1000000 stops the run with a message:
    a rerun must not silently repeat seed 0."""
    raw = os.environ.get("EXPERIMENT_SEED", "").strip()
    if not raw:
        return 0
    try:
        k = int(raw)
    except ValueError:
        k = -1
    if not 0 <= k <= 1_000_000:
        raise SystemExit(f"experiment.py: EXPERIMENT_SEED must be a whole number from 0 to 1000000, not {raw[:40]!r}")
    return 1000 * k


SMOKE = os.environ.get("EXPERIMENT_SMOKE", "") not in ("", "0")
BUDGET = float(os.environ.get("EXPERIMENT_BUDGET", "1"))
SEED_OFFSET = seed_offset()
if SMOKE:
    torch.set_num_threads(1)  # tiny tensors on shared CI cores: threads only add waiting
TEXT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "pride_and_prejudice.txt")


# ---------------------------------------------------------------- data
class CharData:
    def __init__(self, path, val_fraction=0.1, limit=None):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if limit:
            text = text[:limit]
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        ids = torch.tensor([self.stoi[c] for c in text], dtype=torch.long)
        split = int(len(ids) * (1 - val_fraction))
        self.train, self.val = ids[:split], ids[split:]

    def decode(self, ids):
        return "".join(self.chars[i] for i in ids)

    def batch(self, split, batch, block, gen, device):
        data = self.train if split == "train" else self.val
        starts = torch.randint(0, len(data) - block - 1, (batch,), generator=gen)
        x = torch.stack([data[s:s + block] for s in starts])
        y = torch.stack([data[s + 1:s + block + 1] for s in starts])
        return x.to(device), y.to(device)


# ---------------------------------------------------------------- model
class Block(nn.Module):
    def __init__(self, dim, heads, dropout):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout))
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                             dropout_p=self.dropout if self.training else 0.0)
        x = x + self.resid_drop(self.proj(att.transpose(1, 2).reshape(b, t, d)))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab, block, dim, layers, heads, dropout):
        super().__init__()
        self.block = block
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(block, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([Block(dim, heads, dropout) for _ in range(layers)])
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.tok.weight  # tied input and output embeddings
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx, targets=None):
        t = idx.shape[1]
        x = self.drop(self.tok(idx) + self.pos(torch.arange(t, device=idx.device)))
        for blk in self.blocks:
            x = blk(x)
        logits = self.head(self.ln(x))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    @torch.no_grad()
    def generate(self, idx, n_new, gen, temperature=0.8):
        for _ in range(n_new):
            logits, _ = self(idx[:, -self.block:])
            probs = F.softmax(logits[:, -1] / temperature, -1)
            idx = torch.cat([idx, torch.multinomial(probs, 1, generator=gen)], 1)
        return idx


# ---------------------------------------------------------------- training
@torch.no_grad()
def estimate_loss(model, data, cfg, device, autocast):
    model.eval()
    gen = torch.Generator().manual_seed(1234 + SEED_OFFSET)  # the same batches at every evaluation
    out = {}
    for split in ("train", "val"):
        losses = []
        for _ in range(cfg["eval_batches"]):
            x, y = data.batch(split, cfg["batch"], cfg["block"], gen, device)
            with autocast():
                losses.append(model(x, y)[1].item())
        out[split] = sum(losses) / len(losses)
    model.train()
    return out


def run(seed, data, cfg, device):
    torch.manual_seed(seed)
    model = GPT(len(data.chars), cfg["block"], cfg["dim"], cfg["layers"], cfg["heads"], cfg["dropout"]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=(0.9, 0.99), weight_decay=0.1)
    steps, warmup, min_lr = cfg["train_steps"], cfg["warmup"], cfg["lr"] / 10

    def lr_at(s):
        if s < warmup:
            return cfg["lr"] * (s + 1) / warmup
        frac = (s - warmup) / max(1, steps - warmup)
        return min_lr + 0.5 * (cfg["lr"] - min_lr) * (1 + math.cos(math.pi * frac))

    if device.type == "cuda":
        autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    else:
        autocast = lambda: torch.autocast("cpu", enabled=False)
    gen = torch.Generator().manual_seed(seed)
    curves = {"step": [], "train_loss": [], "val_loss": []}
    best_val = float("inf")
    start = time.time()
    for step in range(steps + 1):
        if step % cfg["eval_every"] == 0 or step == steps:
            losses = estimate_loss(model, data, cfg, device, autocast)
            curves["step"].append(step)
            curves["train_loss"].append(losses["train"])
            curves["val_loss"].append(losses["val"])
            best_val = min(best_val, losses["val"])
            print(f"  seed {seed} step {step}: train {losses['train']:.4f} val {losses['val']:.4f}")
        if step == steps:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        x, y = data.batch("train", cfg["batch"], cfg["block"], gen, device)
        with autocast():
            _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_time = time.time() - start

    model.eval()
    sample_gen = torch.Generator(device=device).manual_seed(seed)
    prompt = torch.tensor([[data.stoi["\n"]]], device=device)
    start = time.time()
    with autocast():
        out = model.generate(prompt, cfg["sample_tokens"], sample_gen)
    if device.type == "cuda":
        torch.cuda.synchronize()
    tokens_per_second = cfg["sample_tokens"] / (time.time() - start)
    result = {
        "final_train_loss": curves["train_loss"][-1],
        "best_val_loss": best_val,
        "total_train_time": train_time,
        "avg_inference_tokens_per_second": tokens_per_second,
    }
    curves["sample"] = data.decode(out[0].tolist())
    return result, curves


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out_dir", type=str, default="run_0")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = {
        "block": 128, "dim": 256, "layers": 4, "heads": 4, "dropout": 0.1,
        "batch": 64, "lr": 1e-3, "warmup": 100, "train_steps": 3_000,
        "eval_every": 250, "eval_batches": 40, "sample_tokens": 500,
    }
    seeds = [0, 1]
    limit = None
    if SMOKE:
        cfg.update(block=32, dim=32, layers=1, heads=2, batch=8, warmup=2, train_steps=10,
                   eval_every=5, eval_batches=2, sample_tokens=20)
        seeds = [0]
        limit = 50_000
    seeds = [s + SEED_OFFSET for s in seeds]
    cfg["train_steps"] = max(1, int(cfg["train_steps"] * BUDGET))
    print(f"device={device} smoke={SMOKE} train_steps={cfg['train_steps']} seeds={seeds}")
    data = CharData(TEXT, limit=limit)

    dataset = "pride_prejudice_char"
    per_seed, curves = [], []
    for seed in seeds:
        result, curve = run(seed, data, cfg, device)
        per_seed.append(result)
        curves.append(curve)
    info = {k: [r[k] for r in per_seed] for k in per_seed[0]}
    means = {f"{k}_mean": sum(v) / len(v) for k, v in info.items()}
    stderrs = {}
    for k, v in info.items():
        m = sum(v) / len(v)
        var = sum((x - m) ** 2 for x in v) / max(len(v) - 1, 1)
        stderrs[f"{k}_stderr"] = math.sqrt(var / len(v))
    final_info = {dataset: {"means": means, "stderrs": stderrs, "final_info_dict": info}}
    print(f"{dataset}: " + " ".join(f"{k}={v:.4f}" for k, v in means.items()))

    with open(os.path.join(args.out_dir, "final_info.json"), "w") as f:
        json.dump(final_info, f, indent=2)
    with open(os.path.join(args.out_dir, "all_results.json"), "w") as f:
        json.dump({dataset: curves}, f)


if __name__ == "__main__":
    main()
