//! Locks that survive poisoning.
//!
//! Nothing in the SDK panics while holding a lock, but a panic in user code
//! (a dynamic field's function, a custom transmission) on a thread holding
//! one must not take every later `send`, flush or close down with it: every
//! lock in the crate is taken through these, which return the guard of a
//! poisoned lock as if it were not.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(crate) trait LockExt<T: ?Sized> {
    /// `Mutex::lock`, taking a poisoned lock as it is.
    fn lock_unpoisoned(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> LockExt<T> for Mutex<T> {
    #[inline]
    fn lock_unpoisoned(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) trait RwLockExt<T: ?Sized> {
    /// `RwLock::read`, taking a poisoned lock as it is.
    fn read_unpoisoned(&self) -> RwLockReadGuard<'_, T>;
    /// `RwLock::write`, taking a poisoned lock as it is.
    fn write_unpoisoned(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwLockExt<T> for RwLock<T> {
    #[inline]
    fn read_unpoisoned(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|e| e.into_inner())
    }

    #[inline]
    fn write_unpoisoned(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The synchronization types of the SDK's hand-written queues (the pending
/// queue, the lanes, the hand-off to sender threads, the response queue): `std`'s, or,
/// under `--cfg libhoney_loom` (tests only), loom's models of them, so that
/// the loom tests check the very code that runs. (Not plain `--cfg loom`:
/// RUSTFLAGS reach every crate, and tokio built with `cfg(loom)` leaves out
/// `tokio::net`, which hyper-util needs.) Run the models with
/// `LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg libhoney_loom" cargo test -p
/// libhoney-sdk --lib --release loom` (CONTRIBUTING.md).
pub(crate) mod model {
    #[cfg(not(all(test, libhoney_loom)))]
    pub(crate) use super::LockExt;
    #[cfg(all(test, libhoney_loom))]
    pub(crate) use loom::sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    };
    #[cfg(not(all(test, libhoney_loom)))]
    pub(crate) use std::sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    };

    /// `lock_unpoisoned` for loom's mutex.
    #[cfg(all(test, libhoney_loom))]
    pub(crate) trait LockExt<T> {
        fn lock_unpoisoned(&self) -> MutexGuard<'_, T>;
    }

    #[cfg(all(test, libhoney_loom))]
    impl<T> LockExt<T> for Mutex<T> {
        fn lock_unpoisoned(&self) -> MutexGuard<'_, T> {
            self.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    /// Orders a `SeqCst` write before a `SeqCst` read of another atomic, as
    /// `std`'s `SeqCst` accesses already do (one total order of all of
    /// them): nothing to do outside loom. Loom models `SeqCst` accesses as
    /// `AcqRel` (its README, "Unsupported features"), under which "count
    /// myself waiting, then look at the other side's count" on both sides
    /// could both read stale values (a lost wake-up that real `SeqCst` rules
    /// out); a `SeqCst` fence, which loom does model, gives the model the
    /// order the code relies on.
    #[inline(always)]
    pub(crate) fn seq_cst_order() {
        #[cfg(all(test, libhoney_loom))]
        loom::sync::atomic::fence(Ordering::SeqCst);
    }
}
