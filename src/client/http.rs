//! A small HTTP/1.1 client over any byte stream, used for the local Unix socket and plain TCP.
//!
//! It owns nothing but framing: one `POST` with a `Content-Length` body, and a response read
//! with `Content-Length`, chunked encoding or read-to-close. It keeps the connection open so a
//! login, a query and a logout share one socket. It never initialises TLS, which keeps
//! `xe host-list` over the Unix socket to a few milliseconds.

use std::io::{self, BufRead, BufReader, Read, Write};

/// A response: status code, the `content-type` header (lower-cased, may be empty) and body.
#[derive(Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The `content-type` header value, lower-cased; empty when absent.
    pub content_type: String,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// One HTTP connection over a stream `S` (a `UnixStream` or a `TcpStream`).
pub struct Conn<S: Read + Write> {
    reader: BufReader<S>,
    host: String,
}

impl<S: Read + Write> Conn<S> {
    /// Wrap a connected stream; `host` goes into the `Host` header.
    pub fn new(stream: S, host: &str) -> Conn<S> {
        Conn {
            reader: BufReader::new(stream),
            host: host.to_string(),
        }
    }

    /// Send one `POST` and read its response.
    pub fn post(&mut self, path: &str, content_type: &str, body: &[u8]) -> io::Result<Response> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: xe-cli/Unix/0.2\r\noriginator: cli\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            self.host,
            body.len()
        );
        let mut req = Vec::with_capacity(head.len() + body.len());
        req.extend_from_slice(head.as_bytes());
        req.extend_from_slice(body);
        let s = self.reader.get_mut();
        s.write_all(&req)?;
        s.flush()?;
        read_response(&mut self.reader)
    }
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed")
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn read_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(eof());
    }
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    Ok(line)
}

/// Read one response from a buffered stream.
pub fn read_response<R: BufRead>(r: &mut R) -> io::Result<Response> {
    let status_line = read_line(r)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| bad("bad HTTP status line"))?;
    let mut content_type = String::new();
    let mut length: Option<usize> = None;
    let mut chunked = false;
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = v.to_ascii_lowercase(),
            "content-length" => length = v.parse().ok(),
            "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let size_line = read_line(r)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                // Trailers, then the empty line.
                while !read_line(r)?.is_empty() {}
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            read_line(r)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
    }
    Ok(Response {
        status,
        content_type,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_content_length_and_chunked_bodies() {
        let raw =
            b"HTTP/1.1 200 OK\r\nContent-Type: Application/JSON\r\ncontent-length: 5\r\n\r\nhello";
        let r = read_response(&mut &raw[..]).unwrap();
        assert_eq!(
            (r.status, r.content_type.as_str()),
            (200, "application/json")
        );
        assert_eq!(r.body, b"hello");
        let raw = b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = read_response(&mut &raw[..]).unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.body, b"abcde");
        assert!(read_response(&mut &b""[..]).is_err());
    }
}
