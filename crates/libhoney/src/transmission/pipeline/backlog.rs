//! When the batcher counts as behind (so that `send` encodes into lanes), and
//! the rhythm of its rounds: the policy both drivers' batcher loops follow.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// While events keep coming, both batchers take them off the queue in rounds
/// this far apart instead of waiting on it: a batcher waiting on the queue is
/// woken by every `send` (a futex call on the sending thread).
pub(crate) const ROUND_PAUSE: Duration = Duration::from_millis(1);

/// After this many empty rounds a batcher waits on its queue again, so that
/// an idle client costs nothing.
pub(crate) const IDLE_ROUNDS: u32 = 50;

/// For [`EncodeOn::Adaptive`]: whether the batcher is behind. Set by the
/// batcher (rarely: only when it changes), read by every `send` (a load of
/// a line that stays in the sending cores' caches).
#[derive(Debug, Default)]
pub(crate) struct Behind(AtomicBool);

impl Behind {
    #[inline]
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// How many rounds in a row the batcher's queue must stay nearly empty
/// before `send` stops encoding: a batcher that is only just keeping up
/// would otherwise flip back and forth, and take on the encoding exactly
/// when it has the least time for it.
const CALM_ROUNDS: u32 = 100;

/// The batcher's side of [`Behind`]: behind once more than `behind_above`
/// events are still waiting after one of its rounds; caught up again once at
/// most a quarter of that was waiting after [`CALM_ROUNDS`] rounds in a row.
///
/// `behind_above` is a sixteenth of the queue, but at least 512 events (and
/// at most a quarter of the queue). What waits after a round of a batcher
/// that keeps up is what arrived while it worked, compressing a body among
/// other things: at 300,000 events/s that is about a hundred events. With the
/// default queue of 2,048, a sixteenth (128, calm at 32) had the batcher
/// counted behind at that rate for good, and every `send` encoding (p50 700
/// ns instead of 140). A queue under 64 is behind with anything left, and
/// caught up once it stayed empty.
pub(crate) struct BacklogWatch {
    behind_above: usize,
    calm: u32,
}

/// How many waiting events make the batcher "behind" (see [`BacklogWatch`]),
/// for a queue of `capacity`: a sixteenth, at least 512, at most a quarter.
pub(crate) fn behind_above(capacity: usize) -> usize {
    (capacity / 16).max(512).min(capacity / 4)
}

impl BacklogWatch {
    pub(crate) fn new(capacity: usize) -> Self {
        BacklogWatch {
            behind_above: behind_above(capacity),
            calm: 0,
        }
    }

    /// After a round that left `backlog` messages in the queue.
    pub(crate) fn after_round(&mut self, backlog: usize, behind: &Behind) {
        if backlog <= self.behind_above / 4 {
            self.calm = self.calm.saturating_add(1);
        } else {
            self.calm = 0;
        }
        let was = behind.get();
        if !was && backlog > self.behind_above {
            behind.0.store(true, Ordering::Relaxed);
        } else if was && self.calm >= CALM_ROUNDS {
            behind.0.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batcher_is_behind_past_a_sixteenth_and_caught_up_after_calm_rounds() {
        let behind = Behind::default();
        let mut watch = BacklogWatch::new(16_000);
        // Up to a sixteenth waiting: not behind.
        watch.after_round(1000, &behind);
        assert!(!behind.get());
        watch.after_round(1001, &behind);
        assert!(behind.get(), "more than a sixteenth waits");
        // A nearly empty queue for fewer than CALM_ROUNDS rounds: still behind.
        for _ in 0..CALM_ROUNDS - 1 {
            watch.after_round(0, &behind);
        }
        assert!(behind.get());
        // One round with more than a quarter of that waiting starts the count again.
        watch.after_round(251, &behind);
        for _ in 0..CALM_ROUNDS - 1 {
            watch.after_round(250, &behind);
        }
        assert!(behind.get());
        watch.after_round(250, &behind);
        assert!(!behind.get(), "caught up after CALM_ROUNDS calm rounds");
        // Between the two thresholds nothing changes.
        watch.after_round(600, &behind);
        assert!(!behind.get());
    }

    #[test]
    fn the_backlog_thresholds_have_a_floor_of_512_events_and_a_ceiling_of_a_quarter() {
        // The default queue of 2,048: behind past 512 waiting, not 128.
        let behind = Behind::default();
        let mut watch = BacklogWatch::new(2048);
        watch.after_round(512, &behind);
        assert!(
            !behind.get(),
            "a hundred or so waiting at a high rate is not behind"
        );
        watch.after_round(513, &behind);
        assert!(behind.get());
        for _ in 0..CALM_ROUNDS {
            watch.after_round(128, &behind);
        }
        assert!(!behind.get(), "calm at up to 128 waiting");
        // A queue of 1,000: a quarter of it, 250.
        let behind = Behind::default();
        let mut watch = BacklogWatch::new(1000);
        watch.after_round(250, &behind);
        assert!(!behind.get());
        watch.after_round(251, &behind);
        assert!(behind.get());
    }

    #[test]
    fn a_small_queue_is_caught_up_once_it_stayed_empty() {
        let behind = Behind::default();
        let mut watch = BacklogWatch::new(3);
        watch.after_round(1, &behind);
        assert!(behind.get(), "anything left in a queue of 3 is behind");
        for _ in 0..CALM_ROUNDS {
            watch.after_round(0, &behind);
        }
        assert!(!behind.get());
    }
}
