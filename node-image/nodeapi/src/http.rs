//! The little HTTP/1.1 the node API needs: one request per connection, `Content-Length` bodies,
//! `Connection: close`.

use std::io::{BufRead, BufReader, Read, Write};

use crate::error::NodeApiError;

/// Largest request or response head / body accepted.
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 64 << 20;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Request {
    /// First header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// First query parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn bad(m: impl Into<String>) -> NodeApiError {
    NodeApiError::Http(m.into())
}

fn read_head<R: BufRead>(r: &mut R) -> Result<(String, Vec<(String, String)>), NodeApiError> {
    let mut first = String::new();
    let mut headers = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = r
            .read_line(&mut line)
            .map_err(|e| bad(format!("read: {e}")))?;
        total += n;
        if n == 0 || total > MAX_HEAD {
            return Err(bad("truncated or oversized head"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if first.is_empty() {
            first = line.to_string();
            continue;
        }
        if line.is_empty() {
            return Ok((first, headers));
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| bad("header without colon"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
}

fn read_body<R: Read>(r: &mut R, headers: &[(String, String)]) -> Result<Vec<u8>, NodeApiError> {
    let len = match headers.iter().find(|(k, _)| k == "content-length") {
        Some((_, v)) => v.parse::<usize>().map_err(|_| bad("bad content-length"))?,
        None => return Ok(Vec::new()),
    };
    if len > MAX_BODY {
        return Err(bad("body too large"));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)
        .map_err(|e| bad(format!("body: {e}")))?;
    Ok(body)
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one request.
pub fn read_request<S: Read>(stream: S) -> Result<Request, NodeApiError> {
    let mut r = BufReader::new(stream);
    let mut req = read_request_head(&mut r)?;
    req.body = read_body(&mut r, &req.headers)?;
    Ok(req)
}

/// Reads the request line and headers only (the body is left in `r`, for streamed uploads).
pub fn read_request_head<R: BufRead>(r: &mut R) -> Result<Request, NodeApiError> {
    let (first, headers) = read_head(r)?;
    let mut parts = first.split_whitespace();
    let (method, target) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v)) if v.starts_with("HTTP/1.") => (m, t),
        _ => return Err(bad(format!("bad request line `{first}`"))),
    };
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (unescape(k), unescape(v))
        })
        .collect();
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query,
        headers,
        body: Vec::new(),
    })
}

/// Reads the body of a request whose head [`read_request_head`] returned.
pub fn read_request_body<R: Read>(r: &mut R, req: &mut Request) -> Result<(), NodeApiError> {
    req.body = read_body(r, &req.headers)?;
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        _ => "Error",
    }
}

/// Writes a response and flushes.
pub fn write_response<W: Write>(
    w: &mut W,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    write!(
        w,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    )?;
    w.write_all(body)?;
    w.flush()
}

/// Writes a request.
pub fn write_request<W: Write + ?Sized>(
    w: &mut W,
    method: &str,
    host: &str,
    target: &str,
    token: &str,
    body: &[u8],
) -> std::io::Result<()> {
    write_request_head(w, method, host, target, token, body.len() as u64)?;
    w.write_all(body)?;
    w.flush()
}

/// Writes a request head announcing a body of `len` bytes, which the caller streams after it.
/// An empty `token` sends no `Authorization` (a client certificate is the credential).
pub fn write_request_head<W: Write + ?Sized>(
    w: &mut W,
    method: &str,
    host: &str,
    target: &str,
    token: &str,
    len: u64,
) -> std::io::Result<()> {
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    write!(
        w,
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Length: {len}\r\nConnection: close\r\n\r\n"
    )
}

/// Reads a response: status and body.
pub fn read_response<S: Read>(stream: S) -> Result<(u16, Vec<u8>), NodeApiError> {
    let mut r = BufReader::new(stream);
    let (first, headers) = read_head(&mut r)?;
    let status = first
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line `{first}`")))?;
    Ok((status, read_body(&mut r, &headers)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip() {
        let mut buf = Vec::new();
        write_request(
            &mut buf,
            "POST",
            "n:1",
            "/v1/logs?source=init&since=4&x=a%20b",
            "tok",
            b"{}",
        )
        .unwrap();
        let r = read_request(&buf[..]).unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/logs"));
        assert_eq!(r.param("source"), Some("init"));
        assert_eq!(r.param("since"), Some("4"));
        assert_eq!(r.param("x"), Some("a b"));
        assert_eq!(r.header("authorization"), Some("Bearer tok"));
        assert_eq!(r.body, b"{}");
        let mut out = Vec::new();
        write_response(&mut out, 401, "text/plain", b"no").unwrap();
        assert_eq!(read_response(&out[..]).unwrap(), (401, b"no".to_vec()));
        assert!(read_request(&b"GARBAGE\r\n\r\n"[..]).is_err());
    }
}
