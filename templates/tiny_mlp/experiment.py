"""Train a tiny two-layer MLP from scratch (pure Python, no dependencies) on three
synthetic 2-D classification datasets, over several seeds, and write
<out_dir>/final_info.json in The AI Scientist v1 format.

Runs in a few seconds on any CPU:  python experiment.py --out_dir run_0
EXPERIMENT_SMOKE=1 trains 10 epochs over 2 seeds; EXPERIMENT_SEED=k moves every seed by 1000*k.
"""

import argparse
import json
import math
import os
import random
import time

SMOKE = os.environ.get("EXPERIMENT_SMOKE", "") not in ("", "0")


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


# ---------------------------------------------------------------- datasets
def make_dataset(name, n, rng):
    """n points in 2-D with labels 0/1."""
    xs, ys = [], []
    for i in range(n):
        label = i % 2
        if name == "blobs":
            cx = 1.0 if label else -1.0
            x = (cx + rng.gauss(0, 0.6), rng.gauss(0, 0.6))
        elif name == "moons":
            t = rng.uniform(0, math.pi)
            if label:
                x = (1 - math.cos(t), 0.5 - math.sin(t))
            else:
                x = (math.cos(t), math.sin(t))
            x = (x[0] + rng.gauss(0, 0.2), x[1] + rng.gauss(0, 0.2))
        elif name == "circles":
            t = rng.uniform(0, 2 * math.pi)
            r = 0.5 if label else 1.0
            x = (r * math.cos(t) + rng.gauss(0, 0.12), r * math.sin(t) + rng.gauss(0, 0.12))
        else:
            raise ValueError(name)
        xs.append(x)
        ys.append(label)
    return xs, ys


# ---------------------------------------------------------------- model
class MLP:
    """2 -> hidden (tanh) -> 1 (sigmoid), trained with plain SGD."""

    def __init__(self, hidden, rng, init_scale=1.0):
        self.h = hidden
        self.w1 = [[rng.gauss(0, init_scale / math.sqrt(2)) for _ in range(2)] for _ in range(hidden)]
        self.b1 = [0.0] * hidden
        self.w2 = [rng.gauss(0, init_scale / math.sqrt(hidden)) for _ in range(hidden)]
        self.b2 = 0.0

    def forward(self, x):
        a = [math.tanh(w[0] * x[0] + w[1] * x[1] + b) for w, b in zip(self.w1, self.b1)]
        z = sum(wi * ai for wi, ai in zip(self.w2, a)) + self.b2
        p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
        return a, p

    def sgd_step(self, x, y, lr):
        a, p = self.forward(x)
        dz = p - y  # d(BCE)/dz
        for j in range(self.h):
            da = dz * self.w2[j] * (1 - a[j] * a[j])
            self.w2[j] -= lr * dz * a[j]
            self.w1[j][0] -= lr * da * x[0]
            self.w1[j][1] -= lr * da * x[1]
            self.b1[j] -= lr * da
        self.b2 -= lr * dz

    def evaluate(self, xs, ys):
        loss, correct = 0.0, 0
        for x, y in zip(xs, ys):
            _, p = self.forward(x)
            p = min(max(p, 1e-7), 1 - 1e-7)
            loss -= y * math.log(p) + (1 - y) * math.log(1 - p)
            correct += int((p > 0.5) == bool(y))
        return loss / len(xs), correct / len(xs)


# ---------------------------------------------------------------- training
def run(dataset, seed, cfg):
    rng = random.Random(seed)
    train_x, train_y = make_dataset(dataset, cfg["n_train"], rng)
    val_x, val_y = make_dataset(dataset, cfg["n_val"], rng)
    model = MLP(cfg["hidden"], rng)
    order = list(range(len(train_x)))
    steps_to_90 = None
    step = 0
    start = time.time()
    for epoch in range(cfg["epochs"]):
        rng.shuffle(order)
        for i in order:
            model.sgd_step(train_x[i], train_y[i], cfg["lr"])
            step += 1
        if steps_to_90 is None:
            _, acc = model.evaluate(val_x, val_y)
            if acc >= 0.9:
                steps_to_90 = step
    train_time = time.time() - start
    train_loss, train_acc = model.evaluate(train_x, train_y)
    val_loss, val_acc = model.evaluate(val_x, val_y)
    return {
        "final_train_loss": train_loss,
        "final_val_loss": val_loss,
        "final_train_acc": train_acc,
        "final_val_acc": val_acc,
        # Never reaching 90% counts as the full budget, so the mean stays defined.
        "steps_to_90_val_acc": steps_to_90 if steps_to_90 is not None else step,
        "train_time": train_time,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out_dir", type=str, default="run_0")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)

    cfg = {"n_train": 200, "n_val": 200, "hidden": 8, "lr": 0.01, "epochs": 40}
    seeds = [0, 1, 2]
    if SMOKE:
        cfg.update(epochs=10)
        seeds = seeds[:2]
    seeds = [s + seed_offset() for s in seeds]
    final_info = {}
    for dataset in ["blobs", "moons", "circles"]:
        per_seed = [run(dataset, s, cfg) for s in seeds]
        keys = per_seed[0].keys()
        info = {k: [r[k] for r in per_seed] for k in keys}
        means = {f"{k}_mean": sum(v) / len(v) for k, v in info.items()}
        stderrs = {}
        for k, v in info.items():
            m = sum(v) / len(v)
            var = sum((x - m) ** 2 for x in v) / max(len(v) - 1, 1)
            stderrs[f"{k}_stderr"] = math.sqrt(var / len(v))
        final_info[dataset] = {"means": means, "stderrs": stderrs, "final_info_dict": info}
        print(f"{dataset}: val_acc={means['final_val_acc_mean']:.3f} "
              f"val_loss={means['final_val_loss_mean']:.3f}")
        # Per-run curves are not kept; plot.py reads final_info.json only.

    with open(os.path.join(args.out_dir, "final_info.json"), "w") as f:
        json.dump(final_info, f)


if __name__ == "__main__":
    main()
