//! In-process throttles for expensive or abusable actions: sign-up (per client address),
//! credential verification (per person and team) and deploys (per person). Each is a token
//! bucket per key: `burst` actions at once, then one every `every`. The buckets live in this
//! process's memory (a restart forgets them; several instances each allow the rate), and a
//! throttle keeps at most [`MAX_KEYS`] keys: when full, buckets that have refilled are
//! dropped first (they are the same as a fresh one), then the least recently used.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};
use views::AppError;

/// The most keys one throttle remembers.
pub const MAX_KEYS: usize = 10_000;

/// The rate of one throttle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Actions allowed at once.
    pub burst: u32,
    /// One more action is allowed this often.
    pub every: Duration,
}

#[derive(Debug)]
struct Bucket {
    /// Actions available now (fractional while refilling).
    tokens: f64,
    updated: Instant,
}

/// A token bucket per key.
#[derive(Debug)]
pub struct Throttle {
    /// What is throttled, for the message ("sign-ups from this address").
    what: &'static str,
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
    max_keys: usize,
}

impl Throttle {
    pub fn new(what: &'static str, rate: Rate) -> Self {
        Self::with_capacity(what, rate, MAX_KEYS)
    }

    fn with_capacity(what: &'static str, rate: Rate, max_keys: usize) -> Self {
        Self {
            what,
            rate,
            buckets: Mutex::new(HashMap::new()),
            max_keys,
        }
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        let per_sec = 1.0 / self.rate.every.as_secs_f64().max(f64::MIN_POSITIVE);
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(f64::from(self.rate.burst));
        bucket.updated = now;
    }

    /// Takes one action for `key`, or answers how many seconds until one is allowed.
    pub fn take(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            self.make_room(&mut buckets, now);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: f64::from(self.rate.burst),
            updated: now,
        });
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - bucket.tokens;
            let wait = missing * self.rate.every.as_secs_f64();
            Err((wait.ceil() as u64).max(1))
        }
    }

    /// [`Throttle::take`] as the error pages and the API show: 429 with `Retry-After`.
    pub fn check(&self, key: &str) -> Result<(), AppError> {
        self.take(key).map_err(|secs| {
            tracing::warn!(throttle = self.what, "throttled");
            AppError::Throttled {
                message: format!(
                    "Too many {} in a short time. Wait {} and try again.",
                    self.what,
                    wait_text(secs)
                ),
                retry_after_secs: secs as i64,
            }
        })
    }

    fn make_room(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        let burst = f64::from(self.rate.burst);
        let every = self.rate.every.as_secs_f64();
        buckets.retain(|_, b| {
            let refilled =
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() / every;
            refilled < burst
        });
        if buckets.len() >= self.max_keys {
            if let Some(oldest) = buckets
                .iter()
                .min_by_key(|(_, b)| b.updated)
                .map(|(k, _)| k.clone())
            {
                buckets.remove(&oldest);
            }
        }
    }

    /// How many keys are remembered now.
    pub fn keys(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

fn wait_text(secs: u64) -> String {
    if secs < 90 {
        format!("{secs} second{}", if secs == 1 { "" } else { "s" })
    } else {
        let minutes = secs.div_ceil(60);
        format!("{minutes} minutes")
    }
}

/// Every throttle of one Berth process.
#[derive(Debug)]
pub struct Throttles {
    /// Sign-ups, per client address.
    pub sign_up: Throttle,
    /// Credential verifications, per person and team.
    pub verify: Throttle,
    /// Deploys, per person.
    pub deploy: Throttle,
}

impl Throttles {
    pub fn new(sign_up: Rate, verify: Rate, deploy: Rate) -> Self {
        Self {
            sign_up: Throttle::new("sign-ups from this address", sign_up),
            verify: Throttle::new("credential checks", verify),
            deploy: Throttle::new("deploys", deploy),
        }
    }
}

impl Throttles {
    /// The defaults, with `per_hour` sign-ups an address (`BERTH_SIGN_UPS_PER_HOUR`): that
    /// many at once, then one every hour / `per_hour`.
    pub fn with_sign_ups_per_hour(per_hour: u32) -> Self {
        let per_hour = per_hour.max(1);
        Self {
            sign_up: Throttle::new(
                "sign-ups from this address",
                Rate {
                    burst: per_hour,
                    every: Duration::from_secs(3600) / per_hour,
                },
            ),
            ..Self::default()
        }
    }
}

impl Default for Throttles {
    /// 5 sign-ups an address, then one every 12 minutes; 10 verifications, then one every
    /// 6 seconds; 20 deploys, then one every 3 seconds.
    fn default() -> Self {
        Self::new(
            Rate {
                burst: 5,
                every: Duration::from_secs(12 * 60),
            },
            Rate {
                burst: 10,
                every: Duration::from_secs(6),
            },
            Rate {
                burst: 20,
                every: Duration::from_secs(3),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(burst: u32, every_ms: u64) -> Rate {
        Rate {
            burst,
            every: Duration::from_millis(every_ms),
        }
    }

    #[test]
    fn a_burst_then_refused_with_the_wait_then_allowed_again() {
        let throttle = Throttle::new("tries", rate(3, 200));
        for _ in 0..3 {
            assert_eq!(throttle.take("a"), Ok(()));
        }
        assert_eq!(throttle.take("a"), Err(1));
        // Another key has its own bucket.
        assert_eq!(throttle.take("b"), Ok(()));
        std::thread::sleep(Duration::from_millis(220));
        assert_eq!(throttle.take("a"), Ok(()));
        assert!(throttle.take("a").is_err());
    }

    #[test]
    fn the_refusal_is_a_429_with_retry_after_and_a_clear_message() {
        let throttle = Throttle::new("deploys", rate(1, 120_000));
        throttle.check("ada").unwrap();
        let refused = throttle.check("ada").unwrap_err();
        assert_eq!(refused.status(), 429);
        let AppError::Throttled {
            message,
            retry_after_secs,
        } = refused
        else {
            panic!("not throttled");
        };
        assert!(
            (119..=120).contains(&retry_after_secs),
            "{retry_after_secs}"
        );
        assert_eq!(
            message,
            "Too many deploys in a short time. Wait 2 minutes and try again."
        );
    }

    #[test]
    fn memory_stays_bounded_by_the_key_limit() {
        let throttle = Throttle::with_capacity("tries", rate(1, 60_000), 100);
        for i in 0..1_000 {
            throttle.take(&format!("key-{i}")).unwrap();
            assert!(throttle.keys() <= 100);
        }
        // Refilled buckets go first: with a fast refill, old keys are simply dropped.
        let fast = Throttle::with_capacity("tries", rate(1, 1), 10);
        for i in 0..10 {
            fast.take(&format!("key-{i}")).unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
        fast.take("new").unwrap();
        assert_eq!(fast.keys(), 1);
    }
}
