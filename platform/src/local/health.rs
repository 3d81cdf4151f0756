//! Whether a new release serves: HTTP GET on its port until it answers below 500.

use super::supervisor::Exits;
use std::time::Duration;
use tokio::{sync::watch, time::Instant};

/// For the first `CLOSE_FOR` the probes follow each other every `FIRST_PAUSE` (most releases
/// answer within a fraction of a second, and every moment here is a moment the deploy
/// waits: a doubling pause would find a release that took 170 ms only at 310 ms, and a
/// 10 ms pause found it 5 ms late on average where this finds it 2.5 ms late); then the
/// pause doubles up to `POLL_EVERY`.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const CLOSE_FOR: Duration = Duration::from_secs(3);
const POLL_EVERY: Duration = Duration::from_millis(250);
/// One probe; a release that takes longer to answer is not serving yet.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unhealthy {
    /// The release's process ended before it answered (how it ended).
    Exited(String),
    /// No answer below 500 within the timeout (what the last probe saw).
    TimedOut(String),
}

/// Probes `url` (every 5 ms for 3 s, then less often, up to every 250 ms) until any
/// status below 500, for at most `timeout`; fails at once when `exits` reports that the
/// release's process ended.
pub(crate) async fn wait_until_serving(
    url: &str,
    timeout: Duration,
    mut exits: watch::Receiver<Exits>,
) -> Result<(), Unhealthy> {
    let client = reqwest::Client::builder()
        // A redirect answers the probe; following it could leave the host.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(PROBE_TIMEOUT)
        .build()
        .map_err(|e| Unhealthy::TimedOut(format!("no HTTP client: {e}")))?;
    let started = Instant::now();
    let deadline = started + timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        if let Some(exit) = exits.borrow_and_update().last.clone() {
            return Err(Unhealthy::Exited(exit));
        }
        let probe = tokio::select! {
            probe = client.get(url).send() => probe,
            changed = exits.changed() => {
                changed.map_err(|_| supervisor_gone())?;
                continue;
            }
        };
        let last_seen = match probe {
            Ok(response) if response.status().as_u16() < 500 => return Ok(()),
            Ok(response) => format!("it answered {}", response.status()),
            Err(e) if e.is_timeout() => "a probe timed out".to_owned(),
            Err(e) if e.is_connect() => "nothing listens on its port".to_owned(),
            Err(e) => format!("the probe failed: {e}"),
        };
        if Instant::now() + pause > deadline {
            return Err(Unhealthy::TimedOut(last_seen));
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            changed = exits.changed() => changed.map_err(|_| supervisor_gone())?,
        }
        if started.elapsed() >= CLOSE_FOR {
            pause = (pause * 2).min(POLL_EVERY);
        }
    }
}

fn supervisor_gone() -> Unhealthy {
    Unhealthy::Exited("it was stopped".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    /// A server that answers every request with `status` and closes the connection.
    async fn answering(status: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut connection, _)) = listener.accept().await {
                // Read the request first: closing with it unread would reset the connection.
                let mut request = Vec::new();
                let mut buffer = [0; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match connection.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let response =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = connection.write_all(response.as_bytes()).await;
            }
        });
        url
    }

    #[tokio::test]
    async fn any_answer_below_500_is_serving() {
        let url = answering("404 Not Found").await;
        let (_exits, watching) = watch::channel(Exits::default());
        assert_eq!(
            wait_until_serving(&url, Duration::from_secs(5), watching).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn answers_of_500_and_above_time_out_saying_what_was_seen() {
        let url = answering("503 Service Unavailable").await;
        let (_exits, watching) = watch::channel(Exits::default());
        assert_eq!(
            wait_until_serving(&url, Duration::from_secs(1), watching).await,
            Err(Unhealthy::TimedOut(
                "it answered 503 Service Unavailable".into()
            ))
        );
    }

    #[tokio::test]
    async fn an_exit_fails_the_check_at_once() {
        let (exits, watching) = watch::channel(Exits::default());
        let started = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            exits.send_modify(|exits| {
                exits.count = 1;
                exits.last = Some("exited with status 1".into());
            });
            // Keep the sender alive: only the exit may end the check.
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        // Port 9 (discard) on loopback: nothing listens.
        let result = wait_until_serving("http://127.0.0.1:9/", Duration::from_secs(30), watching);
        assert_eq!(
            result.await,
            Err(Unhealthy::Exited("exited with status 1".into()))
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
