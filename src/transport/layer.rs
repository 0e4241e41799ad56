//! Byte-stream layers between TCP and a stream application (issue 21): TLS
//! records and handshakes, WebSocket framing — the "stream-app layer" of
//! the host stack. A layer is sans-IO: the host feeds it what TCP
//! delivered and writes what it produces; it knows nothing of sockets,
//! time or the application above. Layers stack (WebSocket over TLS is
//! `wss`): the upper layer's output is the lower one's application input.
//!
//! No real cryptography runs: what costs bytes and round trips — record
//! and frame headers, tags, padding, handshake flights — is produced
//! byte-accurately and structurally valid (tshark dissects it), and the
//! "ciphertext" carries the application's bytes so the peer layer can
//! hand them up.

/// Why a layer gave up on its connection. The host closes the connection
/// (after sending what the failing call appended to `out`, e.g. an alert
/// or a WebSocket close frame) and counts the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerError {
    /// The peer's bytes do not parse as this layer's format.
    Malformed(&'static str),
    /// The peer sent something the handshake does not allow here, or an
    /// alert / close: the connection cannot go on.
    Refused(&'static str),
}

impl std::fmt::Display for LayerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerError::Malformed(w) => write!(f, "malformed: {w}"),
            LayerError::Refused(w) => write!(f, "refused: {w}"),
        }
    }
}

/// One byte-stream layer endpoint (client or server side of one
/// connection).
pub trait StreamLayer {
    /// The stream below is up (TCP established). The client side appends
    /// its first flight (ClientHello, HTTP upgrade request) to `out`; a
    /// server appends nothing.
    fn connected(&mut self, out: &mut Vec<u8>);

    /// Bytes from the peer, in order and split anyhow (a record may span
    /// calls). Appends to `out` what must go back to the peer (the next
    /// handshake flight, a pong) and to `app` the application bytes the
    /// input carried, in order.
    fn input(
        &mut self,
        data: &[u8],
        out: &mut Vec<u8>,
        app: &mut Vec<u8>,
    ) -> Result<(), LayerError>;

    /// Whether application bytes may be sealed now: the handshake is done
    /// (or, for TLS 1.3 0-RTT, early data is allowed).
    fn ready(&self) -> bool;

    /// Whether the handshake has completed (both sides' Finished, the
    /// upgrade answered): the host's handshake-time metric stops here.
    fn established(&self) -> bool;

    /// Seal one application write into `out` (one record or frame, or
    /// several when the write is larger than one may carry). Appends to
    /// `spans` the (start, end) offsets in `out`, as `out` stood before
    /// the call plus the appended bytes, of the application bytes, so the
    /// host can tell layer overhead from payload. Only called when
    /// `ready()`.
    fn seal(&mut self, data: &[u8], out: &mut Vec<u8>, spans: &mut Vec<(usize, usize)>);

    /// A graceful close: append the layer's closing message (TLS
    /// close_notify alert, WebSocket close frame), if it has one.
    fn close(&mut self, out: &mut Vec<u8>);
}

/// Two layers stacked: `upper` (WebSocket) runs inside `lower` (TLS) — the
/// `wss` of MQTT. The upper layer starts once the lower one is ready; its
/// handshake and frames travel sealed in the lower layer's records.
pub struct Stack<U, L> {
    pub upper: U,
    pub lower: L,
    started: bool,
    tmp_in: Vec<u8>,
    tmp_out: Vec<u8>,
    spans_u: Vec<(usize, usize)>,
    spans_l: Vec<(usize, usize)>,
}

impl<U: StreamLayer, L: StreamLayer> Stack<U, L> {
    pub fn new(upper: U, lower: L) -> Self {
        Stack {
            upper,
            lower,
            started: false,
            tmp_in: Vec::new(),
            tmp_out: Vec::new(),
            spans_u: Vec::new(),
            spans_l: Vec::new(),
        }
    }

    /// Seal the upper layer's own output (`tmp_out`) into `out`.
    fn flush_upper(&mut self, out: &mut Vec<u8>) {
        if !self.tmp_out.is_empty() {
            self.spans_l.clear();
            self.lower.seal(&self.tmp_out, out, &mut self.spans_l);
            self.tmp_out.clear();
        }
    }

    /// Start the upper layer once the lower one carries data.
    fn start_upper(&mut self, out: &mut Vec<u8>) {
        if !self.started && self.lower.ready() {
            self.started = true;
            self.tmp_out.clear();
            self.upper.connected(&mut self.tmp_out);
            self.flush_upper(out);
        }
    }
}

/// Map ranges of an intermediate buffer (`inner`) through `spans` (where
/// consecutive bytes of that buffer sit in the output) into output ranges.
pub fn compose_spans(
    inner: &[(usize, usize)],
    spans: &[(usize, usize)],
    out: &mut Vec<(usize, usize)>,
) {
    let mut at = 0; // offset in the intermediate buffer of the span's first byte
    for &(s, e) in spans {
        let len = e - s;
        for &(a, b) in inner {
            let (lo, hi) = (a.max(at), b.min(at + len));
            if hi > lo {
                out.push((s + lo - at, s + hi - at));
            }
        }
        at += len;
    }
}

impl<U: StreamLayer, L: StreamLayer> StreamLayer for Stack<U, L> {
    fn connected(&mut self, out: &mut Vec<u8>) {
        self.lower.connected(out);
        self.start_upper(out);
    }

    fn input(
        &mut self,
        data: &[u8],
        out: &mut Vec<u8>,
        app: &mut Vec<u8>,
    ) -> Result<(), LayerError> {
        self.tmp_in.clear();
        self.lower.input(data, out, &mut self.tmp_in)?;
        self.start_upper(out);
        if self.tmp_in.is_empty() {
            return Ok(());
        }
        self.tmp_out.clear();
        let r = self.upper.input(&self.tmp_in, &mut self.tmp_out, app);
        self.flush_upper(out);
        r
    }

    fn ready(&self) -> bool {
        self.started && self.upper.ready()
    }

    fn established(&self) -> bool {
        self.lower.established() && self.started && self.upper.established()
    }

    fn seal(&mut self, data: &[u8], out: &mut Vec<u8>, spans: &mut Vec<(usize, usize)>) {
        self.tmp_out.clear();
        self.spans_u.clear();
        self.upper.seal(data, &mut self.tmp_out, &mut self.spans_u);
        self.spans_l.clear();
        self.lower.seal(&self.tmp_out, out, &mut self.spans_l);
        self.tmp_out.clear();
        compose_spans(&self.spans_u, &self.spans_l, spans);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.started {
            self.tmp_out.clear();
            self.upper.close(&mut self.tmp_out);
            self.flush_upper(out);
        }
        self.lower.close(out);
    }
}

#[cfg(test)]
mod tests {
    use super::compose_spans;

    #[test]
    fn spans_compose_through_two_layers() {
        // upper: 6-byte frame header, data 0..10 at 6..16; lower: records
        // of 8 intermediate bytes with 5-byte headers and 16-byte tags
        let inner = [(6, 16)];
        let spans = [(5, 13), (34, 42)]; // 16 intermediate bytes in two records
        let mut out = Vec::new();
        compose_spans(&inner, &spans, &mut out);
        assert_eq!(out, vec![(11, 13), (34, 42)]);
        let n: usize = out.iter().map(|(a, b)| b - a).sum();
        assert_eq!(n, 10);
    }
}
