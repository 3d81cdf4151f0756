//! The smallest HTTP/1.1 client that talks to Caddy's admin API over its UNIX socket: one
//! request per connection (`Connection: close`), the answer read to its end.
//!
//! Caddy 2.6 accepts a request on the admin socket only with an empty `Host` header (any
//! name is refused as "host not allowed", its DNS-rebinding guard), which general HTTP
//! clients do not send; this is also why no HTTP client crate is needed here.

use std::{io, path::Path, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UnixStream,
};

/// More than any answer of the admin API Berth asks for (the whole config of a thousand
/// apps is well under a megabyte); a larger one is not Caddy's.
const MAX_ANSWER: u64 = 16 << 20;

/// An answer of the admin API.
pub(super) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a request got no answer.
#[derive(Debug)]
pub(super) enum Failure {
    /// Nothing listens on the socket (no socket file, or no process behind it).
    NotListening(io::Error),
    /// Connected, but the request or its answer failed or took too long.
    Broken(io::Error),
}

impl Failure {
    pub fn into_io(self) -> io::Error {
        match self {
            Failure::NotListening(e) | Failure::Broken(e) => e,
        }
    }
}

/// Sends one request and reads its whole answer, within `timeout`.
pub(super) async fn request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<Answer, Failure> {
    match tokio::time::timeout(timeout, exchange(socket, method, path, body)).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Broken(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{method} {path} got no answer within {} s",
                timeout.as_secs_f32()
            ),
        ))),
    }
}

async fn exchange(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<Answer, Failure> {
    let mut stream = UnixStream::connect(socket)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => Failure::NotListening(e),
            _ => Failure::Broken(e),
        })?;
    let body = body.unwrap_or_default();
    let mut message = format!(
        "{method} {path} HTTP/1.1\r\nHost: \r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if !body.is_empty() {
        message.push_str("Content-Type: application/json\r\n");
    }
    message.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut message = message.into_bytes();
    message.extend_from_slice(body);
    stream.write_all(&message).await.map_err(Failure::Broken)?;

    let mut raw = Vec::new();
    (&mut stream)
        .take(MAX_ANSWER)
        .read_to_end(&mut raw)
        .await
        .map_err(Failure::Broken)?;
    parse(&raw).map_err(|why| {
        Failure::Broken(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("Caddy's answer to {method} {path} is not HTTP as expected: {why}"),
        ))
    })
}

/// What Caddy said, from its `{"error": "..."}` answer.
pub(super) fn message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(body) => body.error,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            text.trim().chars().take(2000).collect()
        }
    }
}

/// Parses a complete HTTP/1.1 answer: the status line, the headers that frame the body,
/// and the body (with a length, chunked — as Caddy sends the config — or to the end).
fn parse(raw: &[u8]) -> Result<Answer, &'static str> {
    let head_end = find(raw, b"\r\n\r\n").ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "headers are not UTF-8")?;
    let rest = &raw[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("no status line")?;
    let mut parts = status_line.split(' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err("no HTTP/1 status line");
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("no status code")?;

    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err("a header line without a colon");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| "a bad Content-Length")?);
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = length {
        rest.get(..length)
            .ok_or("a body shorter than its Content-Length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Answer { status, body })
}

/// Joins the chunks of a chunked body; trailers (Caddy sends an ETag) are dropped.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n").ok_or("a chunk without a size line")?;
        let size_line =
            std::str::from_utf8(&rest[..line_end]).map_err(|_| "a chunk size is not text")?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| "a bad chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or("a chunk cut short")?;
        body.extend_from_slice(chunk);
        rest = rest
            .get(size..)
            .and_then(|r| r.strip_prefix(b"\r\n"))
            .ok_or("a chunk not followed by CRLF")?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_answer_with_trailers_is_joined() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTrailer: ETag\r\n\
            Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\nEtag: \"x\"\r\n\r\n";
        let answer = parse(raw).unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, b"{\"a\": 1}");
    }

    #[test]
    fn an_answer_with_a_length_stops_there() {
        let raw = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnopeextra";
        let answer = parse(raw).unwrap();
        assert_eq!(answer.status, 403);
        assert_eq!(answer.body, b"nope");
    }

    #[test]
    fn a_cut_answer_is_refused() {
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }
}
