//! The bytes of an httpGet probe's exchange: one HTTP/1.1 GET with `Connection: close`,
//! and the response head (status and `Location`) read off the connection. A probe needs no
//! more of HTTP than that; a general client (its connection task, its dispatch channel)
//! cost a probe more than the probe's own system calls.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Most bytes of a response head (Go's `DefaultMaxHeaderBytes`, the limit of upstream's
/// client).
pub const MAX_HEAD: usize = 1 << 20;
/// Most bytes of a response body read (upstream `maxRespBodyLength`).
pub const MAX_BODY: usize = 10 * 1024;

/// A header name as Go's `CanonicalMIMEHeaderKey` writes it (`user-agent` →
/// `User-Agent`); a name with bytes outside a token stays as given.
pub fn canonical(name: &str) -> String {
    let token = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return name.to_string();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// The request: `GET path` with `headers` (name, value; already checked), then
/// `Connection: close`.
pub fn request(path_and_query: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (k, v) in headers {
        out.extend_from_slice(canonical(k).as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

/// A response head, and what of the body came with it.
#[derive(Debug, PartialEq)]
pub struct Head {
    pub status: u16,
    pub location: Option<String>,
    /// `Content-Length`, when given.
    pub content_length: Option<usize>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// Body bytes read along with the head.
    pub rest: Vec<u8>,
}

/// Parses a complete head at the start of `buf`: `Ok(None)` while it is incomplete.
fn parse(buf: &[u8]) -> Result<Option<Head>, String> {
    match parse_with(buf, &mut [httparse::EMPTY_HEADER; 64]) {
        // More headers than that: again with room for them (rare).
        Err(httparse::Error::TooManyHeaders) => {
            parse_with(buf, &mut vec![httparse::EMPTY_HEADER; buf.len() / 4 + 1])
        }
        r => r,
    }
    .map_err(|e| malformed(buf, e))
}

fn parse_with<'b>(
    buf: &'b [u8],
    headers: &mut [httparse::Header<'b>],
) -> Result<Option<Head>, httparse::Error> {
    let mut resp = httparse::Response::new(headers);
    let httparse::Status::Complete(n) = resp.parse(buf)? else {
        return Ok(None);
    };
    let value = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    Ok(Some(Head {
        status: resp.code.unwrap_or(0),
        location: value("location"),
        content_length: value("content-length").and_then(|v| v.parse().ok()),
        chunked: value("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked")),
        rest: buf[n..].to_vec(),
    }))
}

fn malformed(buf: &[u8], e: httparse::Error) -> String {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    format!(
        "malformed HTTP response {:?}: {e}",
        String::from_utf8_lossy(line).trim_end()
    )
}

/// Sends `req` and reads the response head (interim 1xx responses skipped, as Go's client
/// does). Errors are messages in the words of Go's client where it has them.
pub async fn exchange<S>(io: &mut S, req: &[u8]) -> Result<Head, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    io.write_all(req).await.map_err(|e| e.to_string())?;
    io.flush().await.map_err(|e| e.to_string())?;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        if let Some(head) = parse(&buf)? {
            if (100..200).contains(&head.status) && head.status != 101 {
                buf = head.rest;
                continue;
            }
            return Ok(head);
        }
        if buf.len() >= MAX_HEAD {
            return Err(format!(
                "net/http: server response headers exceeded {MAX_HEAD} bytes; aborted"
            ));
        }
        let mut chunk = [0u8; 1024];
        let n = io.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(if buf.is_empty() {
                "EOF".to_string()
            } else {
                "unexpected EOF".to_string()
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The body after `head`, up to [`MAX_BODY`] bytes: its `Content-Length`, else up to the
/// last chunk of a chunked body (left encoded), else up to the end of the connection (for
/// the message of a redirect the probe does not follow).
pub async fn body<S>(io: &mut S, head: Head) -> Vec<u8>
where
    S: AsyncRead + Unpin,
{
    let limit = head.content_length.unwrap_or(MAX_BODY).min(MAX_BODY);
    let mut body = head.rest;
    let mut chunk = [0u8; 1024];
    while body.len() < limit && !(head.chunked && body.ends_with(b"0\r\n\r\n")) {
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(limit);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_canonical() {
        assert_eq!(canonical("user-agent"), "User-Agent");
        assert_eq!(canonical("X-CUSTOM-header"), "X-Custom-Header");
        assert_eq!(canonical("bad name"), "bad name");
    }

    #[test]
    fn request_bytes() {
        let r = request(
            "/healthz?x=1",
            &[
                ("host".into(), "10.0.0.1:80".into()),
                ("x-a".into(), "b".into()),
            ],
        );
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "GET /healthz?x=1 HTTP/1.1\r\nHost: 10.0.0.1:80\r\nX-A: b\r\nConnection: close\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn heads_are_read_across_reads_and_interim_responses_skipped() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let server = tokio::spawn(async move {
            let mut req = vec![0u8; 18];
            b.read_exact(&mut req).await.unwrap();
            for part in [
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 30",
                "2 Found\r\nlocation: /next\r\nContent-Length: 2\r\n\r\nhi",
            ] {
                b.write_all(part.as_bytes()).await.unwrap();
            }
        });
        let head = exchange(&mut a, b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert_eq!(head.status, 302);
        assert_eq!(head.location.as_deref(), Some("/next"));
        server.await.unwrap();
        assert_eq!(body(&mut a, head).await, b"hi");
    }

    #[tokio::test]
    async fn a_closed_or_garbled_response_is_an_error() {
        let (mut a, mut b) = tokio::io::duplex(64);
        tokio::spawn(async move {
            let mut req = vec![0u8; 18];
            b.read_exact(&mut req).await.unwrap();
            b.write_all(b"HTTP/1.1 200").await.unwrap();
        });
        assert_eq!(
            exchange(&mut a, b"GET / HTTP/1.1\r\n\r\n").await,
            Err("unexpected EOF".into())
        );
        let (mut a, mut b) = tokio::io::duplex(64);
        tokio::spawn(async move {
            let mut req = vec![0u8; 18];
            b.read_exact(&mut req).await.unwrap();
            b.write_all(b"SSH-2.0-x\r\n\r\n").await.unwrap();
        });
        let e = exchange(&mut a, b"GET / HTTP/1.1\r\n\r\n")
            .await
            .unwrap_err();
        assert!(
            e.starts_with("malformed HTTP response \"SSH-2.0-x\""),
            "{e}"
        );
    }
}
