//! A request-spacing limiter, one per (engine, endpoint) for the whole process.
//!
//! Guarantee: the instants at which callers are let through are at least `1/rate`
//! apart. So in any window of `W` seconds at most `floor(rate * W) + 1` requests start
//! (for W = 1 s and rate 1: two requests, exactly 1 s apart, can both fall in a closed
//! 1-s window). No bursts: a limiter that sat idle does not save up tokens, because the
//! services count requests per second, not on average.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Engine;

#[derive(Debug)]
pub struct RateLimiter {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    interval: Duration,
    /// The earliest instant the next caller may go.
    next: Instant,
}

/// Why a caller was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    Cancelled,
    /// Its turn would come after the deadline; nothing was reserved.
    PastDeadline,
}

impl RateLimiter {
    pub fn new(rate_per_sec: f64) -> Self {
        Self {
            state: Mutex::new(State {
                interval: interval(rate_per_sec),
                next: Instant::now(),
            }),
        }
    }

    pub fn set_rate(&self, rate_per_sec: f64) {
        self.state.lock().unwrap().interval = interval(rate_per_sec);
    }

    pub fn interval(&self) -> Duration {
        self.state.lock().unwrap().interval
    }

    /// Waits for this caller's turn. A turn is taken at the moment it is granted
    /// (under the lock), so granted turns are always at least one interval apart,
    /// even when this process was stalled and several waiters wake late together:
    /// a late wake-up never turns into a burst.
    pub async fn acquire(&self, deadline: Instant, cancel: &CancellationToken) -> Result<(), Denied> {
        loop {
            let wait_until = {
                let mut s = self.state.lock().unwrap();
                let now = Instant::now();
                if s.next <= now {
                    if cancel.is_cancelled() {
                        return Err(Denied::Cancelled);
                    }
                    s.next = now + s.interval;
                    return Ok(());
                }
                if s.next > deadline {
                    return Err(Denied::PastDeadline);
                }
                s.next
            };
            tokio::select! {
                _ = cancel.cancelled() => return Err(Denied::Cancelled),
                _ = tokio::time::sleep_until(wait_until) => {}
            }
        }
    }

    /// Pushes every later caller back (after a 429, so the queue does not run into
    /// the same wall).
    pub fn hold_off(&self, by: Duration) {
        let mut s = self.state.lock().unwrap();
        let until = Instant::now() + by;
        if s.next < until {
            s.next = until;
        }
    }
}

fn interval(rate_per_sec: f64) -> Duration {
    if rate_per_sec.is_finite() && rate_per_sec > 0.0 {
        Duration::from_secs_f64(1.0 / rate_per_sec)
    } else {
        // A zero or nonsensical rate means "no proactive spacing".
        Duration::ZERO
    }
}

/// The process-wide limiter for `engine` at `endpoint`; the latest configured rate wins.
pub fn shared(engine: Engine, endpoint: &str, rate_per_sec: f64) -> Arc<RateLimiter> {
    type Registry = Mutex<HashMap<(Engine, String), Arc<RateLimiter>>>;
    static ALL: OnceLock<Registry> = OnceLock::new();
    let mut all = ALL.get_or_init(Default::default).lock().unwrap();
    let limiter = all
        .entry((engine, endpoint.trim_end_matches('/').to_owned()))
        .or_insert_with(|| Arc::new(RateLimiter::new(rate_per_sec)));
    limiter.set_rate(rate_per_sec);
    Arc::clone(limiter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spaces_callers_and_respects_deadline() {
        let l = RateLimiter::new(20.0);
        let cancel = CancellationToken::new();
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(100);
        let mut last = None;
        for _ in 0..4 {
            l.acquire(far, &cancel).await.unwrap();
            let now = Instant::now();
            if let Some(prev) = last {
                assert!(now - prev >= Duration::from_millis(49), "{:?}", now - prev);
            }
            last = Some(now);
        }
        // The next turn is ~50 ms away; a deadline before it is refused without waiting.
        assert_eq!(
            l.acquire(Instant::now(), &cancel).await,
            Err(Denied::PastDeadline)
        );
        cancel.cancel();
        assert_eq!(l.acquire(far, &cancel).await, Err(Denied::Cancelled));
    }

    #[test]
    fn shared_is_per_endpoint() {
        let a = shared(Engine::Arxiv, "http://x/", 1.0);
        let b = shared(Engine::Arxiv, "http://x", 4.0);
        let c = shared(Engine::Arxiv, "http://y", 1.0);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(a.interval(), Duration::from_millis(250));
    }
}
