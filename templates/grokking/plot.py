"""Plot the runs listed in `labels`: training and validation accuracy and loss over
training steps, one panel per operation, averaged over seeds (train_acc.png,
val_acc.png, train_loss.png, val_loss.png). Reads run_*/all_results.json.

Run from the template (or idea) folder:  python plot.py
"""

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

# run folder -> legend label. Only runs listed here are plotted.
labels = {
    "run_0": "Baseline",
}

METRICS = [
    ("train_acc", "Training accuracy"),
    ("val_acc", "Validation accuracy"),
    ("train_loss", "Training loss"),
    ("val_loss", "Validation loss"),
]


def load_runs():
    runs = {}
    for run, label in labels.items():
        path = os.path.join(run, "all_results.json")
        if os.path.exists(path):
            with open(path) as f:
                runs[label] = json.load(f)
    return runs


if __name__ == "__main__":
    runs = load_runs()
    if not runs:
        raise SystemExit("no run listed in `labels` has an all_results.json")
    ops = []
    for curves in runs.values():
        ops += [op for op in curves if op not in ops]
    for key, title in METRICS:
        fig, axes = plt.subplots(1, len(ops), figsize=(4 * len(ops), 3.2), squeeze=False)
        for ax, op in zip(axes[0], ops):
            for label, curves in runs.items():
                if op not in curves:
                    continue
                seeds = curves[op]
                steps = seeds[0]["step"]
                values = np.array([s[key] for s in seeds])
                mean, err = values.mean(0), values.std(0) / np.sqrt(len(seeds))
                ax.plot(steps, mean, label=label)
                ax.fill_between(steps, mean - err, mean + err, alpha=0.2)
            ax.set_title(op)
            ax.set_xlabel("training step")
            ax.set_ylabel(title)
            if "loss" in key:
                ax.set_yscale("log")
        axes[0][0].legend()
        fig.tight_layout()
        fig.savefig(f"{key}.png", dpi=120)
        plt.close(fig)
