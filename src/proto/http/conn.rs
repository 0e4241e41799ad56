//! One HTTP/1.1 connection's state, either side, without I/O: the
//! simulator's `http` plug-in and the real-socket interop tests drive the
//! same code (bytes in, bytes out).

use super::{encode_post, encode_response, error_status, Message, ParseError, Parser, Side, Start};
use std::collections::VecDeque;

/// The Content-Type of every reading.
pub const CONTENT_TYPE: &str = "application/octet-stream";

/// A server's side of one connection: requests in, responses out.
#[derive(Debug)]
pub struct ServerConn {
    parser: Parser,
    closing: bool,
    /// Requests answered with an error status (malformed, unsupported).
    pub errors: u64,
}

impl Default for ServerConn {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerConn {
    pub fn new() -> Self {
        ServerConn {
            parser: Parser::new(Side::Requests),
            closing: false,
            errors: 0,
        }
    }

    /// Whether the connection is to close after what was written.
    pub fn closing(&self) -> bool {
        self.closing
    }

    /// Bytes arrived. Each whole POST request is handed to `on_post` and
    /// answered `204 No Content`; another method gets 405; a request that
    /// cannot be parsed gets its 4xx/5xx with `Connection: close`.
    /// Responses are appended to `out`; `true` when the connection must
    /// close once `out` is written (the client asked, or the stream is
    /// broken). Bytes after that are ignored.
    pub fn on_data(
        &mut self,
        d: &[u8],
        out: &mut Vec<u8>,
        mut on_post: impl FnMut(&Message),
    ) -> bool {
        if self.closing {
            return true;
        }
        self.parser.feed(d);
        loop {
            match self.parser.next_message() {
                Ok(Some(m)) => {
                    let close = !m.keep_alive();
                    if matches!(&m.start, Start::Request { method, .. } if method == "POST") {
                        on_post(&m);
                        encode_response(out, 204, b"", close);
                    } else {
                        encode_response(out, 405, b"", close);
                    }
                    if close {
                        self.closing = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.errors += 1;
                    encode_response(out, error_status(&e), b"", true);
                    self.closing = true;
                    break;
                }
            }
        }
        self.closing
    }
}

/// What a client connection's received bytes amounted to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Responses {
    /// Status codes of the responses completed, in order.
    pub statuses: Vec<u16>,
    /// The server will close (or the client asked it to): send nothing
    /// more on this connection.
    pub closing: bool,
}

/// A client's side of one connection: readings waiting, at most one
/// request out (no pipelining), responses in.
#[derive(Debug)]
pub struct ClientConn {
    waiting: VecDeque<Box<[u8]>>,
    outstanding: bool,
    /// Every request asks `Connection: close`.
    close: bool,
    closing: bool,
    parser: Parser,
}

impl ClientConn {
    /// A connection; `close`: one request only, with `Connection: close`.
    pub fn new(close: bool) -> Self {
        ClientConn {
            waiting: VecDeque::new(),
            outstanding: false,
            close,
            closing: false,
            parser: Parser::new(Side::Responses),
        }
    }

    /// Queue a reading (a request body).
    pub fn push(&mut self, body: Box<[u8]>) {
        self.waiting.push_back(body);
    }

    /// Readings not sent yet (they go on another connection when this one
    /// ends).
    pub fn take_waiting(&mut self) -> VecDeque<Box<[u8]>> {
        std::mem::take(&mut self.waiting)
    }

    /// A request is out and its response has not come.
    pub fn outstanding(&self) -> bool {
        self.outstanding
    }

    /// When no request is out and the connection stays usable: the next
    /// reading as a POST of `target` to `host`, appended to `out`; the
    /// range of its body in `out`.
    pub fn next_request(
        &mut self,
        host: &str,
        target: &str,
        out: &mut Vec<u8>,
    ) -> Option<(usize, usize)> {
        if self.outstanding || self.closing {
            return None;
        }
        let body = self.waiting.pop_front()?;
        self.outstanding = true;
        if self.close {
            self.closing = true;
        }
        encode_post(out, host, target, CONTENT_TYPE, &body, self.close);
        Some((out.len() - body.len(), out.len()))
    }

    /// Bytes arrived: the responses they complete. An error means the
    /// stream cannot be followed any more (abort the connection).
    pub fn on_data(&mut self, d: &[u8]) -> Result<Responses, ParseError> {
        self.parser.feed(d);
        let mut r = Responses::default();
        while let Some(m) = self.parser.next_message()? {
            self.outstanding = false;
            if let Start::Response { status, .. } = m.start {
                r.statuses.push(status);
            }
            if !m.keep_alive() {
                self.closing = true;
            }
        }
        r.closing = self.closing;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_and_a_server_talk_one_request_at_a_time() {
        let mut c = ClientConn::new(false);
        let mut s = ServerConn::new();
        c.push(b"one".to_vec().into());
        c.push(b"two".to_vec().into());
        let mut wire = Vec::new();
        let r = c.next_request("h", "/t", &mut wire).expect("first");
        assert_eq!(&wire[r.0..r.1], b"one");
        assert_eq!(c.next_request("h", "/t", &mut wire), None, "no pipelining");
        let mut got = Vec::new();
        let mut back = Vec::new();
        assert!(!s.on_data(&wire, &mut back, |m| got.push(m.body.clone())));
        assert_eq!(got, vec![b"one".to_vec()]);
        let resp = c.on_data(&back).expect("parse");
        assert_eq!(resp.statuses, vec![204]);
        assert!(!resp.closing);
        wire.clear();
        assert!(c.next_request("h", "/t", &mut wire).is_some());
        assert!(c.take_waiting().is_empty());
    }

    #[test]
    fn close_mode_and_errors_close() {
        let mut c = ClientConn::new(true);
        c.push(b"x".to_vec().into());
        c.push(b"y".to_vec().into());
        let mut wire = Vec::new();
        assert!(c.next_request("h", "/", &mut wire).is_some());
        let mut s = ServerConn::new();
        let mut back = Vec::new();
        assert!(s.on_data(&wire, &mut back, |_| {}));
        let r = c.on_data(&back).unwrap();
        assert!(r.closing);
        assert_eq!(c.next_request("h", "/", &mut Vec::new()), None);
        assert_eq!(c.take_waiting().len(), 1, "y goes on a new connection");
        let mut s = ServerConn::new();
        let mut back = Vec::new();
        assert!(s.on_data(b"BAD\r\n\r\n", &mut back, |_| panic!("not a request")));
        assert!(back.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
        assert_eq!(s.errors, 1);
        assert!(ClientConn::new(false).on_data(b"garbage\r\n\r\n").is_err());
    }
}
