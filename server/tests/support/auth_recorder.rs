//! A registry stand-in that refuses everyone (401 with a Basic challenge, like a private
//! registry) and records what each request carried in `Authorization`: the proof that a
//! credential was, or was never, sent to a host.

use std::sync::{Arc, Mutex};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// One request as the recorder saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub authorization: Option<String>,
}

pub struct AuthRecorder {
    /// `127.0.0.1:<port>`, as a registry host.
    pub host: domain::RegistryHost,
    requests: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl AuthRecorder {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let path = text
                        .lines()
                        .next()
                        .and_then(|l| l.split_whitespace().nth(1))
                        .unwrap_or_default()
                        .to_owned();
                    let authorization = text.lines().find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("authorization")
                            .then(|| value.trim().to_owned())
                    });
                    recorded.lock().unwrap().push(Received {
                        path,
                        authorization,
                    });
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 401 Unauthorized\r\n\
                              WWW-Authenticate: Basic realm=\"recorder\"\r\n\
                              Docker-Distribution-Api-Version: registry/2.0\r\n\
                              Content-Type: application/json\r\n\
                              Content-Length: 2\r\n\
                              Connection: close\r\n\r\n{}",
                        )
                        .await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self {
            host: domain::RegistryHost::parse(&format!("127.0.0.1:{port}")).unwrap(),
            requests,
            task,
        }
    }

    /// How many requests arrived.
    pub fn requests(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// Every `Authorization` header received.
    pub fn authorizations(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| r.authorization.clone())
            .collect()
    }

    /// Whether any request carried `secret` (Basic credentials are base64 of `user:secret`).
    pub fn received(&self, username: &str, secret: &str) -> bool {
        let basic = base64(format!("{username}:{secret}").as_bytes());
        self.authorizations()
            .iter()
            .any(|a| a.contains(secret) || a.contains(&basic))
    }
}

impl Drop for AuthRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Standard base64 with padding, as HTTP Basic authentication writes `user:password`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
