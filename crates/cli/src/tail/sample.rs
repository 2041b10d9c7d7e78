//! Per-key dynamic sampling, as honeytail's (dynsampler-go's "average sample
//! rate"): keys are counted over a window; at its end each key gets a rate
//! such that the overall rate is about the goal, frequent keys are sampled
//! harder and rare keys are kept more often (the share of kept events per key
//! grows with the logarithm of its count). The SDK offers only a fixed rate,
//! so the choice is made here and events go out with `send_presampled`.
//!
//! Until the first window has ended every key gets the goal rate; after it,
//! a key not seen in the last window gets rate 1 (it is rare), as in
//! dynsampler-go. Bounds: at most [`MAX_KEYS`] distinct keys are counted per
//! window; beyond that, new keys are not counted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Distinct keys counted per window.
pub const MAX_KEYS: usize = 10_000;

pub struct DynSampler {
    goal: u32,
    window: Duration,
    window_start: Instant,
    counts: HashMap<String, u64>,
    rates: HashMap<String, u32>,
    have_data: bool,
    rng: u64,
}

impl DynSampler {
    /// A sampler aiming at one kept event in `goal`, recomputing every `window`.
    pub fn new(goal: u32, window: Duration) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32);
        DynSampler {
            goal: goal.max(1),
            window,
            window_start: Instant::now(),
            counts: HashMap::new(),
            rates: HashMap::new(),
            have_data: false,
            rng: seed | 1,
        }
    }

    /// The rate for this key, counting it; `Some(rate)` if the event is kept.
    /// Costs a hash lookup or two and, once per window, a pass over the keys.
    pub fn sample(&mut self, key: &str, now: Instant) -> Option<u32> {
        if now.duration_since(self.window_start) >= self.window {
            if !self.counts.is_empty() {
                self.rates = rates(self.goal, &self.counts);
                self.have_data = true;
            }
            self.counts.clear();
            self.window_start = now;
        }
        if let Some(c) = self.counts.get_mut(key) {
            *c += 1;
        } else if self.counts.len() < MAX_KEYS {
            self.counts.insert(key.to_owned(), 1);
        }
        let rate = match self.rates.get(key) {
            Some(&r) => r,
            None if self.have_data => 1,
            None => self.goal,
        };
        (self.next() % u64::from(rate) == 0).then_some(rate)
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: enough for sampling decisions.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// dynsampler-go's AvgSampleRate rule.
fn rates(goal: u32, counts: &HashMap<String, u64>) -> HashMap<String, u32> {
    let total: u64 = counts.values().sum();
    let mut out = HashMap::with_capacity(counts.len());
    if total == 0 {
        return out;
    }
    let goal_count = total as f64 / f64::from(goal);
    let log_sum: f64 = counts.values().map(|&c| (c as f64).log10()).sum();
    let goal_ratio = if log_sum > 0.0 {
        goal_count / log_sum
    } else {
        goal_count
    };
    let mut keys: Vec<(&String, u64)> = counts.iter().map(|(k, &c)| (k, c)).collect();
    keys.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)));
    let mut extra = 0.0f64;
    let mut remaining = keys.len() as f64;
    for (k, count) in keys {
        let count = count as f64;
        let mut goal_for_key = (count.log10() * goal_ratio).max(1.0);
        let extra_for_key = extra / remaining;
        goal_for_key += extra_for_key;
        extra -= extra_for_key;
        remaining -= 1.0;
        let rate = if count <= goal_for_key {
            extra += goal_for_key - count;
            1
        } else {
            let r = (count / goal_for_key).ceil();
            extra += goal_for_key - count / r;
            r.min(f64::from(u32::MAX)) as u32
        };
        out.insert(k.clone(), rate.max(1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rare_keys_kept_frequent_keys_sampled() {
        let mut counts = HashMap::new();
        counts.insert("200".to_owned(), 100_000);
        counts.insert("500".to_owned(), 10);
        let r = rates(10, &counts);
        assert_eq!(r["500"], 1);
        assert!(r["200"] > 10, "{r:?}");
        // Overall about one in ten kept.
        let kept = 100_000.0 / f64::from(r["200"]) + 10.0;
        assert!((kept / 100_010.0 - 0.1).abs() < 0.03, "{kept}");
    }

    #[test]
    fn windows_apply_learned_rates() {
        let mut s = DynSampler::new(10, Duration::from_millis(1));
        let t0 = Instant::now();
        for _ in 0..10_000 {
            s.sample("common", t0);
        }
        s.sample("rare", t0);
        let later = t0 + Duration::from_secs(1);
        // After the window, "rare" gets rate 1: always kept.
        for _ in 0..5 {
            assert_eq!(s.sample("rare", later), Some(1));
        }
        let kept = (0..10_000)
            .filter(|_| s.sample("common", later).is_some())
            .count();
        assert!(kept < 2_000, "{kept}");
    }
}
