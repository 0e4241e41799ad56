//! A client and a server `TlsEndpoint` driven through a handshake in
//! memory (`tests/tls_layer.rs`, `tests/security_calibration.rs`): the
//! flights on the wire, in order, and the round trips the client waited.

use qossim::transport::layer::{LayerError, StreamLayer};
use qossim::transport::tls::{TlsConfig, TlsEndpoint};

/// A small deterministic generator for split points and payloads.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

/// Feed `data` to `to` in pieces of random length; returns what it sent
/// back and the application bytes.
pub fn feed(
    to: &mut TlsEndpoint,
    data: &[u8],
    rng: &mut Lcg,
) -> Result<(Vec<u8>, Vec<u8>), LayerError> {
    let (mut out, mut app) = (Vec::new(), Vec::new());
    let mut at = 0;
    while at < data.len() {
        let n = 1 + rng.next((data.len() - at).min(700));
        to.input(&data[at..at + n], &mut out, &mut app)?;
        at += n;
    }
    Ok((out, app))
}

/// One handshake run: the endpoints after it, the round trips the client
/// waited before it could send application bytes, and the flights on the
/// wire in order (client → server when the flag is true).
pub struct Run {
    pub client: TlsEndpoint,
    pub server: TlsEndpoint,
    pub round_trips: usize,
    pub wire: Vec<(bool, Vec<u8>)>,
}

/// Drive a client and a server with `cfg` until neither has anything to
/// send, delivering each flight in random pieces. A round trip is a
/// client flight answered by a server flight; counting stops when the
/// client becomes ready.
pub fn handshake(cfg: &TlsConfig, seed: u64) -> Run {
    let mut rng = Lcg(seed);
    let mut client = TlsEndpoint::client(cfg.clone()).expect("client config");
    let mut server = TlsEndpoint::server(cfg.clone()).expect("server config");
    let mut wire = Vec::new();
    let mut to_server = Vec::new();
    client.connected(&mut to_server);
    server.connected(&mut Vec::new());
    let mut round_trips = 0;
    let mut ready_at = client.ready().then_some(0);
    for _ in 0..10 {
        if to_server.is_empty() {
            break;
        }
        wire.push((true, to_server.clone()));
        let (to_client, app) = feed(&mut server, &to_server, &mut rng).expect("server input");
        assert!(app.is_empty(), "{cfg:?}: handshake bytes came out as data");
        to_server.clear();
        if to_client.is_empty() {
            break;
        }
        if ready_at.is_none() {
            round_trips += 1;
        }
        wire.push((false, to_client.clone()));
        let (back, app) = feed(&mut client, &to_client, &mut rng).expect("client input");
        assert!(app.is_empty());
        if ready_at.is_none() && client.ready() {
            ready_at = Some(round_trips);
        }
        to_server = back;
    }
    Run {
        client,
        server,
        round_trips: ready_at.expect("client never became ready"),
        wire,
    }
}
