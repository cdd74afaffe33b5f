//! What every call cost, kept in memory as a list of serialisable records; totals per
//! stage, per idea and overall are derived from it, so a persisted list can be reloaded
//! and summed the same way.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Usage;

/// Totals over a set of calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub calls: u64,
    pub usage: Usage,
    pub cost_usd: f64,
}

/// One successful call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// RFC 3339 time the call finished.
    pub at: String,
    pub stage: String,
    pub idea: Option<String>,
    pub provider: String,
    /// The model that answered (the server's name, possibly dated).
    pub model: String,
    pub usage: Usage,
    pub cost_usd: f64,
    /// False when no price matched `model`; `cost_usd` is then 0.
    pub price_known: bool,
    /// Attempts it took, 1 when the first succeeded.
    pub attempts: u32,
    pub elapsed_ms: u64,
    pub finish_reason: Option<String>,
}

/// Totals derived from the records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerSnapshot {
    pub total: Totals,
    pub by_stage: BTreeMap<String, Totals>,
    pub by_idea: BTreeMap<String, Totals>,
    /// Calls whose model had no price (counted at $0).
    pub unpriced_calls: u64,
    pub unpriced_models: BTreeSet<String>,
    pub budget_usd: Option<f64>,
}

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    records: Vec<CallRecord>,
    total: Totals,
}

impl Ledger {
    pub fn push(&mut self, r: CallRecord) {
        add(&mut self.total, &r);
        self.records.push(r);
    }

    pub fn extend(&mut self, records: impl IntoIterator<Item = CallRecord>) {
        for r in records {
            self.push(r);
        }
    }

    pub fn total(&self) -> Totals {
        self.total
    }

    pub fn records(&self) -> &[CallRecord] {
        &self.records
    }

    pub fn snapshot(&self, budget_usd: Option<f64>) -> LedgerSnapshot {
        let mut s = LedgerSnapshot {
            total: self.total,
            budget_usd,
            ..LedgerSnapshot::default()
        };
        for r in &self.records {
            add(s.by_stage.entry(r.stage.clone()).or_default(), r);
            if let Some(idea) = &r.idea {
                add(s.by_idea.entry(idea.clone()).or_default(), r);
            }
            if !r.price_known {
                s.unpriced_calls += 1;
                s.unpriced_models.insert(r.model.clone());
            }
        }
        s
    }
}

impl Totals {
    /// The totals of `records`.
    pub fn of(records: &[CallRecord]) -> Totals {
        let mut t = Totals::default();
        for r in records {
            add(&mut t, r);
        }
        t
    }
}

fn add(t: &mut Totals, r: &CallRecord) {
    t.calls += 1;
    t.usage.input_tokens += r.usage.input_tokens;
    t.usage.cached_input_tokens += r.usage.cached_input_tokens;
    t.usage.cache_write_tokens += r.usage.cache_write_tokens;
    t.usage.output_tokens += r.usage.output_tokens;
    t.cost_usd += r.cost_usd;
}
