//! Deterministic generator of realistic experiment scripts (in the style of an
//! AI-Scientist template's `experiment.py`), so every run opens the same text.

use std::fmt::Write;

/// Marker line placed near the middle of `experiment.py`; edits are typed after it.
pub const EDIT_MARKER: &str = "# --- tuning notes (β schedule — edited during the benchmark) ---";

/// Small xorshift PRNG: stable across platforms and releases.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn float(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() % 10_000) as f64 / 10_000.0 * (hi - lo)
    }
}

const HEADER: &str = r#"import argparse
import json
import math
import os
import pickle
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F

# Reference: every run writes final_info.json with {"<dataset>": {"means": {...}}}.
# Unicode in comments keeps UTF-8 byte offsets ≠ UTF-16 offsets: α, β₁, ∇L, 𝔼[x].


@dataclass
class RunConfig:
    out_dir: str = "run_0"
    dataset: str = "shakespeare_char"
    batch_size: int = 64
    block_size: int = 256
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.2
    learning_rate: float = 1e-3
    max_iters: int = 5000
    weight_decay: float = 1e-1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    warmup_iters: int = 100
    seed: int = 1337
    tags: list = field(default_factory=list)

"#;

const FOOTER: &str = r#"

def main():
    parser = argparse.ArgumentParser(description="Run experiment")
    parser.add_argument("--out_dir", type=str, default="run_0", help="Output directory")
    args = parser.parse_args()
    cfg = RunConfig(out_dir=args.out_dir)
    os.makedirs(cfg.out_dir, exist_ok=True)
    final_info, all_results = train_and_evaluate(cfg)
    with open(os.path.join(cfg.out_dir, "final_info.json"), "w") as f:
        json.dump({cfg.dataset: {"means": final_info}}, f, indent=2)
    with open(os.path.join(cfg.out_dir, "all_results.npy"), "wb") as f:
        np.save(f, all_results)


if __name__ == "__main__":
    main()
"#;

const ACTIVATIONS: &[&str] = &["F.gelu", "F.relu", "F.silu", "torch.tanh"];
const NORMS: &[&str] = &["nn.LayerNorm", "nn.BatchNorm1d", "nn.Identity"];
const METRICS: &[&str] = &["loss", "val_loss", "accuracy", "perplexity", "grad_norm"];
const OPTIMS: &[&str] = &["AdamW", "Adam", "SGD"];

/// One generated unit: a module class, its training step and an evaluation helper.
fn block(rng: &mut Rng, k: usize) -> String {
    let act = rng.pick(ACTIVATIONS);
    let norm = rng.pick(NORMS);
    let metric = rng.pick(METRICS);
    let optim = rng.pick(OPTIMS);
    let hidden = 64 << (rng.next() % 4);
    let drop = rng.float(0.0, 0.3);
    let lr = rng.float(1e-4, 3e-3);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"

class Block{k}(nn.Module):
    """Residual MLP block #{k} ({act}, hidden={hidden})."""

    def __init__(self, n_embd: int, dropout: float = {drop:.3}):
        super().__init__()
        self.norm = {norm}(n_embd)
        self.fc_in = nn.Linear(n_embd, {hidden})
        self.fc_out = nn.Linear({hidden}, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc_in(self.norm(x))
        h = {act}(h)
        h = self.dropout(self.fc_out(h))
        return x + h


def get_lr_{k}(it: int, cfg: RunConfig, min_lr: float = {lr:.2e}) -> float:
    # Linear warm-up, then cosine decay to min_lr.
    if it < cfg.warmup_iters:
        return cfg.learning_rate * it / cfg.warmup_iters
    decay_ratio = (it - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * min(1.0, decay_ratio)))
    return min_lr + coeff * (cfg.learning_rate - min_lr)


def train_step_{k}(model, batch, optimizer, cfg: RunConfig, it: int) -> dict:
    model.train()
    x, y = batch
    for group in optimizer.param_groups:
        group["lr"] = get_lr_{k}(it, cfg)
    logits = model(x)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    return {{"{metric}": loss.item(), "grad_norm": float(grad_norm), "iter": it}}


@torch.no_grad()
def evaluate_{k}(model, loader, eval_iters: int = {eval_iters}) -> dict:
    model.eval()
    losses = torch.zeros(eval_iters)
    for i, (x, y) in enumerate(loader):
        if i >= eval_iters:
            break
        logits = model(x)
        losses[i] = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1)).item()
    return {{"val_{metric}": losses.mean().item(), "optimizer": "{optim}"}}
"#,
        eval_iters = 50 + rng.next() % 150,
    );
    s
}

const TRAIN_AND_EVALUATE: &str = r#"

def train_and_evaluate(cfg: RunConfig):
    torch.manual_seed(cfg.seed)
    model = nn.Sequential(*[Block0(cfg.n_embd, cfg.dropout) for _ in range(cfg.n_layer)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))
    all_results, t0 = [], time.time()
    for it in range(cfg.max_iters):
        x = torch.randn(cfg.batch_size, cfg.n_embd)
        stats = train_step_0(model, (x, x.argmax(-1)), optimizer, cfg, it)
        all_results.append(stats)
    final_info = {"loss": all_results[-1]["loss"], "total_train_time": time.time() - t0}
    return final_info, all_results
"#;

/// A Python script of exactly `lines` lines (at least ~150), with `EDIT_MARKER`
/// as a top-level comment near the middle.
pub fn experiment_py(lines: usize) -> String {
    let mut rng = Rng(0x5eed_a15c_1e7c_e5e1);
    let mut body = String::from(HEADER);
    body.push_str(TRAIN_AND_EVALUATE);
    let fixed = count_lines(HEADER) + count_lines(TRAIN_AND_EVALUATE) + count_lines(FOOTER);
    let budget = lines.saturating_sub(fixed);
    let mut used = 0;
    let mut k = 0;
    let mut marker_done = false;
    loop {
        if !marker_done && used >= budget / 2 {
            body.push('\n');
            body.push_str(EDIT_MARKER);
            body.push('\n');
            used += 2;
            marker_done = true;
        }
        let b = block(&mut rng, k);
        if used + count_lines(&b) > budget {
            break;
        }
        used += count_lines(&b);
        body.push_str(&b);
        k += 1;
    }
    if !marker_done {
        body.push('\n');
        body.push_str(EDIT_MARKER);
        body.push('\n');
        used += 2;
    }
    // Pad with module-level constants to hit the exact line count.
    for i in used..budget {
        let _ = writeln!(body, "CONST_{i} = {:.4}  # tuned", rng.float(0.0, 10.0));
    }
    body.push_str(FOOTER);
    debug_assert_eq!(count_lines(&body), lines.max(fixed));
    body
}

/// A Python module of at least `bytes` bytes, varied by `seed`.
pub fn large_module(seed: u64, bytes: usize) -> String {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (seed.wrapping_add(1)).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut s = String::from(HEADER);
    let mut k = 0;
    while s.len() < bytes {
        s.push_str(&block(&mut rng, k));
        k += 1;
    }
    s
}

const TOPICS: &[&str] = &[
    "learning-rate warm-up",
    "weight decay on norms",
    "gradient clipping thresholds",
    "label smoothing",
    "dropout schedules",
    "initialisation scale",
    "batch-size ramps",
    "cosine restarts",
];

/// An aisci ideas archive (`ideas.json`): a pretty-printed array of `n` ideas.
/// Written by hand so the key order does not depend on serde_json's features.
pub fn ideas_json(n: usize) -> String {
    let mut rng = Rng(0x1dea_5eed_0000_0001);
    let mut s = String::from("[\n");
    for i in 0..n {
        let topic = rng.pick(TOPICS);
        let settings = 3 + rng.next() % 4;
        let (int, feas, nov) = (1 + rng.next() % 10, 1 + rng.next() % 10, 1 + rng.next() % 10);
        let _ = write!(
            s,
            r#"    {{
        "Name": "{name}_{i}",
        "Title": "Does {topic} help small transformers? Study {i} on character-level data",
        "Experiment": "Vary {topic} over {settings} settings in experiment.py, keep every other hyper-parameter fixed, and report final validation loss and steps to reach loss 1.5 per dataset.",
        "Interestingness": {int},
        "Feasibility": {feas},
        "Novelty": {nov}"#,
            name = topic.replace([' ', '-'], "_"),
        );
        if i % 3 == 0 {
            let _ = write!(s, ",\n        \"novel\": {}", rng.next() % 2 == 0);
        }
        s.push_str(if i + 1 < n { "\n    },\n" } else { "\n    }\n" });
    }
    s.push_str("]\n");
    s
}

fn count_lines(s: &str) -> usize {
    s.matches('\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiment_has_exact_lines_and_one_marker() {
        for n in [200, 1000, 5000] {
            let doc = experiment_py(n);
            assert_eq!(count_lines(&doc), n);
            assert_eq!(doc.matches(EDIT_MARKER).count(), 1);
        }
        assert_eq!(experiment_py(5000), experiment_py(5000));
    }

    #[test]
    fn ideas_json_parses() {
        let v: serde_json::Value = serde_json::from_str(&ideas_json(50)).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 50);
    }

    #[test]
    fn large_module_size_and_variety() {
        let a = large_module(0, 1 << 20);
        assert!(a.len() >= 1 << 20 && a.len() < (1 << 20) + 4096);
        assert_ne!(a, large_module(1, 1 << 20));
    }
}
