"""Plot the runs listed in `labels`: training and validation loss over training
steps, averaged over seeds (train_loss.png, val_loss.png), and write each run's
generated text to samples.txt. Reads run_*/all_results.json.

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
    for key, title in [("train_loss", "Training loss"), ("val_loss", "Validation loss")]:
        fig, ax = plt.subplots(figsize=(6, 4))
        for label, by_dataset in runs.items():
            for dataset, seeds in by_dataset.items():
                steps = seeds[0]["step"]
                values = np.array([s[key] for s in seeds])
                mean, err = values.mean(0), values.std(0) / np.sqrt(len(seeds))
                name = label if len(by_dataset) == 1 else f"{label} ({dataset})"
                ax.plot(steps, mean, label=name)
                ax.fill_between(steps, mean - err, mean + err, alpha=0.2)
        ax.set_xlabel("training step")
        ax.set_ylabel(f"{title} (nats per character)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(f"{key}.png", dpi=120)
        plt.close(fig)
    with open("samples.txt", "w") as f:
        for label, by_dataset in runs.items():
            for dataset, seeds in by_dataset.items():
                for i, s in enumerate(seeds):
                    f.write(f"=== {label}, {dataset}, seed {i}\n{s['sample']}\n\n")
