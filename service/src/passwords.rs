//! Password hashing off the async threads. Argon2id is deliberately slow and memory-hungry
//! (19 MiB and tens of milliseconds a hash): run on a Tokio worker it stalls every request
//! that worker serves, and run without a bound a burst of sign-ins exhausts memory. So every
//! hash runs on the blocking pool, at most [`CONCURRENT_HASHES`] at once; the rest wait in
//! line (each waiting request holds only its connection).

use crate::{Error, Result};
use domain::NewPassword;
use tokio::sync::Semaphore;

/// How many Argon2 hashes run at once in this process (about 19 MiB each).
pub const CONCURRENT_HASHES: usize = 4;

static PERMITS: Semaphore = Semaphore::const_new(CONCURRENT_HASHES);

/// Hashes the permits currently free (for tests and diagnostics).
pub fn free_permits() -> usize {
    PERMITS.available_permits()
}

async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let _permit = PERMITS
        .acquire()
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal(format!("password hashing stopped: {e}")))
}

/// An Argon2id hash of `password`, for storing.
pub async fn hash(password: &NewPassword) -> Result<String> {
    let password = password.clone();
    Ok(on_blocking_pool(move || store::passwords::hash(&password)).await??)
}

/// Checks `password` against a stored hash (a dummy hash when there is none, so the answer
/// takes as long either way).
pub async fn verify(password: &str, stored: Option<&str>) -> Result<bool> {
    let password = password.to_owned();
    let stored = stored.map(str::to_owned);
    on_blocking_pool(move || store::passwords::verify(&password, stored.as_deref())).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    };

    /// On a single-threaded runtime, other tasks keep running while passwords are hashed:
    /// a hash computed on the async thread would stop them for its whole duration.
    #[tokio::test(flavor = "current_thread")]
    async fn hashing_does_not_stall_other_requests() {
        let password = NewPassword::parse("a long enough password").unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = tokio::spawn({
            let (done, ticks) = (done.clone(), ticks.clone());
            async move {
                while !done.load(Ordering::SeqCst) {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        let started = std::time::Instant::now();
        let mut hashes = Vec::new();
        for _ in 0..8 {
            let password = password.clone();
            hashes.push(tokio::spawn(async move { hash(&password).await.unwrap() }));
        }
        let mut min_free = CONCURRENT_HASHES;
        for handle in hashes {
            while !handle.is_finished() {
                min_free = min_free.min(free_permits());
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            let stored = handle.await.unwrap();
            assert!(verify("a long enough password", Some(&stored))
                .await
                .unwrap());
        }
        let took = started.elapsed();
        done.store(true, Ordering::SeqCst);
        ticker.await.unwrap();
        let ticks = ticks.load(Ordering::SeqCst);
        // Ticks every millisecond while 8 hashes ran (each tens of milliseconds); hashing on
        // this thread would leave room for a handful only.
        assert!(ticks >= 20, "{ticks} ticks in {took:?}");
        // All the permits were in use at once: the other hashes waited for one.
        assert_eq!(
            min_free, 0,
            "8 hashes never used all {CONCURRENT_HASHES} permits"
        );
        assert_eq!(free_permits(), CONCURRENT_HASHES);
    }
}
