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
