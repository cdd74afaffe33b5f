"""Plot the runs listed in `labels`: training-loss curves per dataset
(train_loss.png), generated samples per run and dataset (generated_images.png) and
the KL divergence per dataset (kl_divergence.png). Reads run_*/final_info.json and
run_*/all_results.json.

Run from the template (or idea) folder:  python plot.py
"""

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# run folder -> legend label. Only runs listed here are plotted.
labels = {
    "run_0": "Baseline",
}


def load_runs():
    runs = {}
    for run, label in labels.items():
        info_path = os.path.join(run, "final_info.json")
        curves_path = os.path.join(run, "all_results.json")
        if not os.path.exists(info_path):
            continue
        with open(info_path) as f:
            info = json.load(f)
        curves = {}
        if os.path.exists(curves_path):
            with open(curves_path) as f:
                curves = json.load(f)
        runs[label] = (info, curves)
    return runs


def datasets_of(runs):
    seen = []
    for info, _ in runs.values():
        seen += [d for d in info if d not in seen]
    return seen


def plot_train_loss(runs, datasets):
    fig, axes = plt.subplots(1, len(datasets), figsize=(4 * len(datasets), 3.2), squeeze=False)
    for ax, d in zip(axes[0], datasets):
        for label, (_, curves) in runs.items():
            if d in curves:
                steps, losses = zip(*curves[d]["train_loss"])
                ax.plot(steps, losses, label=label)
        ax.set_title(d)
        ax.set_xlabel("training step")
        ax.set_ylabel("denoising MSE")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig("train_loss.png", dpi=120)
    plt.close(fig)


def plot_samples(runs, datasets):
    fig, axes = plt.subplots(len(runs), len(datasets), figsize=(3 * len(datasets), 3 * len(runs)),
                             squeeze=False)
    for row, (label, (_, curves)) in zip(axes, runs.items()):
        for ax, d in zip(row, datasets):
            if d in curves:
                pts = curves[d]["samples"]
                ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=1, alpha=0.5)
            ax.set_xlim(-2.5, 2.5)
            ax.set_ylim(-2.5, 2.5)
            ax.set_aspect("equal")
            ax.set_title(f"{label}: {d}", fontsize=9)
    fig.tight_layout()
    fig.savefig("generated_images.png", dpi=120)
    plt.close(fig)


def plot_kl(runs, datasets):
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.8 / max(len(runs), 1)
    for i, (label, (info, _)) in enumerate(runs.items()):
        xs = [j + i * width for j in range(len(datasets))]
        ys = [info[d]["means"].get("kl_divergence", 0.0) if d in info else 0.0 for d in datasets]
        ax.bar(xs, ys, width, label=label)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(datasets))])
    ax.set_xticklabels(datasets)
    ax.set_ylabel("KL(data || samples), k-NN estimate")
    ax.legend()
    fig.tight_layout()
    fig.savefig("kl_divergence.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    runs = load_runs()
    if not runs:
        raise SystemExit("no run listed in `labels` has a final_info.json")
    datasets = datasets_of(runs)
    plot_train_loss(runs, datasets)
    plot_samples(runs, datasets)
    plot_kl(runs, datasets)
