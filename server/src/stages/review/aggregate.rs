//! Combining an ensemble's reviews and the two decision rules.
//!
//! Each numeric field of the combined review is the mean of the members' values rounded
//! half to even (v1 used numpy's `round`, which does the same: 4.5 → 4, 5.5 → 6), so
//! aisci's scores match v1's for the same member reviews. The exact means are kept too.

use serde::{Deserialize, Serialize};

use super::form::{Decision, Review, SCORES};

/// The mean of each numeric field over the members, in v1's key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Means(pub Vec<(String, f64)>);

impl Means {
    pub fn of(members: &[Review]) -> Means {
        if members.is_empty() {
            return Means::default();
        }
        Means(
            SCORES
                .iter()
                .map(|(name, _, _)| {
                    let sum: f64 = members.iter().map(|r| f64::from(r.score(name).unwrap())).sum();
                    (name.to_string(), sum / members.len() as f64)
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Writes the rounded means into `review`'s numeric fields.
    pub fn apply(&self, review: &mut Review) {
        for (name, mean) in &self.0 {
            review.set_score(name, round_half_even(*mean));
        }
    }
}

/// `x` rounded to the nearest integer, ties to the even one (as Python's `round`).
pub fn round_half_even(x: f64) -> u8 {
    let floor = x.floor();
    let diff = x - floor;
    let r = if (diff - 0.5).abs() < 1e-9 {
        if floor % 2.0 == 0.0 {
            floor
        } else {
            floor + 1.0
        }
    } else {
        x.round()
    };
    r.clamp(0.0, 255.0) as u8
}

/// The calibrated decision: accept when Overall reaches the threshold (v1's paper
/// found 6, "Weak Accept", the best threshold for GPT-4o).
pub fn calibrated(overall: u8, threshold: u8) -> Decision {
    if overall >= threshold {
        Decision::Accept
    } else {
        Decision::Reject
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_to_even_like_python() {
        let cases = [
            (4.5, 4),
            (5.5, 6),
            (2.5, 2),
            (3.5, 4),
            (4.4, 4),
            (4.6, 5),
            (4.0, 4),
            (1.0 / 3.0 + 3.0, 3),
        ];
        for (x, want) in cases {
            assert_eq!(round_half_even(x), want, "{x}");
        }
    }

    #[test]
    fn calibrated_threshold_is_inclusive() {
        assert_eq!(calibrated(6, 6), Decision::Accept);
        assert_eq!(calibrated(5, 6), Decision::Reject);
        assert_eq!(calibrated(7, 8), Decision::Reject);
    }
}
