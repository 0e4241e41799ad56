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
