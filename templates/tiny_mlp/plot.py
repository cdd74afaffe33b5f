"""Plot the runs of this template: validation accuracy and loss per dataset for each
run listed in `labels`. Uses matplotlib when it is installed; without it, writes the
same comparison as a text table (results_table.txt) so the step never fails.

Run from the template (or idea) folder:  python plot.py
"""

import json
import os

# run folder -> legend label. Only runs listed here are plotted.
labels = {
    "run_0": "Baseline",
}

METRICS = [("final_val_acc_mean", "Validation accuracy"), ("final_val_loss_mean", "Validation loss")]


def load_runs():
    runs = {}
    for run, label in labels.items():
        path = os.path.join(run, "final_info.json")
        if os.path.exists(path):
            with open(path) as f:
                runs[label] = json.load(f)
    return runs


def write_table(runs):
    datasets = sorted({d for info in runs.values() for d in info})
    lines = []
    for key, title in METRICS:
        lines.append(title)
        lines.append("run".ljust(20) + "".join(d.ljust(12) for d in datasets))
        for label, info in runs.items():
            cells = [f"{info[d]['means'].get(key, float('nan')):.4f}".ljust(12) if d in info else "-".ljust(12)
                     for d in datasets]
            lines.append(label.ljust(20) + "".join(cells))
        lines.append("")
    with open("results_table.txt", "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


def plot(runs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({d for info in runs.values() for d in info})
    for key, title in METRICS:
        fig, ax = plt.subplots(figsize=(6, 4))
        width = 0.8 / max(len(runs), 1)
        for i, (label, info) in enumerate(runs.items()):
            xs = [j + i * width for j in range(len(datasets))]
            ys = [info[d]["means"].get(key, 0.0) if d in info else 0.0 for d in datasets]
            errs = [info[d].get("stderrs", {}).get(key.replace("_mean", "_stderr"), 0.0) if d in info else 0.0
                    for d in datasets]
            ax.bar(xs, ys, width, yerr=errs, label=label)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(datasets))])
        ax.set_xticklabels(datasets)
        ax.set_ylabel(title)
        ax.legend()
        fig.tight_layout()
        name = "val_acc.png" if "acc" in key else "val_loss.png"
        fig.savefig(name)
        plt.close(fig)


if __name__ == "__main__":
    runs = load_runs()
    write_table(runs)
    try:
        plot(runs)
    except ImportError:
        print("matplotlib is not installed: wrote results_table.txt only")
