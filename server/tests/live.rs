//! Live operation logs (`GET /operations/{id}/events`): one shared feed per operation
//! however many people watch, woken by the worker (and across PostgreSQL instances by
//! `LISTEN/NOTIFY`) rather than a database poll per watcher; a cap on each person's open
//! streams; and streams that end when the operation ends.
//!
//! The worker is stopped and the test plays it with the store's own calls (claim, append,
//! finish), so that it decides exactly when lines and the final status appear.

mod support;

use axum::{
    body::Body,
    http::{header, Request, StatusCode},
};
use http_body_util::BodyExt;
use serde_json::json;
use service::live::{OperationFeeds, IDLE_CHECK, MAX_STREAMS_PER_USER};
use std::time::{Duration, Instant};
use support::*;
use tower::ServiceExt;

/// An open event stream, read as it arrives.
struct EventStream {
    body: Body,
    text: String,
    ended: bool,
}

impl EventStream {
    /// Reads until `needle` has arrived; false when it did not within `within`.
    async fn until(&mut self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while !self.text.contains(needle) && !self.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.body.frame()).await {
                Err(_) => return false,
                Ok(None) => self.ended = true,
                Ok(Some(frame)) => {
                    if let Ok(data) = frame.unwrap().into_data() {
                        self.text.push_str(&String::from_utf8_lossy(&data));
                    }
                }
            }
        }
        self.text.contains(needle)
    }

    /// Reads until the server ends the stream; false when it did not within `within`.
    async fn until_end(&mut self, within: Duration) -> bool {
        self.until("\u{0}never sent", within).await;
        self.ended
    }
}

async fn open(browser: &Browser<'_>, id: i64) -> Result<EventStream, StatusCode> {
    let request = Request::get(format!("/operations/{id}/events"))
        .header(header::ACCEPT, "text/event-stream")
        .header(header::COOKIE, browser.cookie.clone().unwrap())
        .body(Body::empty())
        .unwrap();
    let response = browser.app.router.clone().oneshot(request).await.unwrap();
    if response.status() != StatusCode::OK {
        return Err(response.status());
    }
    Ok(EventStream {
        body: response.into_body(),
        text: String::new(),
        ended: false,
    })
}

/// An app with a queued configure operation that the test runs as the worker would.
async fn running_operation(app: &TestApp) -> i64 {
    running_operation_of(app, "web").await
}

/// [`running_operation`] for a new app `handle`.
async fn running_operation_of(app: &TestApp, handle: &str) -> i64 {
    app.stop().await;
    app.create_app(handle, "image", None).await;
    let queued = app
        .call(
            "PATCH",
            &format!("/api/v1/teams/acme/apps/{handle}/config"),
            &app.deployer(),
            Some(json!({ "env": { "GREETING": "hello" } })),
        )
        .await
        .expect(202)
        .json();
    let id = queued["operation"]["id"].as_i64().unwrap();
    let claimed = app
        .store
        .claim_next_operation("test-worker", 60_000)
        .await
        .unwrap()
        .expect("the queued operation");
    assert_eq!(claimed.id, id);
    id
}

async fn write_lines(app: &TestApp, id: i64, lines: &[&str]) {
    let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    app.store.append_operation_log(id, &lines).await.unwrap();
    app.berth.live.wake(id).await;
}

async fn finish(app: &TestApp, id: i64) {
    app.store
        .finish_operation(
            id,
            "test-worker",
            store::Finish::Succeeded {
                release: None,
                config: &[],
            },
        )
        .await
        .unwrap();
    app.berth.live.wake(id).await;
}

#[tokio::test]
async fn many_watchers_share_one_feed_and_every_stream_ends_with_the_operation() {
    let app = TestApp::sqlite().with_team().start().await;
    let id = running_operation(&app).await;
    write_lines(&app, id, &["before anyone watched"]).await;

    // Deployers read logs (viewers only when the team allows it).
    let deployer = app.signed_in(DEPLOYER).await;
    let owner = app.signed_in(OWNER).await;
    let mut streams = Vec::new();
    for browser in [&deployer, &owner] {
        for _ in 0..3 {
            streams.push(open(browser, id).await.unwrap());
        }
    }
    for stream in &mut streams {
        assert!(
            stream
                .until("before anyone watched", Duration::from_secs(5))
                .await,
            "what was written before: {}",
            stream.text
        );
        assert!(stream.until("event: status", Duration::from_secs(5)).await);
    }
    assert_eq!(
        app.berth.live.feeds_started(),
        1,
        "one feed for six watchers"
    );

    // Lines reach every watcher as soon as the worker wakes the feed (well before the
    // feed's idle check), through that one feed.
    let reads_before = app.berth.live.feed_reads();
    let written = Instant::now();
    write_lines(&app, id, &["step one", "step two"]).await;
    for stream in &mut streams {
        assert!(
            stream.until("step two", Duration::from_secs(2)).await,
            "{}",
            stream.text
        );
    }
    assert!(written.elapsed() < IDLE_CHECK);

    // Idle: the feed reads the database at most once per idle check — not every 400 ms
    // for each of six watchers, as each stream used to (about 30 reads in 2 s).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reads = app.berth.live.feed_reads() - reads_before;
    assert!(reads <= 3, "{reads} database reads for one batch of lines");

    finish(&app, id).await;
    for stream in &mut streams {
        assert!(
            stream.until_end(Duration::from_secs(5)).await,
            "the stream ends with the operation: {}",
            stream.text
        );
        assert!(stream.text.contains("succeeded"), "{}", stream.text);
        assert_eq!(
            stream.text.matches("step two").count(),
            1,
            "no line twice: {}",
            stream.text
        );
    }
    // A stream opened after the end gets everything, then ends at once.
    let mut late = open(&deployer, id).await.unwrap();
    assert!(late.until_end(Duration::from_secs(5)).await);
    assert!(late.text.contains("before anyone watched") && late.text.contains("succeeded"));
}

#[tokio::test]
async fn every_open_stream_ends_when_berth_stops() {
    let app = TestApp::sqlite().with_team().start().await;
    let id = running_operation(&app).await;
    let deployer = app.signed_in(DEPLOYER).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = open(&deployer, id).await.unwrap();
        write_lines(&app, id, &["still running"]).await;
        assert!(stream.until("still running", Duration::from_secs(5)).await);
        streams.push(stream);
    }
    // The operation runs on; Berth stops (SIGTERM): no stream may keep it waiting.
    app.berth.live.stop_streams();
    for stream in &mut streams {
        assert!(
            stream.until_end(Duration::from_secs(2)).await,
            "{}",
            stream.text
        );
    }
    // A stream opened while Berth stops ends at once too.
    let mut late = open(&deployer, id).await.unwrap();
    assert!(late.until_end(Duration::from_secs(2)).await);
}

#[tokio::test]
async fn a_person_may_follow_a_limited_number_of_live_logs_at_once() {
    let app = TestApp::sqlite().with_team().start().await;
    let id = running_operation(&app).await;
    let viewer = app.signed_in(VIEWER).await;
    let mut open_streams = Vec::new();
    for _ in 0..MAX_STREAMS_PER_USER {
        open_streams.push(open(&viewer, id).await.expect("within the limit"));
    }
    assert_eq!(
        open(&viewer, id).await.err(),
        Some(StatusCode::TOO_MANY_REQUESTS),
        "one stream more than the limit"
    );
    // Another person is not affected.
    let owner = app.signed_in(OWNER).await;
    let _owners = open(&owner, id).await.expect("another person's stream");
    // Closing one stream frees its place.
    open_streams.pop();
    let _again = open(&viewer, id).await.expect("a place was freed");
    // Streams that ended with their operation free their places too.
    finish(&app, id).await;
    for stream in &mut open_streams {
        assert!(stream.until_end(Duration::from_secs(5)).await);
    }
    drop(open_streams);
    let mut held = Vec::new();
    for _ in 0..MAX_STREAMS_PER_USER - 1 {
        held.push(
            open(&viewer, id)
                .await
                .expect("places freed by ended streams"),
        );
    }
    assert_eq!(
        open(&viewer, id).await.err(),
        Some(StatusCode::TOO_MANY_REQUESTS)
    );
}

#[tokio::test]
async fn another_postgres_instance_wakes_this_one_s_feed() {
    let app = TestApp::postgres().with_team().start().await;
    let id = running_operation(&app).await;
    // A second Berth instance on the same database, with its own feeds.
    let other = OperationFeeds::new(
        store::Store::connect(app.database_url().unwrap())
            .await
            .unwrap(),
    );
    let mut updates = other.subscribe(id).await.unwrap();
    // Let its listener start.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let written = Instant::now();
    write_lines(&app, id, &["from the first instance"]).await;
    let update = tokio::time::timeout(IDLE_CHECK, updates.recv())
        .await
        .expect("woken by NOTIFY before its idle check")
        .unwrap();
    let service::live::Update::Lines(lines) = update else {
        panic!("{update:?}");
    };
    assert_eq!(lines[0].line, "from the first instance");
    assert!(written.elapsed() < IDLE_CHECK, "{:?}", written.elapsed());
}

/// This process's resident memory (KiB) and CPU time so far (ms, user and system).
fn rss_and_cpu() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The fields after the command's closing parenthesis; utime and stime are the 12th
    // and 13th of them, in clock ticks (100 a second on Linux).
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (rss, ticks * 10)
}

/// What `viewers` watchers of one running operation cost while it writes `LINES` lines over
/// `SECONDS` seconds: database reads a second, CPU, memory. Every watcher must receive every
/// line.
async fn watched_by(app: &TestApp, handle: &str, viewers: usize) -> String {
    const LINES: usize = 250;
    const SECONDS: f64 = 5.0;
    let id = running_operation_of(app, handle).await;
    let people = viewers.div_ceil(MAX_STREAMS_PER_USER);
    let mut browsers = Vec::new();
    for n in 0..people {
        let email = format!("watcher-{handle}-{n}@example.com");
        app.member(&email, "acme", domain::Role::Deployer).await;
        browsers.push(app.signed_in(&email).await);
    }
    let (rss_before, _) = rss_and_cpu();
    let feeds_before = app.berth.live.feeds_started();
    let last = format!("line {} of {handle}", LINES - 1);
    let mut drains = Vec::new();
    for v in 0..viewers {
        let mut stream = open(&browsers[v / MAX_STREAMS_PER_USER], id).await.unwrap();
        let last = last.clone();
        drains.push(tokio::spawn(async move {
            // Reads everything as it comes, keeping only the tail: a watcher that stops
            // reading would make the feed's backlog, not the sharing, the thing measured.
            while !stream.ended && !stream.text.contains(&last) {
                match stream.body.frame().await {
                    None => stream.ended = true,
                    Some(frame) => {
                        if let Ok(data) = frame.unwrap().into_data() {
                            stream.text.push_str(&String::from_utf8_lossy(&data));
                            let mut cut = stream.text.len().saturating_sub(4096);
                            while !stream.text.is_char_boundary(cut) {
                                cut += 1;
                            }
                            stream.text.drain(..cut);
                        }
                    }
                }
            }
            stream.text.contains(&last)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_open, cpu_before) = rss_and_cpu();
    let reads_before = app.berth.live.feed_reads();
    let started = Instant::now();
    let pause = Duration::from_secs_f64(SECONDS / LINES as f64);
    for n in 0..LINES {
        write_lines(app, id, &[&format!("line {n} of {handle}")]).await;
        tokio::time::sleep(pause).await;
    }
    let mut delivered = 0;
    for drain in drains {
        if tokio::time::timeout(Duration::from_secs(60), drain)
            .await
            .map(Result::unwrap)
            .unwrap_or(false)
        {
            delivered += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (_, cpu_after) = rss_and_cpu();
    let reads = app.berth.live.feed_reads() - reads_before;
    let feeds = app.berth.live.feeds_started() - feeds_before;
    finish(app, id).await;
    assert_eq!(delivered, viewers, "every watcher receives every line");
    assert_eq!(feeds, 1, "one feed for {viewers} watchers");
    format!(
        "viewers={viewers} feeds={feeds} db_reads_per_s={:.1} cpu_ms_per_s={:.0} \
         rss_growth_kib={} lines_per_s={:.0}",
        reads as f64 / elapsed,
        (cpu_after - cpu_before) as f64 / elapsed,
        rss_open.saturating_sub(rss_before),
        LINES as f64 / elapsed,
    )
}

/// `scripts/bench.sh`: 5 and then 500 people's streams of one running operation, side by side
/// (the database reads must not grow with the watchers). The CPU time is the whole test
/// process's, the watchers' reading included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench.sh runs it"]
async fn bench_live_viewers() {
    let app = TestApp::sqlite().with_team().start().await;
    for (handle, viewers) in [("few", 5), ("many", 500)] {
        println!("BENCH live {}", watched_by(&app, handle, viewers).await);
    }
}
