"""Denoising diffusion (DDPM) on four 2-D point clouds generated in code, with a
small residual MLP as the noise predictor. Writes <out_dir>/final_info.json in The AI
Scientist v1 format and <out_dir>/all_results.json (loss curves, generated samples).

Metrics per dataset: training time, held-out denoising loss, sampling time, and the
KL divergence from the data to the generated samples, estimated from k-nearest-
neighbour distances (Wang, Kulkarni and Verdu, 2009).

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

import numpy as np
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


# ---------------------------------------------------------------- datasets
def make_dataset(name, n, rng):
    """n points in 2-D, roughly zero-mean with unit scale."""
    if name == "circle":
        t = rng.uniform(0, 2 * math.pi, n)
        x = np.stack([np.cos(t), np.sin(t)], 1) + rng.normal(0, 0.05, (n, 2))
    elif name == "moons":
        upper = rng.random(n) < 0.5
        t = rng.uniform(0, math.pi, n)
        x = np.where(upper[:, None],
                     np.stack([np.cos(t), np.sin(t)], 1),
                     np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1))
        x = (x - np.array([0.5, 0.25])) * 1.2 + rng.normal(0, 0.06, (n, 2))
    elif name == "spiral":
        t = np.sqrt(rng.uniform(0, 1, n)) * 3 * math.pi
        x = np.stack([t * np.cos(t), t * np.sin(t)], 1) / (1.5 * math.pi) + rng.normal(0, 0.04, (n, 2))
    elif name == "checkerboard":
        # Uniform on the black squares of a 4x4 board spanning [-2, 2]^2.
        col = rng.integers(0, 4, n)
        row = 2 * rng.integers(0, 2, n) + col % 2  # col + row is even: a black square
        x = np.stack([col, row], 1) + rng.uniform(0, 1, (n, 2)) - 2.0
    else:
        raise ValueError(name)
    return x.astype(np.float32)


# ---------------------------------------------------------------- model
def sinusoidal(t, dim, scale=1.0):
    """Sinusoidal features of a batch of scalars: (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = scale * t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], -1)


class ResidualBlock(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, width)

    def forward(self, h):
        return h + self.fc(F.gelu(self.norm(h)))


class Denoiser(nn.Module):
    """Predicts the noise added to x_t, from x_t and t (both embedded sinusoidally)."""

    def __init__(self, width=256, depth=3, emb=64):
        super().__init__()
        self.emb = emb
        self.inp = nn.Linear(3 * emb, width)
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(depth)])
        self.out = nn.Sequential(nn.LayerNorm(width), nn.GELU(), nn.Linear(width, 2))

    def forward(self, x, t):
        # A large scale on the coordinates lets the network resolve fine structure.
        feats = [sinusoidal(x[:, 0], self.emb, 25.0), sinusoidal(x[:, 1], self.emb, 25.0),
                 sinusoidal(t, self.emb)]
        return self.out(self.blocks(self.inp(torch.cat(feats, -1))))


class Schedule:
    """The DDPM forward process with a linear beta schedule (Ho et al., 2020)."""

    def __init__(self, steps, device, beta_start=1e-4, beta_end=0.02):
        self.steps = steps
        self.betas = torch.linspace(beta_start, beta_end, steps, device=device)
        self.alphas = 1.0 - self.betas
        self.alpha_bars = torch.cumprod(self.alphas, 0)

    def add_noise(self, x0, noise, t):
        ab = self.alpha_bars[t][:, None]
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    @torch.no_grad()
    def sample(self, model, n, generator, device):
        x = torch.randn(n, 2, generator=generator, device=device)
        for i in reversed(range(self.steps)):
            t = torch.full((n,), i, device=device, dtype=torch.long)
            eps = model(x, t)
            a, ab, b = self.alphas[i], self.alpha_bars[i], self.betas[i]
            x = (x - b / (1 - ab).sqrt() * eps) / a.sqrt()
            if i > 0:
                var = b * (1 - self.alpha_bars[i - 1]) / (1 - ab)  # posterior variance
                x = x + var.sqrt() * torch.randn(n, 2, generator=generator, device=device)
        return x


# ---------------------------------------------------------------- evaluation
def knn_distance(queries, points, k, exclude_self=False, chunk=2048):
    """Distance from each query to its k-th nearest neighbour among `points`."""
    out = []
    kk = k + 1 if exclude_self else k
    for i in range(0, len(queries), chunk):
        d = torch.cdist(queries[i:i + chunk], points)
        out.append(d.topk(kk, dim=1, largest=False).values[:, kk - 1])
    return torch.cat(out)


def knn_kl_divergence(p_samples, q_samples, k=5):
    """KL(P || Q) from samples, by the k-NN estimator of Wang, Kulkarni and Verdu (2009):
    (d/n) sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1)). For each P sample x_i, rho_k(i)
    is the distance to its k-th neighbour among the other P samples and nu_k(i) the
    distance to its k-th neighbour among the Q samples."""
    n, d = p_samples.shape
    m = q_samples.shape[0]
    rho = knn_distance(p_samples, p_samples, k, exclude_self=True).clamp_min(1e-12)
    nu = knn_distance(p_samples, q_samples, k).clamp_min(1e-12)
    return (d * torch.log(nu / rho).mean() + math.log(m / (n - 1))).item()


# ---------------------------------------------------------------- training
def run(dataset, cfg, device, seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train = torch.from_numpy(make_dataset(dataset, cfg["n_train"], rng)).to(device)
    held_out = torch.from_numpy(make_dataset(dataset, cfg["n_eval"], rng)).to(device)
    model = Denoiser(cfg["width"], cfg["depth"]).to(device)
    sched = Schedule(cfg["diffusion_steps"], device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=1e-4)
    lr_at = lambda s: min(1.0, (s + 1) / cfg["warmup"]) * 0.5 * (1 + math.cos(math.pi * s / cfg["train_steps"]))
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator(device=device).manual_seed(seed)

    curve = []
    start = time.time()
    for step in range(cfg["train_steps"]):
        idx = torch.randint(0, len(train), (cfg["batch"],), generator=gen, device=device)
        x0 = train[idx]
        noise = torch.randn(x0.shape, generator=gen, device=device)
        t = torch.randint(0, sched.steps, (len(x0),), generator=gen, device=device)
        loss = F.mse_loss(model(sched.add_noise(x0, noise, t), t), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        scheduler.step()
        if step % cfg["log_every"] == 0 or step == cfg["train_steps"] - 1:
            curve.append([step, loss.item()])
    if device.type == "cuda":
        torch.cuda.synchronize()
    training_time = time.time() - start

    model.eval()
    with torch.no_grad():
        # Held-out denoising loss with fixed noise and timesteps, comparable across runs.
        eval_gen = torch.Generator(device=device).manual_seed(10_000 + seed)
        noise = torch.randn(held_out.shape, generator=eval_gen, device=device)
        t = torch.randint(0, sched.steps, (len(held_out),), generator=eval_gen, device=device)
        eval_loss = F.mse_loss(model(sched.add_noise(held_out, noise, t), t), noise).item()
    start = time.time()
    samples = sched.sample(model, cfg["n_eval"], eval_gen, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    inference_time = time.time() - start
    kl = knn_kl_divergence(held_out, samples, k=cfg["knn_k"])

    means = {
        "training_time": training_time,
        "eval_loss": eval_loss,
        "inference_time": inference_time,
        "kl_divergence": kl,
    }
    shown = samples[: cfg["n_plot"]].cpu().numpy().round(4).tolist()
    return means, {"train_loss": curve, "samples": shown}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out_dir", type=str, default="run_0")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = {
        "n_train": 50_000, "n_eval": 10_000, "n_plot": 2_000,
        "width": 256, "depth": 3, "diffusion_steps": 100,
        "batch": 256, "lr": 1e-3, "warmup": 100, "train_steps": 10_000,
        "log_every": 50, "knn_k": 5,
    }
    if SMOKE:
        cfg.update(n_train=512, n_eval=256, n_plot=256, width=32, depth=1, diffusion_steps=20,
                   batch=64, warmup=5, train_steps=20, log_every=5)
    cfg["train_steps"] = max(1, int(cfg["train_steps"] * BUDGET))
    print(f"device={device} smoke={SMOKE} train_steps={cfg['train_steps']} seed={SEED_OFFSET}")

    final_info, all_results = {}, {}
    for dataset in ["circle", "moons", "spiral", "checkerboard"]:
        means, curves = run(dataset, cfg, device, seed=SEED_OFFSET)
        final_info[dataset] = {"means": means}
        all_results[dataset] = curves
        print(f"{dataset}: " + " ".join(f"{k}={v:.4f}" for k, v in means.items()))

    with open(os.path.join(args.out_dir, "final_info.json"), "w") as f:
        json.dump(final_info, f, indent=2)
    with open(os.path.join(args.out_dir, "all_results.json"), "w") as f:
        json.dump(all_results, f)


if __name__ == "__main__":
    main()
