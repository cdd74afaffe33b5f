#!/usr/bin/env python3
"""Writes the offline demo's recordings into templates/tiny_mlp/.aisci/replay/:

- demo.json: the model's side of the whole loop, in the order `aisci demo` asks (ideas,
  novelty for both ideas, the experiment agent, the paper, the review), hand-authored;
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

def ex(stage, text, inp, out, expect=None):
    e = {"stage": stage, "response": {"text": text, "usage": {"input_tokens": inp, "cached_input_tokens": 0,
                                                               "cache_write_tokens": 0, "output_tokens": out},
                                      "finish_reason": "stop"}}
    if expect:
        e["expect"] = expect
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

# The experiment agent, its runs, the plot and the notes (the scripted test conversation).
for n in ["1_wider", "2_failing", "3_fix", "4_done", "5_plot", "6_notes"]:
    text = (fixtures / "experiment" / f"{n}.md").read_text()
    if n == "5_plot":
        # Labels only: plot.py draws its figures when matplotlib is installed (the test
        # fixture's stand-in summary.png is not a real image).
        text = text[: text.index("plot.py", 10)].rstrip() + "\n"
    exchanges.append(ex("experiment", text, 5200, 420))

# The paper: every part, then the refinement; no citation rounds in the demo.
TEMPLATE_TEX = (root / "templates/tiny_mlp/latex/template.tex").read_text()
title = "Width and Step Size at the Edge of Stability in a Tiny MLP"
for n in ["01_title_abstract", "02_intro", "03_background", "04_method", "05_setup", "06_results",
          "07_conclusion", "08_related", "15_no_changes"]:
    text = (fixtures / "writeup" / f"{n}.txt").read_text()
    text = text.replace("Wider Hidden Layers for Tiny MLPs on Toy Datasets", title)
    if n == "06_results":
        # The figure block goes: whether plot.py can draw depends on matplotlib being
        # installed, and the paper must build either way.
        text = text.replace(" (Figure~\\ref{fig:results})", "")
        start = TEMPLATE_TEX.index("\\begin{figure}")
        end = TEMPLATE_TEX.index("\\end{figure}") + len("\\end{figure}")
        text += "\nlatex/template.tex\n<<<<<<< SEARCH\n" + TEMPLATE_TEX[start:end] + "\n=======\n>>>>>>> REPLACE\n"
    exchanges.append(ex("writeup", text, 7800, 650))

def review(overall, weak, extra_thought=""):
    j = {
        "Summary": "The paper trains a 2-8-1 tanh MLP with plain SGD on three synthetic 2-D datasets and reports how a wider hidden layer and a smaller initialisation scale change final accuracy and the number of steps to 90% validation accuracy.",
        "Strengths": ["Small, fully reproducible setup with seeds and standard errors.", "Results are stated with the numbers the runs produced."],
        "Weaknesses": [
            {"text": weak, "quote": "the wider layer reaches a mean validation accuracy of 0.97"},
            {"text": "The edge-of-stability framing is not tested: no sharpness or step-size sweep is reported.", "section": "Method"},
        ],
        "Originality": 2, "Quality": 2, "Clarity": 3, "Significance": 1,
        "Questions": [{"text": "How do the conclusions change with more seeds or a step-size sweep?", "section": "Results"}],
        "Limitations": [{"text": "Only three toy datasets and one architecture; nothing is claimed beyond them, which should be said plainly.", "section": "Conclusion"}],
        "Ethical Concerns": False, "Soundness": 2, "Presentation": 3, "Contribution": 1,
        "Overall": overall, "Confidence": 4, "Decision": "Reject",
    }
    return f"THOUGHT:\nThe experiments are clean but small.{extra_thought}\n\nREVIEW JSON:\n```json\n{json.dumps(j, indent=2)}\n```\n"

exchanges += [
    ex("review", review(3, "Only two runs beyond the baseline; the effect sizes are within a few seeds' noise."), 9000, 700),
    ex("review", review(4, "The comparison to the baseline uses three seeds; the differences may be noise."), 9000, 700),
    ex("review", review(3, "Only two runs and three seeds: the reported differences may be noise."), 3200, 700, expect="reviews of the paper"),
    ex("review", review(3, "Only two runs and three seeds: the reported differences may be noise.", " I am done"), 9900, 700, expect="Reflection round 1 of 1"),
]

out = {"about": "A hand-authored recording of the model's side of aisci's offline demo on tiny_mlp: ideas (the original ideas recording), novelty, the experiment agent, the paper and the review. No live model produced these responses; token counts are realistic estimates, not measurements. Made by scripts/demo-recording.py.",
       "model": ideas["model"], "exchanges": exchanges}
(replay / "demo.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
print(f"{len(exchanges)} exchanges; {len(QUERIES)} literature cache entries")
