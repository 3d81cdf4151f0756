//! Live feeds of operations, for the console's live log (`GET /operations/{id}/events`).
//!
//! However many people watch an operation, this process runs one feed for it: a task that
//! reads the operation's new log lines and status from the database and broadcasts them
//! (`tokio::sync::broadcast`) to every watcher. The feed reads when it is woken — by this
//! process's worker after it stored lines or changed the status, by PostgreSQL
//! `LISTEN/NOTIFY` when another instance's worker did — and at the latest every
//! [`IDLE_CHECK`] (an operation failed elsewhere by an expired lease writes no line here).
//! A watcher reads the log once when it starts watching, then only listens.
//!
//! Streams are also counted per person: at most [`MAX_STREAMS_PER_USER`] at once in each
//! process, so one account cannot hold an unbounded number of connections and tasks.

use crate::present;
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use store::Store;
use tokio::sync::{broadcast, Notify};
use views::{LogLineRow, OperationProgress};

/// How long a feed waits without being woken before it looks at the database anyway.
pub const IDLE_CHECK: Duration = Duration::from_secs(3);
/// The live streams one person may have open at once (in each Berth process).
pub const MAX_STREAMS_PER_USER: usize = 8;
/// Updates a slow watcher may fall behind before it must catch up from the database.
const BACKLOG: usize = 64;
/// Lines read from the database at a time.
const PAGE: i64 = 500;

/// What a feed broadcasts: new lines (ascending ids), or a new status.
#[derive(Clone, Debug)]
pub enum Update {
    Lines(Arc<Vec<LogLineRow>>),
    Status(OperationProgress),
}

/// This process's live feeds and stream counts. Cheap to clone.
#[derive(Clone)]
pub struct OperationFeeds(Arc<Inner>);

struct Inner {
    store: Store,
    feeds: tokio::sync::Mutex<HashMap<i64, Feed>>,
    streams: Mutex<HashMap<i64, usize>>,
    listening: AtomicBool,
    feeds_started: AtomicU64,
    reads: AtomicU64,
    /// Set when Berth stops: every open stream ends (browsers reconnect to the next Berth).
    stopping: tokio::sync::watch::Sender<bool>,
}

struct Feed {
    sender: broadcast::Sender<Update>,
    wake: Arc<Notify>,
}

impl OperationFeeds {
    pub fn new(store: Store) -> Self {
        Self(Arc::new(Inner {
            store,
            feeds: Default::default(),
            streams: Default::default(),
            listening: AtomicBool::new(false),
            feeds_started: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            stopping: tokio::sync::watch::channel(false).0,
        }))
    }

    /// Berth is stopping: every open stream ends now (see [`Live::stopping`]).
    pub fn stop_streams(&self) {
        self.0.stopping.send_replace(true);
    }

    /// Resolves once Berth is stopping; a stream that follows an operation selects on it.
    pub fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stopping = self.0.stopping.subscribe();
        async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
        }
    }

    /// Says that `operation_id` has new lines or a new status: wakes its feed here, and
    /// announces it to the other instances (PostgreSQL).
    pub async fn wake(&self, operation_id: i64) {
        self.wake_here(operation_id).await;
        if let Err(error) = self.0.store.announce_operation_change(operation_id).await {
            tracing::debug!(%error, operation = operation_id, "could not announce an operation change");
        }
    }

    async fn wake_here(&self, operation_id: i64) {
        if let Some(feed) = self.0.feeds.lock().await.get(&operation_id) {
            feed.wake.notify_one();
        }
    }

    /// Starts watching `operation_id`: updates from now on. The caller then reads what
    /// happened before from the database (see [`Watcher`]).
    pub async fn subscribe(
        &self,
        operation_id: i64,
    ) -> Result<broadcast::Receiver<Update>, store::StoreError> {
        self.listen_to_other_instances();
        let mut feeds = self.0.feeds.lock().await;
        if let Some(feed) = feeds.get(&operation_id) {
            return Ok(feed.sender.subscribe());
        }
        // The feed starts after the lines stored so far; the watcher reads those itself.
        let after = self.0.store.operation_log_last_id(operation_id).await?;
        let (sender, receiver) = broadcast::channel(BACKLOG);
        let wake = Arc::new(Notify::new());
        feeds.insert(
            operation_id,
            Feed {
                sender: sender.clone(),
                wake: wake.clone(),
            },
        );
        self.0.feeds_started.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(self.clone().run(operation_id, after, sender, wake));
        Ok(receiver)
    }

    /// Feeds started since this process began (one per watched operation, however many
    /// watch it).
    pub fn feeds_started(&self) -> u64 {
        self.0.feeds_started.load(Ordering::Relaxed)
    }

    /// Database reads the feeds made.
    pub fn feed_reads(&self) -> u64 {
        self.0.reads.load(Ordering::Relaxed)
    }

    /// One more live stream for `user_id`, or `None` when they already have
    /// [`MAX_STREAMS_PER_USER`]. The stream counts until the permit is dropped.
    pub fn open_stream(&self, user_id: i64) -> Option<StreamPermit> {
        let mut streams = self.0.streams.lock().expect("stream count lock");
        let open = streams.entry(user_id).or_default();
        if *open >= MAX_STREAMS_PER_USER {
            return None;
        }
        *open += 1;
        Some(StreamPermit {
            feeds: self.clone(),
            user_id,
        })
    }

    /// On PostgreSQL, once per process: other instances' announcements wake feeds here.
    fn listen_to_other_instances(&self) {
        if self.0.listening.swap(true, Ordering::SeqCst) {
            return;
        }
        let feeds = self.clone();
        tokio::spawn(async move {
            let mut listener = match feeds.0.store.operation_change_listener().await {
                Ok(Some(listener)) => listener,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for other instances' operation changes; live logs follow them every few seconds");
                    feeds.0.listening.store(false, Ordering::SeqCst);
                    return;
                }
            };
            loop {
                match listener.next().await {
                    Ok(id) => feeds.wake_here(id).await,
                    Err(error) => {
                        tracing::warn!(%error, "listening for operation changes failed");
                        tokio::time::sleep(IDLE_CHECK).await;
                    }
                }
            }
        });
    }

    /// The feed of one operation: reads when woken (or every [`IDLE_CHECK`]) and broadcasts
    /// what is new; ends when the operation has ended or nobody watches any more.
    async fn run(
        self,
        operation_id: i64,
        mut after: i64,
        sender: broadcast::Sender<Update>,
        wake: Arc<Notify>,
    ) {
        let mut last_status = None;
        loop {
            let _ = tokio::time::timeout(IDLE_CHECK, wake.notified()).await;
            let ended = match self
                .read(operation_id, &mut after, &mut last_status, &sender)
                .await
            {
                Ok(ended) => ended,
                Err(error) => {
                    tracing::warn!(%error, operation = operation_id, "the live feed could not read the operation");
                    false
                }
            };
            let mut feeds = self.0.feeds.lock().await;
            if ended || sender.receiver_count() == 0 {
                feeds.remove(&operation_id);
                return;
            }
        }
    }

    /// Broadcasts the lines after `after` and the status when it changed. The status is read
    /// first: lines written before a final status are then all in the log read next, so a
    /// watcher that stops at the final status has missed nothing. Answers whether the
    /// operation has ended (or is gone).
    async fn read(
        &self,
        operation_id: i64,
        after: &mut i64,
        last_status: &mut Option<(domain::OperationStatus, Option<String>)>,
        sender: &broadcast::Sender<Update>,
    ) -> Result<bool, store::StoreError> {
        self.0.reads.fetch_add(1, Ordering::Relaxed);
        let Some(operation) = self.0.store.operation(operation_id).await? else {
            return Ok(true);
        };
        loop {
            let lines = self
                .0
                .store
                .operation_log(operation_id, *after, PAGE)
                .await?;
            let Some(last) = lines.last() else { break };
            *after = last.id;
            let full = lines.len() as i64 == PAGE;
            let _ = sender.send(Update::Lines(Arc::new(
                lines.into_iter().map(present::log_line).collect(),
            )));
            if !full {
                break;
            }
        }
        let status = (operation.status, operation.step.clone());
        if last_status.as_ref() != Some(&status) {
            *last_status = Some(status);
            let _ = sender.send(Update::Status(progress(&operation)));
        }
        Ok(operation.is_final())
    }
}

/// What a watcher shows of `operation`'s status.
pub fn progress(operation: &store::Operation) -> OperationProgress {
    OperationProgress {
        status: operation.status,
        step: operation.step.clone(),
        error: operation.error.clone(),
        finished_at: operation.finished_at,
    }
}

/// A live stream counted against its person's [`MAX_STREAMS_PER_USER`].
pub struct StreamPermit {
    feeds: OperationFeeds,
    user_id: i64,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut streams = self.feeds.0.streams.lock().expect("stream count lock");
        if let Some(open) = streams.get_mut(&self.user_id) {
            *open -= 1;
            if *open == 0 {
                streams.remove(&self.user_id);
            }
        }
    }
}
