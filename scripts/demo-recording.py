#!/usr/bin/env python3
"""Writes the offline demo's recordings into templates/tiny_mlp/.aisci/replay/:

- demo.json: the model's side of the whole loop, in the order `aisci demo` asks (ideas,
  novelty for both ideas, the experiment agent, the paper, the review), hand-authored.
  The experiment edits are applied here to a copy of the template and run with python3,
  and every number the paper states is taken from those runs (the runs are seeded and
  pure Python, so `aisci demo` reproduces them); the paper's figure and notes replies
  come in two variants, with figures (matplotlib present) and without;
- literature/search/<hash>.json: the literature cache entries the two novelty queries hit,
  so the demo searches without a network (paper metadata constructed from the public
  records of the papers named; no abstract text is copied).

Run from the repository root after changing a prompt protocol or a fixture it uses:
    python3 scripts/demo-recording.py
"""
import json
import pathlib

root = pathlib.Path(__file__).resolve().parent.parent
replay = root / "templates/tiny_mlp/.aisci/replay"
fixtures = root / "tests/fixtures"

def fnv(s: str) -> str:
    h = 0xCBF29CE484222325
    for b in s.encode():
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"

def paper(pid, title, authors, venue, year, doi=None, arxiv=None, cites=None):
    return {"engine": "semanticscholar", "id": pid, "title": title, "authors": authors, "venue": venue,
            "year": year, "abstract": None, "citation_count": cites, "doi": doi, "arxiv_id": arxiv,
            "url": f"https://arxiv.org/abs/{arxiv}" if arxiv else (f"https://doi.org/{doi}" if doi else None),
            "bibtex": None}

QUERIES = {
    "edge of stability sharpness tiny mlp full-batch": [
        paper("arXiv:2103.00065", "Gradient Descent on Neural Networks Typically Occurs at the Edge of Stability",
              ["Jeremy M. Cohen", "Simran Kaur", "Yuanzhi Li", "J. Zico Kolter", "Ameet Talwalkar"], "ICLR", 2021,
              arxiv="2103.00065"),
        paper("arXiv:1803.05407", "Averaging Weights Leads to Wider Optima and Better Generalization",
              ["Pavel Izmailov", "Dmitrii Podoprikhin", "Timur Garipov", "Dmitry Vetrov", "Andrew Gordon Wilson"],
              "UAI", 2018, arxiv="1803.05407"),
    ],
    "margin based curriculum ordering of training examples": [
        paper("DOI:10.1145/1553374.1553380", "Curriculum Learning",
              ["Yoshua Bengio", "Jérôme Louradour", "Ronan Collobert", "Jason Weston"], "ICML", 2009,
              doi="10.1145/1553374.1553380"),
        paper("arXiv:1904.03626", "On The Power of Curriculum Learning in Training Deep Networks",
              ["Guy Hacohen", "Daphna Weinshall"], "ICML", 2019, arxiv="1904.03626"),
    ],
}

for query, papers in QUERIES.items():
    norm = " ".join(query.lower().split())
    key = f"semanticscholar\x1f{norm}\x1f10"
    entry = {"version": 1, "key": key, "engine": "semanticscholar", "query": norm, "limit": 10,
             "fetched_at": "2026-11-29T12:00:00Z", "papers": papers}
    (replay / "literature/search" / f"{fnv(key)}.json").write_text(json.dumps(entry, indent=1, ensure_ascii=False) + "\n")

def response(text, inp, out):
    return {"text": text, "usage": {"input_tokens": inp, "cached_input_tokens": 0, "cache_write_tokens": 0,
                                    "output_tokens": out}, "finish_reason": "stop"}

def ex(stage, text, inp, out, expect=None, variants=None, only_when=None):
    """One exchange; `variants` are (substring of the request, text) pairs tried first;
    with `only_when`, a call made only when the request holds that text (else passed over)."""
    e = {"stage": stage, "response": response(text, inp, out)}
    if expect:
        e["expect"] = expect
    if only_when:
        e["only_when"] = only_when
    if variants:
        e["variants"] = [{"when": w, "response": response(t, inp, out)} for w, t in variants]
    return e

ideas = json.loads((replay / "ideas.json").read_text())
exchanges = list(ideas["exchanges"])

# Novelty: the first idea is new, the second is not.
exchanges += [
    ex("novelty", 'THOUGHT:\nThe closest line of work is the edge-of-stability literature; I search for it.\n\nRESPONSE:\n```json\n{"Query": "edge of stability sharpness tiny mlp full-batch"}\n```', 2400, 60),
    ex("novelty", 'THOUGHT:\nPaper 1 documents the edge of stability for large networks on images; it does not study how a tiny tanh MLP on 2-D toy data behaves, nor relate it to the step-count-to-90% metric of this template. The idea is a small, new measurement.\nDecision made: novel.\n\nRESPONSE:\n```json\n{"Reason": "Known phenomenon, but not measured on tiny MLPs on these toy tasks or tied to time-to-accuracy.", "Closest": [1]}\n```', 3100, 90),
    ex("novelty", 'THOUGHT:\nOrdering examples by margin is a curriculum; I search for curriculum learning.\n\nRESPONSE:\n```json\n{"Query": "margin based curriculum ordering of training examples"}\n```', 2400, 55),
    ex("novelty", 'THOUGHT:\nPaper 1 and paper 2 already study easy-to-hard orderings, including scoring examples by a model\'s confidence; a margin curriculum is a special case.\nDecision made: not novel.\n\nRESPONSE:\n```json\n{"Reason": "Easy-to-hard curricula by confidence or margin are studied in papers 1 and 2.", "Closest": [1, 2]}\n```', 3000, 80),
]

# ------------------------------------------------------------------ the experiment agent
# Each reply is what the agent sends for one run; the edits are applied below to a copy of
# the template and run, so the paper's numbers are the runs' own.
import shutil
import subprocess
import tempfile

TEMPLATE = root / "templates/tiny_mlp"

def block(path, search, replace, fence="python"):
    return f"{path}\n```{fence}\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n```\n"

PROBE = '''# ---------------------------------------------------------------- sharpness probe
def flat_params(model):
    return [w for row in model.w1 for w in row] + model.b1 + model.w2 + [model.b2]


def set_params(model, theta):
    h = model.h
    model.w1 = [[theta[2 * j], theta[2 * j + 1]] for j in range(h)]
    model.b1 = list(theta[2 * h:3 * h])
    model.w2 = list(theta[3 * h:4 * h])
    model.b2 = theta[4 * h]


def full_grad(model, xs, ys):
    """Gradient of the mean training loss, in flat_params order."""
    h = model.h
    g = [0.0] * (4 * h + 1)
    for x, y in zip(xs, ys):
        a, p = model.forward(x)
        dz = p - y
        for j in range(h):
            da = dz * model.w2[j] * (1 - a[j] * a[j])
            g[2 * j] += da * x[0]
            g[2 * j + 1] += da * x[1]
            g[2 * h + j] += da
            g[3 * h + j] += dz * a[j]
        g[4 * h] += dz
    return [v / len(xs) for v in g]


def sharpness(model, xs, ys, iters=20, eps=1e-4):
    """Top Hessian eigenvalue of the mean training loss: power iteration on
    finite-difference Hessian-vector products."""
    theta = flat_params(model)
    v = [1.0] * len(theta)
    lam = 0.0
    for _ in range(iters):
        norm = math.sqrt(sum(c * c for c in v)) or 1.0
        v = [c / norm for c in v]
        set_params(model, [t + eps * c for t, c in zip(theta, v)])
        gp = full_grad(model, xs, ys)
        set_params(model, [t - eps * c for t, c in zip(theta, v)])
        gm = full_grad(model, xs, ys)
        hv = [(a - b) / (2 * eps) for a, b in zip(gp, gm)]
        lam = sum(a * b for a, b in zip(hv, v))
        v = hv
    set_param(model, theta)
    return lam


# ---------------------------------------------------------------- training
def run(dataset, seed, cfg):'''

RETURN_OLD = '''        "train_time": train_time,
    }'''
RETURN_NEW = '''        "train_time": train_time,
        "final_sharpness": sharpness(model, train_x, train_y),
        "stability_threshold": 2.0 / cfg["lr"],
    }'''
CFG = '    cfg = {"n_train": 200, "n_val": 200, "hidden": 8, "lr": %s, "epochs": 40}'

replies = [
    "Plan: the idea asks whether plain SGD drives this network to the edge of stability, where the "
    "top Hessian eigenvalue (sharpness) reaches 2/lr. Run 1 keeps the baseline configuration (lr 0.01) "
    "and adds a sharpness probe at the end of training: power iteration on finite-difference "
    "Hessian-vector products of the full-batch training loss. Runs 2 and 3 raise the learning rate to "
    "0.03 and 0.1, so the threshold 2/lr falls from 200 to 20 and we can see whether sharpness follows it.\n\n"
    + block("experiment.py", "# ---------------------------------------------------------------- training\ndef run(dataset, seed, cfg):", PROBE)
    + "\n" + block("experiment.py", RETURN_OLD, RETURN_NEW),
    "The probe restores the parameters with a misspelled helper; it is set_params.\n\n"
    + block("experiment.py", "    set_param(model, theta)\n    return lam", "    set_params(model, theta)\n    return lam"),
    "Run 1 measured sharpness far below 2/lr = 200 on every dataset. Run 2: learning rate 0.03 (threshold 66.7).\n\n"
    + block("experiment.py", CFG % "0.01", CFG % "0.03"),
    "Sharpness barely moved while the threshold fell to 66.7, and training got faster. Run 3: learning rate 0.1 (threshold 20).\n\n"
    + block("experiment.py", CFG % "0.03", CFG % "0.1"),
    "ALL_COMPLETED\n\n"
    + block("notes.txt", "Description: Baseline results.",
            "Description: Baseline results.\n"
            "## Run 1: Sharpness probe at the baseline learning rate 0.01\n"
            "## Run 2: Learning rate 0.03\n"
            "## Run 3: Learning rate 0.1"),
]

# Apply the replies' edits as aisci would, run each run, keep the results.
def apply(text, work):
    import re
    for m in re.finditer(r"^(\S+)\n```\w*\n<<<<<<< SEARCH\n(.*?)\n=======\n(.*?)\n>>>>>>> REPLACE\n```", text, re.S | re.M):
        f = work / m.group(1)
        src = f.read_text()
        assert src.count(m.group(2)) == 1, (m.group(1), m.group(2)[:80])
        f.write_text(src.replace(m.group(2), m.group(3)))

work = pathlib.Path(tempfile.mkdtemp(prefix="aisci-demo-recording-"))
shutil.copytree(TEMPLATE, work, dirs_exist_ok=True)
(work / "notes.txt").write_text("Description: Baseline results.\n")
runs = {}
def run_experiment(n, ok=True):
    r = subprocess.run(["python3", "experiment.py", f"--out_dir=run_{n}"], cwd=work, capture_output=True, text=True)
    assert (r.returncode == 0) == ok, r.stderr
    if ok:
        runs[n] = json.loads((work / f"run_{n}/final_info.json").read_text())
apply(replies[0], work); run_experiment(1, ok=False)
apply(replies[1], work); run_experiment(1)
apply(replies[2], work); run_experiment(2)
apply(replies[3], work); run_experiment(3)
runs[0] = json.loads((TEMPLATE / "run_0/final_info.json").read_text())

for text in replies:
    exchanges.append(ex("experiment", text, 5200, 420))

def m(run, ds, key):
    return runs[run][ds]["means"][key]

def f(x, digits=3):
    """As the paper writes it: `digits` significant digits, no trailing zeros."""
    s = f"{x:.{digits}g}"
    return s

DS = ["blobs", "moons", "circles"]

# The plot: the three runs that carry a sharpness value, and the figures the idea needs.
PLOT = (
    block("plot.py", '    "run_0": "Baseline",',
          '    "run_1": "lr 0.01 (baseline setting)",\n    "run_2": "lr 0.03",\n    "run_3": "lr 0.1",')
    + "\n" + block("plot.py",
        'METRICS = [("final_val_acc_mean", "Validation accuracy"), ("final_val_loss_mean", "Validation loss")]',
        'METRICS = [\n    ("final_val_acc_mean", "Validation accuracy"),\n    ("final_sharpness_mean", "Final sharpness (top Hessian eigenvalue)"),\n    ("steps_to_90_val_acc_mean", "SGD steps to 90% validation accuracy"),\n]\nFILES = {"final_val_acc_mean": "val_acc.png", "final_sharpness_mean": "sharpness.png",\n         "steps_to_90_val_acc_mean": "steps_to_90.png"}')
    + "\n" + block("plot.py", '        name = "val_acc.png" if "acc" in key else "val_loss.png"',
                   '        ax.set_xlabel("Dataset")\n        ax.set_title(title)\n        fig.tight_layout()\n        name = FILES[key]')
)
apply(PLOT, work)
exchanges.append(ex("experiment", PLOT, 5600, 380))

# With matplotlib there are figures, and the vision model looks at each (in file order):
# the legend of val_acc.png sits on the moons bars, so plot.py is revised once and every
# redrawn figure is looked at again. Without figures none of these calls is made.
def critique(file, ok, issues=()):
    verdict = json.dumps({"ok": ok, "issues": list(issues)})
    return ex("experiment", f"```json\n{verdict}\n```", 1400, 40, only_when=f"The figure {file}. What plot.py recorded")
FIGURE_FILES = ["sharpness.png", "steps_to_90.png", "val_acc.png"]
LEGEND = "The legend sits on top of the moons bars and hides them; place it outside the axes."
exchanges += [critique(f, f != "val_acc.png", [LEGEND] if f == "val_acc.png" else []) for f in FIGURE_FILES]
REVISE = (
    "The legend moves to the right of the axes in every figure, and the saved image is cropped to include it.\n\n"
    + block("plot.py", "        ax.legend()", '        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)')
    + "\n" + block("plot.py", "        fig.savefig(name)", '        fig.savefig(name, bbox_inches="tight")')
)
apply(REVISE, work)
exchanges.append(ex("experiment", REVISE, 6400, 160, only_when="found these problems"))
exchanges += [critique(f, True) for f in FIGURE_FILES]

NOTES_FIGURES = block("notes.txt", "## Run 3: Learning rate 0.1", "## Run 3: Learning rate 0.1\n" + "\n".join([
    "Figure val_acc.png: mean final validation accuracy per dataset (bars) for the three learning rates, with standard errors over three seeds.",
    f"  Moons and circles gain most from larger steps (moons {f(m(1,'moons','final_val_acc_mean'))} at lr 0.01, {f(m(3,'moons','final_val_acc_mean'))} at lr 0.1); blobs is flat.",
    "Figure sharpness.png: mean final sharpness (top Hessian eigenvalue of the training loss) per dataset and learning rate.",
    f"  All values lie between {f(min(m(r,d,'final_sharpness_mean') for r in (1,2,3) for d in DS), 2)} and {f(max(m(r,d,'final_sharpness_mean') for r in (1,2,3) for d in DS), 2)}, far below 2/lr (200, 66.7 and 20).",
    "Figure steps_to_90.png: mean SGD steps until validation accuracy first reaches 90%, per dataset and learning rate.",
    f"  On moons the count falls from {f(m(1,'moons','steps_to_90_val_acc_mean'),4)} (lr 0.01) to {f(m(3,'moons','steps_to_90_val_acc_mean'),4)} (lr 0.1).",
]))
NOTES_PLAIN = block("notes.txt", "## Run 3: Learning rate 0.1", "## Run 3: Learning rate 0.1\n" + "\n".join([
    "No figure was drawn (matplotlib is not installed); plot.py wrote the comparison to results_table.txt.",
    f"Final sharpness stays between {f(min(m(r,d,'final_sharpness_mean') for r in (1,2,3) for d in DS), 2)} and {f(max(m(r,d,'final_sharpness_mean') for r in (1,2,3) for d in DS), 2)} for every run, far below 2/lr.",
    f"On moons the steps to 90% validation accuracy fall from {f(m(1,'moons','steps_to_90_val_acc_mean'),4)} (lr 0.01) to {f(m(3,'moons','steps_to_90_val_acc_mean'),4)} (lr 0.1).",
]))
exchanges.append(ex("experiment", NOTES_PLAIN, 6100, 300, variants=[("sharpness.png:", NOTES_FIGURES)]))
shutil.rmtree(work)

# ------------------------------------------------------------------ the paper
# Every part, then the refinement; no citation rounds in the demo. Numbers come from `runs`.
TEX = "latex/template.tex"
TEMPLATE_TEX = (TEMPLATE / TEX).read_text()
def tex_block(search, replace):
    return f"{TEX}\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"

sh = {(r, d): m(r, d, "final_sharpness_mean") for r in (1, 2, 3) for d in DS}
lo, hi = min(sh.values()), max(sh.values())
steps = {(r, d): m(r, d, "steps_to_90_val_acc_mean") for r in (1, 3) for d in DS}
acc = {(r, d): m(r, d, "final_val_acc_mean") for r in (1, 3) for d in DS}
title = "Tiny MLPs Trained with Plain SGD Stay Far from the Edge of Stability"

PARTS = [
    "I set the title and the abstract.\n\n" + tex_block("\\title{TITLE HERE}", f"\\title{{{title}}}") + "\n" + tex_block("ABSTRACT HERE",
        "Gradient descent on large networks is known to drive the top Hessian eigenvalue of the loss, the\n"
        "sharpness, up to the stability threshold $2/\\eta$. We ask whether the same happens when a tiny\n"
        "tanh MLP is trained with per-example SGD on three synthetic two-dimensional datasets. Measuring\n"
        "sharpness exactly at the end of training, at learning rates 0.01, 0.03 and 0.1, we find it\n"
        f"between {f(lo, 2)} and {f(hi, 2)} in every case: far below thresholds of 200, 66.7 and 20. Larger steps\n"
        f"nonetheless train faster: on moons, the mean number of steps to 90\\% validation accuracy falls\n"
        f"from {f(steps[1,'moons'],4)} at learning rate 0.01 to {f(steps[3,'moons'],4)} at 0.1."),
    "The introduction.\n\n" + tex_block("INTRO HERE",
        "Full-batch gradient descent on neural networks often trains at the edge of stability: the\n"
        "sharpness rises until it reaches $2/\\eta$ and hovers there \\citep{cohen2021gradient}. Whether\n"
        "this describes small networks trained with noisy per-example updates is less clear, and at that\n"
        "scale the question can be answered exactly instead of approximately.\n\n"
        "We train a network with 33 parameters on three toy datasets, add an exact sharpness probe, and\n"
        "sweep the learning rate. Our contributions are a measurement of final sharpness against the\n"
        "stability threshold at three learning rates, and a comparison of how fast each setting reaches\n"
        "90\\% validation accuracy."),
    "Background.\n\n" + tex_block("BACKGROUND HERE",
        "For a loss $L(\\theta)$ with Hessian $H$, gradient descent with step size $\\eta$ is stable along\n"
        "the top eigenvector of $H$ only while its eigenvalue $\\lambda_{\\max}$ stays below $2/\\eta$.\n"
        "Stochastic gradient descent \\citep{robbins1951stochastic} adds noise from sampling single\n"
        "examples; its behaviour near this threshold is the subject of this study."),
    "The method.\n\n" + tex_block("METHOD HERE",
        "We estimate $\\lambda_{\\max}$ of the mean training loss by power iteration: each iteration forms a\n"
        "Hessian-vector product from two gradients at $\\theta \\pm \\epsilon v$ with $\\epsilon = 10^{-4}$,\n"
        "and 20 iterations are run once training ends. We record this final sharpness beside the\n"
        "threshold $2/\\eta$ for each dataset and seed."),
    "The experimental setup.\n\n" + tex_block("EXPERIMENTAL SETUP HERE",
        "The network is a 2-8-1 tanh MLP with a sigmoid output, trained with per-example SGD on the\n"
        "binary cross-entropy for 40 epochs of 200 training points, and evaluated on 200 validation points.\n"
        "The datasets are blobs, moons and circles; every setting uses three seeds. Run 1 keeps the\n"
        "baseline learning rate of 0.01, runs 2 and 3 use 0.03 and 0.1."),
    "The results; the figures drawn by plot.py are not available in this folder, so the template's figure goes.\n\n"
        + tex_block("RESULTS HERE", "RESULTS_TEXT")
        + "\n" + tex_block(TEMPLATE_TEX[TEMPLATE_TEX.index("\\begin{figure}"):TEMPLATE_TEX.index("\\end{figure}") + len("\\end{figure}")], ""),
    "The conclusion.\n\n" + tex_block("CONCLUSIONS HERE",
        "In a tiny tanh MLP trained with per-example SGD, final sharpness stays one to three orders of\n"
        "magnitude below the stability threshold $2/\\eta$ at every learning rate we tried, so these runs\n"
        "do not train at the edge of stability, while larger steps still reach 90\\% validation accuracy\n"
        "sooner. The probe measures sharpness once, at the end; tracking it during training, and sweeping\n"
        "to larger learning rates where instability must appear, are the next steps."),
    "Related work.\n\n" + tex_block("RELATED WORK HERE",
        "The edge-of-stability regime was documented for full-batch training of large networks\n"
        "\\citep{cohen2021gradient}; we test its prediction in the opposite corner, a network small enough\n"
        "for an exact probe and trained with single-example noise. The training setup follows standard\n"
        "practice \\citep{goodfellow2016deep,glorot2010understanding}."),
    "No changes needed",
]

RESULTS = (
    f"Table~\\ref{{tab:sharpness}} lists the final sharpness. At learning rate 0.01 it is {f(sh[1,'blobs'])} on blobs,\n"
    f"{f(sh[1,'moons'])} on moons and {f(sh[1,'circles'])} on circles, against a threshold of 200; at 0.1 it is\n"
    f"{f(sh[3,'blobs'])}, {f(sh[3,'moons'])} and {f(sh[3,'circles'])}, against 20. Raising the learning rate tenfold\n"
    "lowers the threshold tenfold but does not raise the sharpness towards it.\n\n"
    f"Training is faster with larger steps. On moons the mean number of steps to 90\\% validation accuracy\n"
    f"falls from {f(steps[1,'moons'],4)} to {f(steps[3,'moons'],4)}, and on circles from {f(steps[1,'circles'],4)} to {f(steps[3,'circles'],4)};\n"
    f"blobs reaches 90\\% within the first epoch ({f(steps[1,'blobs'],4)} steps) at every rate. Mean validation\n"
    f"accuracy on moons rises from {f(acc[1,'moons'])} to {f(acc[3,'moons'])}. With three seeds per setting, these\n"
    "differences are indicative rather than conclusive.\n\n"
    "\\begin{table}[h]\n\\centering\n\\caption{Final sharpness (mean over three seeds) and the threshold $2/\\eta$.}\n\\label{tab:sharpness}\n"
    "\\begin{tabular}{lcccc}\n\\toprule\nLearning rate & Blobs & Moons & Circles & $2/\\eta$ \\\\\n\\midrule\n"
    + "".join(
        f"{lr} & {f(sh[r,'blobs'])} & {f(sh[r,'moons'])} & {f(sh[r,'circles'])} & {f(m(r,'blobs','stability_threshold_mean'))} \\\\\n"
        for r, lr in ((1, "0.01"), (2, "0.03"), (3, "0.1")))
    + "\\bottomrule\n\\end{tabular}\n\\end{table}"
)
FIGURES = (
    "\\begin{figure}[h]\n\\centering\n"
    "\\includegraphics[width=0.48\\textwidth]{sharpness.png}\n"
    "\\includegraphics[width=0.48\\textwidth]{steps_to_90.png}\n"
    f"\\caption{{Left: final sharpness per dataset for learning rates 0.01, 0.03 and 0.1, between {f(lo,2)} and {f(hi,2)}\n"
    "everywhere. Right: SGD steps to 90\\% validation accuracy, fewer at larger learning rates.\n"
    "Bars are means over three seeds with standard errors.}\n\\label{fig:sharpness}\n\\end{figure}\n\n"
    "\\begin{figure}[h]\n\\centering\n\\includegraphics[width=0.6\\textwidth]{val_acc.png}\n"
    "\\caption{Final validation accuracy per dataset and learning rate (means over three seeds, standard errors).}\n"
    "\\label{fig:val-acc}\n\\end{figure}"
)
results_plain = PARTS[5].replace("RESULTS_TEXT", RESULTS)
results_figures = (
    "The results, with the three figures plot.py drew.\n\n"
    + tex_block("RESULTS HERE", RESULTS.replace("Table~\\ref{tab:sharpness} lists the final sharpness.",
                "Table~\\ref{tab:sharpness} and Figure~\\ref{fig:sharpness} show the final sharpness."))
    + "\n" + tex_block(TEMPLATE_TEX[TEMPLATE_TEX.index("\\begin{figure}"):TEMPLATE_TEX.index("\\end{figure}") + len("\\end{figure}")], FIGURES)
)
for i, text in enumerate(PARTS):
    if i == 5:
        exchanges.append(ex("writeup", results_plain, 7800, 650, variants=[("sharpness.png:", results_figures)]))
    else:
        exchanges.append(ex("writeup", text, 7800, 650))

# ------------------------------------------------------------------ the review
QUOTE = "Raising the learning rate tenfold\nlowers the threshold tenfold but does not raise the sharpness towards it."
def review(overall, weak, extra_thought=""):
    j = {
        "Summary": "The paper adds an exact sharpness probe to a 2-8-1 tanh MLP trained with per-example SGD on three synthetic 2-D datasets and reports final sharpness against 2/lr at three learning rates, with the steps needed to reach 90% validation accuracy.",
        "Strengths": ["An exact, cheap measurement at a scale where approximations are unnecessary.", "Every number is a mean over three seeds and is stated with its setting."],
        "Weaknesses": [
            {"text": weak, "quote": "does not raise the sharpness towards it"},
            "The sentence \"The probe measures sharpness once, at the end\" names the main limit: the edge-of-stability claim is about the trajectory, which the Method section does not measure.",
        ],
        "Originality": 2, "Quality": 2, "Clarity": 3, "Significance": 2,
        "Questions": [{"text": "Does sharpness approach 2/lr during training before it settles, and what happens at learning rates above 0.1?", "section": "Results"}],
        "Limitations": [{"text": "One architecture and three toy datasets; the conclusion says so, and it should also say that per-example noise, not network size alone, may explain the gap.", "section": "Conclusion"}],
        "Ethical Concerns": False, "Soundness": 2, "Presentation": 3, "Contribution": 2,
        "Overall": overall, "Confidence": 4, "Decision": "Reject",
    }
    return f"THOUGHT:\nA clean, honest measurement, but a narrow one.{extra_thought}\n\nREVIEW JSON:\n```json\n{json.dumps(j, indent=2)}\n```\n"

exchanges += [
    ex("review", review(4, "Sharpness is measured only at the end of training, so the paper cannot tell a sharpness that never rose from one that rose and fell."), 9000, 700),
    ex("review", review(4, "Three seeds and three learning rates: the sweep is too coarse to locate where, if anywhere, sharpness meets 2/lr."), 9000, 700),
    ex("review", review(4, "The sweep and the single end-of-training probe are too coarse to support a claim about the training dynamics."), 3200, 700, expect="reviews of the paper"),
    ex("review", review(4, "The sweep and the single end-of-training probe are too coarse to support a claim about the training dynamics.", " I am done"), 9900, 700, expect="Reflection round 1 of 1"),
]

out = {"about": "A hand-authored recording of the model's side of aisci's offline demo on tiny_mlp: ideas (the original ideas recording), novelty, the experiment agent, the paper and the review. No live model produced these responses; the paper's numbers are those of the runs the recorded edits produce; token counts are realistic estimates, not measurements. Made by scripts/demo-recording.py.",
       "model": ideas["model"], "vision": True, "exchanges": exchanges}
(replay / "demo.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
print(f"{len(exchanges)} exchanges; {len(QUERIES)} literature cache entries")
