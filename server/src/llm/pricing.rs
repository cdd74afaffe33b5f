//! List prices and the cost of one call.
//!
//! Source of the built-in table: `shared/fixtures/pricing/prices_usd_per_mtok.json`
//! (snapshot of the providers' pricing pages: OpenAI and Anthropic pricing docs,
//! api-docs.deepseek.com, ai.google.dev, openrouter.ai/api/v1/models; dates per entry
//! there). Prices drift: users override per model with `llm.prices`. A model we have no
//! price for costs 0 and is flagged as unpriced, never guessed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Price;

use super::Usage;

/// (model, input, cached input, cache write, output), USD per million tokens.
/// Anthropic's cache write is the 5-minute rate, the default TTL.
type Row = (&'static str, f64, Option<f64>, Option<f64>, f64);

#[rustfmt::skip]
const BUILTIN: &[Row] = &[
    // OpenAI (platform.openai.com/docs/pricing)
    ("gpt-4o",        2.50, Some(1.25),  None, 10.00),
    ("gpt-4o-mini",   0.15, Some(0.075), None, 0.60),
    ("o1",           15.00, Some(7.50),  None, 60.00),
    ("o3-mini",       1.10, Some(0.55),  None, 4.40),
    ("o4-mini",       1.10, Some(0.275), None, 4.40),
    ("o3",            2.00, Some(0.50),  None, 8.00),
    ("gpt-4.1",       2.00, Some(0.50),  None, 8.00),
    ("gpt-4.1-mini",  0.40, Some(0.10),  None, 1.60),
    ("gpt-4.1-nano",  0.10, Some(0.025), None, 0.40),
    ("gpt-5",         1.25, Some(0.125), None, 10.00),
    ("gpt-5-mini",    0.25, Some(0.025), None, 2.00),
    ("gpt-5.2",       1.75, Some(0.175), None, 14.00),
    ("gpt-5.4",       2.50, Some(0.25),  None, 15.00),
    // Anthropic (docs.anthropic.com/en/docs/about-claude/pricing)
    ("claude-opus-4-6",   5.00, Some(0.50), Some(6.25), 25.00),
    ("claude-opus-4-5",   5.00, Some(0.50), Some(6.25), 25.00),
    ("claude-opus-4-1",  15.00, Some(1.50), Some(18.75), 75.00),
    ("claude-opus-4",    15.00, Some(1.50), Some(18.75), 75.00),
    ("claude-opus-4-0",  15.00, Some(1.50), Some(18.75), 75.00),
    ("claude-sonnet-4-6", 3.00, Some(0.30), Some(3.75), 15.00),
    ("claude-sonnet-4-5", 3.00, Some(0.30), Some(3.75), 15.00),
    ("claude-sonnet-4",   3.00, Some(0.30), Some(3.75), 15.00),
    ("claude-sonnet-4-0", 3.00, Some(0.30), Some(3.75), 15.00),
    ("claude-3-7-sonnet", 3.00, Some(0.30), Some(3.75), 15.00),
    ("claude-3-5-sonnet", 3.00, Some(0.30), Some(3.75), 15.00),
    ("claude-haiku-4-5",  1.00, Some(0.10), Some(1.25), 5.00),
    ("claude-3-5-haiku",  0.80, Some(0.08), Some(1.00), 4.00),
    ("claude-3-haiku",    0.25, Some(0.03), Some(0.30), 1.25),
    // DeepSeek (api-docs.deepseek.com, V3.2 period from ~2025-09-29)
    ("deepseek-chat",     0.28, Some(0.028), None, 0.42),
    ("deepseek-reasoner", 0.28, Some(0.028), None, 0.42),
    // OpenRouter (routed-provider dependent; entries from public tables)
    ("meta-llama/llama-3.1-405b-instruct", 3.00, None, None, 3.00),
    ("deepseek/deepseek-chat",             0.14, None, None, 0.28),
    ("deepseek/deepseek-r1",               0.55, None, None, 2.19),
    // Google Gemini (ai.google.dev/gemini-api/docs/pricing; base tier, short prompts)
    ("gemini-1.5-flash",      0.075, None, None, 0.30),
    ("gemini-1.5-pro",        1.25,  None, None, 5.00),
    ("gemini-2.0-flash",      0.10,  None, None, 0.40),
    ("gemini-2.0-flash-lite", 0.075, None, None, 0.30),
    ("gemini-2.5-flash",      0.30,  None, None, 2.50),
    ("gemini-2.5-flash-lite", 0.10,  None, None, 0.40),
    ("gemini-2.5-pro",        1.25,  None, None, 10.00),
    ("gemini-3-flash",        0.50,  None, None, 3.00),
    ("gemini-3.1-pro",        2.00,  None, None, 12.00),
];

/// The cost of one call, split the way the bill is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CostBreakdown {
    pub usd: f64,
    /// False when no price matched the model: `usd` is then 0, not an estimate.
    pub price_known: bool,
}

/// Model name → price. Lookups tolerate dated and tagged names.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self::builtin()
    }
}

impl PriceTable {
    pub fn builtin() -> Self {
        let prices = BUILTIN
            .iter()
            .map(|&(model, input, cached_input, cache_write, output)| {
                (
                    model.to_owned(),
                    Price {
                        input,
                        cached_input,
                        cache_write,
                        output,
                    },
                )
            })
            .collect();
        Self { prices }
    }

    pub fn empty() -> Self {
        Self {
            prices: BTreeMap::new(),
        }
    }

    /// The built-in table with the user's `llm.prices` on top.
    pub fn with_overrides(overrides: &BTreeMap<String, Price>) -> Self {
        let mut t = Self::builtin();
        for (model, price) in overrides {
            t.set(model, *price);
        }
        t
    }

    pub fn set(&mut self, model: &str, price: Price) {
        self.prices.insert(model.trim().to_ascii_lowercase(), price);
    }

    /// The price for `model`: exact name first, then with date/`-latest`/`-preview`
    /// suffixes removed (`gpt-4o-2024-11-20` → `gpt-4o`,
    /// `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`), then without an OpenRouter
    /// `vendor/` prefix. No looser prefix matching: `gpt-5-nano` must not be billed as
    /// `gpt-5`.
    pub fn lookup(&self, model: &str) -> Option<Price> {
        let name = model.trim().to_ascii_lowercase();
        let mut candidates = vec![name.clone()];
        let stripped = strip_version_suffixes(&name);
        if stripped != name {
            candidates.push(stripped.clone());
        }
        if let Some((_, bare)) = stripped.split_once('/') {
            candidates.push(bare.to_owned());
            candidates.push(strip_version_suffixes(bare));
        }
        candidates.iter().find_map(|c| self.prices.get(c).copied())
    }

    pub fn cost(&self, model: &str, usage: &Usage) -> CostBreakdown {
        match self.lookup(model) {
            Some(p) => CostBreakdown {
                usd: cost_of(&p, usage),
                price_known: true,
            },
            None => CostBreakdown {
                usd: 0.0,
                price_known: false,
            },
        }
    }
}

/// `usage.input_tokens` includes cached reads and cache writes (our normal form), so the
/// uncached part is what remains. Without a separate price, cached and written tokens
/// are billed at the input price: an upper bound rather than an invented discount.
pub fn cost_of(p: &Price, u: &Usage) -> f64 {
    let cached = u.cached_input_tokens.min(u.input_tokens);
    let written = u.cache_write_tokens.min(u.input_tokens - cached);
    let plain = u.input_tokens - cached - written;
    let per_token = |tokens: u64, usd_per_m: f64| tokens as f64 * usd_per_m / 1_000_000.0;
    per_token(plain, p.input)
        + per_token(cached, p.cached_input.unwrap_or(p.input))
        + per_token(written, p.cache_write.unwrap_or(p.input))
        + per_token(u.output_tokens, p.output)
}

fn strip_version_suffixes(name: &str) -> String {
    let mut s = name.to_owned();
    loop {
        let before = s.len();
        for tag in ["-latest", "-preview", "-exp"] {
            if let Some(rest) = s.strip_suffix(tag) {
                s = rest.to_owned();
            }
        }
        // -YYYY-MM-DD, -YYYYMMDD, -MM-DD (Gemini previews), -MMDD
        let parts: Vec<&str> = s.split('-').collect();
        let is_num = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
        let n = parts.len();
        if n > 3 && is_num(parts[n - 3], 4) && is_num(parts[n - 2], 2) && is_num(parts[n - 1], 2) {
            s = parts[..n - 3].join("-");
        } else if n > 1 && (is_num(parts[n - 1], 8) || is_num(parts[n - 1], 4)) {
            s = parts[..n - 1].join("-");
        } else if n > 2
            && is_num(parts[n - 2], 2)
            && is_num(parts[n - 1], 2)
            && parts[n - 3].bytes().any(|b| b.is_ascii_alphabetic())
        {
            s = parts[..n - 2].join("-");
        }
        if s.len() == before {
            return s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price_of(model: &str) -> Option<f64> {
        PriceTable::builtin().lookup(model).map(|p| p.input)
    }

    #[test]
    fn dated_and_tagged_names_match() {
        assert_eq!(price_of("gpt-4o-2024-11-20"), Some(2.50));
        assert_eq!(price_of("gpt-4o-mini-2024-07-18"), Some(0.15));
        assert_eq!(price_of("GPT-4o"), Some(2.50));
        assert_eq!(price_of("o3-mini-2025-01-31"), Some(1.10));
        assert_eq!(price_of("claude-sonnet-4-5-20250929"), Some(3.00));
        assert_eq!(price_of("claude-3-5-sonnet-20241022"), Some(3.00));
        assert_eq!(price_of("claude-3-5-sonnet-latest"), Some(3.00));
        assert_eq!(price_of("claude-opus-4-20250514"), Some(15.00));
        assert_eq!(price_of("claude-haiku-4-5"), Some(1.00));
        assert_eq!(price_of("gemini-2.5-flash-preview-05-20"), Some(0.30));
        assert_eq!(price_of("deepseek/deepseek-r1"), Some(0.55));
        assert_eq!(price_of("openai/gpt-4o"), Some(2.50));
    }

    #[test]
    fn unknown_models_are_not_guessed() {
        assert_eq!(price_of("gpt-5-nano"), None);
        assert_eq!(price_of("llama3.1:8b"), None);
        assert_eq!(price_of("o1-mini"), None);
        let c = PriceTable::builtin().cost(
            "my-local-model",
            &Usage {
                input_tokens: 1000,
                ..Usage::default()
            },
        );
        assert_eq!(
            c,
            CostBreakdown {
                usd: 0.0,
                price_known: false
            }
        );
    }

    #[test]
    fn overrides_win_and_can_add_models() {
        let mut o = BTreeMap::new();
        o.insert(
            "gpt-4o".to_string(),
            Price {
                input: 1.0,
                cached_input: None,
                cache_write: None,
                output: 2.0,
            },
        );
        o.insert(
            "llama3.1:8b".to_string(),
            Price {
                input: 0.0,
                cached_input: None,
                cache_write: None,
                output: 0.0,
            },
        );
        let t = PriceTable::with_overrides(&o);
        assert_eq!(t.lookup("gpt-4o-2024-11-20").unwrap().input, 1.0);
        assert!(t.cost("llama3.1:8b", &Usage::default()).price_known);
    }

    #[test]
    fn openai_cost_arithmetic_with_cached_subset() {
        // Real gpt-4o-2024-11-20 usage: 1358 prompt (1024 cached), 140 completion.
        let u = Usage {
            input_tokens: 1358,
            cached_input_tokens: 1024,
            cache_write_tokens: 0,
            output_tokens: 140,
        };
        let c = PriceTable::builtin().cost("gpt-4o-2024-11-20", &u);
        let want = (334.0 * 2.50 + 1024.0 * 1.25 + 140.0 * 10.0) / 1e6;
        assert!((c.usd - want).abs() < 1e-12, "{} vs {want}", c.usd);
    }

    #[test]
    fn anthropic_cost_arithmetic_with_cache_write_and_read() {
        // Normalised from input 21 + cache_creation 1834.
        let write = Usage {
            input_tokens: 1855,
            cached_input_tokens: 0,
            cache_write_tokens: 1834,
            output_tokens: 61,
        };
        let c = PriceTable::builtin().cost("claude-sonnet-4-5-20250929", &write);
        let want = (21.0 * 3.0 + 1834.0 * 3.75 + 61.0 * 15.0) / 1e6;
        assert!((c.usd - want).abs() < 1e-12);
        let read = Usage {
            input_tokens: 1855,
            cached_input_tokens: 1834,
            cache_write_tokens: 0,
            output_tokens: 47,
        };
        let c = PriceTable::builtin().cost("claude-sonnet-4-5-20250929", &read);
        let want = (21.0 * 3.0 + 1834.0 * 0.30 + 47.0 * 15.0) / 1e6;
        assert!((c.usd - want).abs() < 1e-12);
    }
}
