//! Waiting without a runtime: a [`Signal`] wakes threads blocked on a
//! condition variable and futures that registered a [`Waker`], so that the
//! same state can be waited for by the threaded driver (with a deadline) and
//! awaited by the tokio driver (which adds its own timer). Also the one-time
//! [`Reply`] to a flush or close marker, and the [`Stop`] signal that a close
//! giving up fires.

use crate::sync::LockExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::config::LONGEST_WAIT;

/// `timeout` from now, capped at 100 years: a caller's `Duration::MAX` (the
/// transmissions are public) never overflows `Instant`.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout.min(LONGEST_WAIT))
        .unwrap_or(now + Duration::from_secs(86_400 * 365))
}

/// The time left until `deadline` (zero once it has passed).
pub(crate) fn until(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Wakes whoever waits for a change of some state guarded by a mutex:
/// threads on its condition variable, futures through their wakers.
#[derive(Default)]
pub(crate) struct Signal {
    cond: Condvar,
    /// Futures waiting; at most one entry per waiting future (a waker that
    /// would wake the same task is not added twice). Emptied by each notify.
    wakers: Mutex<Vec<Waker>>,
}

impl Signal {
    /// Wakes every waiting thread and future.
    pub(crate) fn notify(&self) {
        self.cond.notify_all();
        let wakers = std::mem::take(&mut *self.wakers.lock_unpoisoned());
        for w in wakers {
            w.wake();
        }
    }

    #[cfg(feature = "tokio")]
    fn register(&self, waker: &Waker) {
        let mut wakers = self.wakers.lock_unpoisoned();
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }

    /// Waits (with `guard`, the lock of the state) until `ready` gives a
    /// value; `None` once `deadline` has passed first. A poisoned lock is
    /// used as is.
    pub(crate) fn wait<T, R>(
        &self,
        mut guard: MutexGuard<'_, T>,
        deadline: Instant,
        mut ready: impl FnMut(&mut T) -> Option<R>,
    ) -> Option<R> {
        loop {
            if let Some(r) = ready(&mut guard) {
                return Some(r);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            guard = self
                .cond
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Resolves once `ready` gives a value, looking again at each
    /// [`notify`](Signal::notify). `ready` must read state that is changed
    /// before the notify. No deadline: the caller adds its runtime's timer.
    #[cfg(feature = "tokio")]
    pub(crate) fn until<'a, R>(
        &'a self,
        mut ready: impl FnMut() -> Option<R> + 'a,
    ) -> impl std::future::Future<Output = R> + 'a {
        std::future::poll_fn(move |cx| {
            if let Some(r) = ready() {
                return std::task::Poll::Ready(r);
            }
            // Registered before the second look, so that no notify in
            // between is lost.
            self.register(cx.waker());
            match ready() {
                Some(r) => std::task::Poll::Ready(r),
                None => std::task::Poll::Pending,
            }
        })
    }
}

/// The answer to a flush or close marker: the sequence number of the last
/// batch it covers, or that the batcher is gone (then it answered everything
/// it held).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answered {
    Upto(u64),
    Gone,
}

impl Answered {
    /// The last batch a flush or close must wait for: all of them once the
    /// batcher is gone.
    pub(crate) fn last(self) -> u64 {
        match self {
            Answered::Upto(last) => last,
            Answered::Gone => u64::MAX,
        }
    }
}

/// A one-time reply that threads and futures can wait for.
#[derive(Default)]
pub(crate) struct Reply {
    state: Mutex<Option<Answered>>,
    signal: Signal,
}

impl Reply {
    /// A reply and the batcher's end of it.
    pub(crate) fn pair() -> (Arc<Reply>, ReplyTx) {
        let reply = Arc::new(Reply::default());
        (Arc::clone(&reply), ReplyTx(reply))
    }

    fn set(&self, answer: Answered) {
        let mut s = self.state.lock_unpoisoned();
        if s.is_none() {
            *s = Some(answer);
        }
        drop(s);
        self.signal.notify();
    }

    /// The answer, once given.
    #[cfg(feature = "tokio")]
    pub(crate) fn get(&self) -> Option<Answered> {
        *self.state.lock_unpoisoned()
    }

    /// Blocks until answered or `deadline`.
    pub(crate) fn wait(&self, deadline: Instant) -> Option<Answered> {
        self.signal
            .wait(self.state.lock_unpoisoned(), deadline, |s| *s)
    }

    /// Resolves once answered.
    #[cfg(feature = "tokio")]
    pub(crate) fn answered(&self) -> impl std::future::Future<Output = Answered> + '_ {
        self.signal.until(|| self.get())
    }
}

/// The batcher's end of a [`Reply`]; dropped unanswered, it says
/// [`Answered::Gone`].
pub(crate) struct ReplyTx(Arc<Reply>);

impl ReplyTx {
    pub(crate) fn send(self, last: u64) {
        self.0.set(Answered::Upto(last));
    }
}

impl Drop for ReplyTx {
    fn drop(&mut self) {
        self.0.set(Answered::Gone);
    }
}

/// A signal that stays fired: a close that gives up fires it, and retry
/// sleeps (blocking or async) end at once.
#[derive(Default)]
pub(crate) struct Stop {
    fired: Mutex<bool>,
    signal: Signal,
}

impl Stop {
    /// Sleeps for `d`; false if the signal fired (before or meanwhile).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let deadline = deadline_after(d);
        self.signal
            .wait(self.fired.lock_unpoisoned(), deadline, |f| f.then_some(()))
            .is_none()
    }

    pub(crate) fn fire(&self) {
        *self.fired.lock_unpoisoned() = true;
        self.signal.notify();
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn fired(&self) -> bool {
        *self.fired.lock_unpoisoned()
    }

    /// Resolves once the signal fires.
    #[cfg(feature = "tokio")]
    pub(crate) fn wait_fired(&self) -> impl std::future::Future<Output = ()> + '_ {
        self.signal.until(|| self.fired().then_some(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "tokio")]
    use std::future::Future;
    #[cfg(feature = "tokio")]
    use std::task::{Context, Poll, Wake};

    #[test]
    fn a_fired_stop_cuts_a_retry_sleep_short() {
        let stop = Arc::new(Stop::default());
        let t = Instant::now();
        assert!(stop.sleep(Duration::from_millis(30)), "not fired");
        assert!(t.elapsed() >= Duration::from_millis(30));
        let sleeper = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let t = Instant::now();
                (stop.sleep(Duration::from_secs(60)), t.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        stop.fire();
        let (slept_through, took) = sleeper.join().unwrap();
        assert!(!slept_through);
        assert!(took < Duration::from_secs(30), "{took:?}");
        // Once fired, it stays fired.
        assert!(!stop.sleep(Duration::from_secs(60)));
    }

    /// Counts its wakes.
    #[cfg(feature = "tokio")]
    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);
    #[cfg(feature = "tokio")]
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn a_reply_wakes_a_future_once_and_a_dropped_sender_says_gone() {
        let count = Arc::new(Count::default());
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        let (reply, tx) = Reply::pair();
        let mut fut = std::pin::pin!(reply.answered());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert!(
            fut.as_mut().poll(&mut cx).is_pending(),
            "polled again: registered once"
        );
        tx.send(7);
        assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Answered::Upto(7)));
        let (reply, tx) = Reply::pair();
        drop(tx);
        assert_eq!(reply.wait(Instant::now()), Some(Answered::Gone));
    }

    #[test]
    fn a_blocking_wait_ends_at_its_deadline_or_at_the_answer() {
        let (reply, tx) = Reply::pair();
        let t = Instant::now();
        assert_eq!(reply.wait(t + Duration::from_millis(20)), None);
        assert!(t.elapsed() >= Duration::from_millis(20));
        let waiter =
            std::thread::spawn(move || reply.wait(deadline_after(Duration::from_secs(60))));
        std::thread::sleep(Duration::from_millis(10));
        tx.send(3);
        assert_eq!(waiter.join().unwrap(), Some(Answered::Upto(3)));
    }
}
