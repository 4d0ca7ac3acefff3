//! The crate's one way to take a lock: a panic while it was held (caught,
//! say, from an application) leaves the guarded value whole, since each
//! holder changes it in single steps, so a poisoned lock is taken as it is
//! rather than failing every request after it.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, poisoned or not.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
