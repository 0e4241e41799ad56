//! State-machine tests `test_<state>_<event>` through the Pair harness and
//! by hand-made segments (RFC 9293 §3.10).

mod tcp_common;
use tcp_common::*;

use qossim::sim::{SimDuration, SimTime};
use qossim::transport::tcp::{
    reset_for, Config, Connection, Event, Listener, LostReason, Segment, State, TcpFlags, TcpRepr,
};

fn seg(r: TcpRepr, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0; r.header_len() + payload.len()];
    let r = TcpRepr {
        payload_len: payload.len() as u16,
        ..r
    };
    b.resize(r.buffer_len(), 0);
    r.emit(&mut b, *SERVER.ip(), *CLIENT.ip(), payload).unwrap();
    b
}

#[test]
fn test_handshake_frame_sizes_linux_like() {
    let mut p = Pair::new(Config::linux_like(), ms(1));
    p.establish();
    // 74-byte frames with Ethernet = 60 bytes IP+TCP = 40-byte TCP header.
    let syn = &p.log[0];
    assert!(syn.info.flags.syn() && !syn.info.flags.ack());
    assert_eq!(20 + syn.info.len, 60);
    let synack = &p.log[1];
    assert!(synack.info.flags.syn() && synack.info.flags.ack());
    assert_eq!(20 + synack.info.len, 60);
    // Pure ACK with timestamps: 66-byte frame = 52 bytes IP+TCP.
    let ack = &p.log[2];
    assert_eq!(ack.info.flags, TcpFlags(TcpFlags::ACK));
    assert_eq!(20 + ack.info.len, 52);
    assert_eq!(p.client.negotiated(), (true, Some((7, 7)), true));
    // MSS 1460 minus 12 bytes of timestamps.
    assert_eq!(p.client.smss(), 1448);
    assert_eq!(p.client.state(), State::Established);
    assert_eq!(p.server.state(), State::Established);
}

#[test]
fn test_handshake_frame_sizes_rfc() {
    let mut p = Pair::new(Config::rfc(), ms(1));
    p.establish();
    assert_eq!(p.log[0].info.len, 24, "SYN with MSS only");
    assert_eq!(p.log[2].info.len, 20, "pure ACK without options");
    assert_eq!(p.client.negotiated(), (false, None, false));
    assert_eq!(p.client.smss(), 1460);
}

#[test]
fn test_syn_sent_syn_lost_backoff() {
    // The first 3 SYNs are lost: retransmissions at 1, 3, 7 s (RTO 1 s
    // doubling); connected at 7 s + RTT.
    let mut p = Pair::new(Config::linux_like(), ms(10));
    let mut syns = 0;
    p.set_fate(move |d, t, _| {
        if d == Dir::ToServer && t.flags.syn() {
            syns += 1;
            if syns <= 3 {
                return vec![];
            }
        }
        vec![SimDuration::ZERO]
    });
    p.establish();
    let syn_times: Vec<u64> = p
        .log
        .iter()
        .filter(|s| s.dir == Dir::ToServer && s.info.flags.syn())
        .map(|s| s.at.as_nanos() / 1_000_000)
        .collect();
    assert_eq!(syn_times, vec![0, 1000, 3000, 7000]);
    let connected = p
        .client_events
        .iter()
        .find(|e| e.1 == Event::Connected)
        .unwrap()
        .0;
    assert_eq!(connected, at_ms(7020));
    assert!(p.log[1].info.is_retransmission && !p.log[0].info.is_retransmission);
}

#[test]
fn test_syn_sent_gives_up_after_syn_retries() {
    let mut p = Pair::new(Config::linux_like(), ms(10));
    p.set_fate(|d, _, _| {
        if d == Dir::ToServer {
            vec![]
        } else {
            vec![SimDuration::ZERO]
        }
    });
    p.run(at_ms(1_000_000));
    let syns = p.log.iter().filter(|s| s.info.flags.syn()).count();
    assert_eq!(syns, 7, "1 SYN + tcp_syn_retries 6");
    let lost = p.client_events.last().unwrap();
    assert_eq!(
        lost.1,
        Event::ConnectionLost {
            reason: LostReason::HandshakeTimeout
        }
    );
    // 1+2+4+8+16+32+64 = 127 s.
    assert_eq!(lost.0, at_ms(127_000));
    assert!(p.client.is_closed());
}

#[test]
fn test_syn_received_synack_lost_backoff() {
    // SYN-ACKs lost twice: the server retransmits at 1 s and 3 s; the
    // client's SYN retransmission at 1 s also makes the server resend.
    let mut p = Pair::new(Config::rfc(), ms(10));
    let mut n = 0;
    p.set_fate(move |d, t, _| {
        if d == Dir::ToClient && t.flags.syn() {
            n += 1;
            if n <= 2 {
                return vec![];
            }
        }
        vec![SimDuration::ZERO]
    });
    p.establish();
    let synacks: Vec<&Sent> = p
        .log
        .iter()
        .filter(|s| s.dir == Dir::ToClient && s.info.flags.syn())
        .collect();
    assert!(synacks.len() >= 3);
    assert!(synacks[1..].iter().all(|s| s.info.is_retransmission));
    assert_eq!(p.server.state(), State::Established);
}

/// SYN-RECEIVED: the client's SYN arrives twice (its retransmission
/// crossed our SYN-ACK), which queues the SYN-ACK again; the ACK of the
/// first SYN-ACK then establishes the connection before that resend.
/// Data written by the server must still go out at ISS + 1 (it stalled:
/// SND.NXT stayed at ISS, Nagle waited for an ACK of nothing and no timer
/// was armed — found by the `tcp_pair` fuzz target).
#[test]
fn test_syn_received_duplicate_syn_then_ack_sends_data() {
    let (c, s) = (*CLIENT.ip(), *SERVER.ip());
    let mut client = Connection::connect(Config::linux_like(), CLIENT, SERVER, 1500, 1000);
    let mut server = Connection::listen(Config::linux_like(), SERVER, 1500, 5000);
    let mut buf = Vec::new();
    let t0 = SimTime::ZERO;
    client.poll_transmit(t0, &mut buf).expect("SYN");
    let syn = std::mem::take(&mut buf);
    server.handle_input(t0, Segment::new(c, s, &syn)).unwrap();
    server.poll_transmit(t0, &mut buf).expect("SYN-ACK");
    let synack = std::mem::take(&mut buf);
    let t1 = at_ms(1000);
    server.handle_input(t1, Segment::new(c, s, &syn)).unwrap();
    client
        .handle_input(t1, Segment::new(s, c, &synack))
        .unwrap();
    client.poll_transmit(t1, &mut buf).expect("ACK");
    let ack = std::mem::take(&mut buf);
    server.handle_input(t1, Segment::new(c, s, &ack)).unwrap();
    assert_eq!(server.state(), State::Established);
    assert_eq!(server.write(&[7; 100]), 100);
    let mut data = None;
    while let Some(t) = server.poll_transmit(t1, &mut buf) {
        if t.payload_len > 0 {
            data = Some(t);
        }
        buf.clear();
    }
    let t = data.expect("the written bytes are sent");
    assert_eq!((t.seq, t.payload_len), (5001, 100));
}

#[test]
fn test_syn_sent_rst() {
    let cfg = Config::rfc();
    let mut c = Connection::connect(cfg, CLIENT, SERVER, 1500, 100);
    let mut buf = Vec::new();
    let syn = c.poll_transmit(SimTime::ZERO, &mut buf).unwrap();
    assert!(syn.flags.syn());
    let base = TcpRepr {
        src_port: SERVER.port(),
        dst_port: CLIENT.port(),
        ..TcpRepr::default()
    };
    // RST with an unacceptable ACK is ignored (RFC 9293 §3.10.7.3).
    let bad = seg(
        TcpRepr {
            ack: 5,
            flags: TcpFlags(TcpFlags::RST | TcpFlags::ACK),
            ..base
        },
        &[],
    );
    c.handle_input(
        SimTime::ZERO,
        Segment::new(*SERVER.ip(), *CLIENT.ip(), &bad),
    )
    .unwrap();
    assert_eq!(c.state(), State::SynSent);
    assert_eq!(c.poll_event(), None);
    // "Connection refused": RST,ACK acknowledging the SYN.
    let rst = seg(
        TcpRepr {
            ack: 101,
            flags: TcpFlags(TcpFlags::RST | TcpFlags::ACK),
            ..base
        },
        &[],
    );
    c.handle_input(
        SimTime::ZERO,
        Segment::new(*SERVER.ip(), *CLIENT.ip(), &rst),
    )
    .unwrap();
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.poll_event(), Some(Event::Reset));
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn test_closed_port_answers_rst() {
    let mut c = Connection::connect(Config::rfc(), CLIENT, SERVER, 1500, 100);
    let mut buf = Vec::new();
    let syn = c.poll_transmit(SimTime::ZERO, &mut buf).unwrap();
    let mut out = [0u8; 64];
    let n = reset_for(&buf[..syn.len], &mut out).unwrap();
    c.handle_input(
        SimTime::ZERO,
        Segment::new(*SERVER.ip(), *CLIENT.ip(), &out[..n]),
    )
    .unwrap();
    assert_eq!(c.poll_event(), Some(Event::Reset));
}

#[test]
fn test_established_fin() {
    let mut p = Pair::new(Config::linux_like(), ms(5));
    p.establish();
    p.server.close();
    p.run_until(at_ms(10_000), |p| {
        p.has_client_event(Event::PeerClosed) && p.server.state() != State::FinWait1
    });
    assert_eq!(p.client.state(), State::CloseWait);
    assert_eq!(p.server.state(), State::FinWait2);
    p.client.close();
    p.run(at_ms(200_000));
    assert!(p.has_client_event(Event::Closed));
    assert!(p.has_server_event(Event::Closed));
    // The server went through TIME_WAIT for 60 s after the client's FIN.
    let fin_at = p
        .log
        .iter()
        .find(|s| s.dir == Dir::ToServer && s.info.flags.fin())
        .unwrap()
        .at;
    let closed = p
        .server_events
        .iter()
        .find(|e| e.1 == Event::Closed)
        .unwrap()
        .0;
    assert_eq!(closed, fin_at + ms(5) + SimDuration::from_secs(60));
    assert!(p.client.is_closed() && p.server.is_closed());
}

#[test]
fn test_established_simultaneous_close() {
    let mut p = Pair::new(Config::rfc(), ms(5));
    p.establish();
    p.client.close();
    p.server.close();
    assert_eq!(p.client.state(), State::FinWait1);
    // Both FINs cross: each end sees the other's FIN in FIN-WAIT-1.
    p.run_until(at_ms(100_000), |p| {
        p.client.state() == State::TimeWait && p.server.state() == State::TimeWait
    });
    assert_eq!(p.client.state(), State::TimeWait);
    assert_eq!(p.server.state(), State::TimeWait);
    p.run(at_ms(1_000_000));
    assert!(p.has_client_event(Event::Closed) && p.has_server_event(Event::Closed));
}

#[test]
fn test_established_data_then_fin_in_order() {
    let mut p = Pair::new(Config::linux_like(), ms(5));
    p.establish();
    p.to_write = (0..5000u32).map(|i| i as u8).collect();
    p.run_until(at_ms(5_000), |p| {
        p.client.send_buffered() == 0 && p.received.len() == 5000
    });
    p.client.close();
    p.run_until(at_ms(10_000), |p| p.has_server_event(Event::PeerClosed));
    assert_eq!(p.received, p.to_write);
    assert_eq!(p.server.state(), State::CloseWait);
}

#[test]
fn test_established_rst_challenge() {
    // RFC 5961 §3.2: an in-window RST that does not match RCV.NXT gets a
    // challenge ACK; an exact one resets.
    let mut p = Pair::new(Config::rfc(), ms(5));
    p.establish();
    let mut buf = [0u8; 64];
    let rcv_nxt = p
        .log
        .iter()
        .rev()
        .find(|s| s.dir == Dir::ToServer)
        .unwrap()
        .info
        .ack;
    let snd = 3_000_000_001u32; // server ISS + 1
    let mk = |seq: u32, b: &mut [u8]| {
        let r = TcpRepr {
            src_port: SERVER.port(),
            dst_port: CLIENT.port(),
            seq,
            flags: TcpFlags(TcpFlags::RST),
            ..TcpRepr::default()
        };
        r.emit(b, *SERVER.ip(), *CLIENT.ip(), &[]).unwrap()
    };
    assert_eq!(rcv_nxt, snd);
    let n = mk(snd + 10, &mut buf);
    p.client
        .handle_input(p.now, Segment::new(*SERVER.ip(), *CLIENT.ip(), &buf[..n]))
        .unwrap();
    assert_eq!(p.client.state(), State::Established);
    let mut out = Vec::new();
    let ack = p.client.poll_transmit(p.now, &mut out).unwrap();
    assert_eq!(ack.flags, TcpFlags(TcpFlags::ACK));
    let n = mk(snd, &mut buf);
    p.client
        .handle_input(p.now, Segment::new(*SERVER.ip(), *CLIENT.ip(), &buf[..n]))
        .unwrap();
    assert_eq!(p.client.state(), State::Closed);
    assert_eq!(p.client.poll_event(), Some(Event::Reset));
}

#[test]
fn test_established_zero_window_probe() {
    let mut server = Config::rfc();
    server.recv_buffer = 2000;
    let mut p = Pair::with(Config::rfc(), server, ms(10));
    p.establish();
    p.server_reads = false;
    p.to_write = (0..6000u32).map(|i| (i * 7) as u8).collect();
    // The window closes after 2000 bytes; the client probes with backoff.
    p.run_until(at_ms(20_000), |p| p.client.stats().window_probes >= 3);
    assert_eq!(p.client.send_window(), 0);
    assert!(p.client.stats().window_probes >= 3);
    let probes: Vec<SimTime> = p
        .log
        .iter()
        .filter(|s| {
            s.dir == Dir::ToServer
                && s.info.payload_len == 0
                && s.info.seq == s.info.seq
                && s.at > at_ms(100)
        })
        .filter(|s| s.info.flags == TcpFlags(TcpFlags::ACK))
        .map(|s| s.at)
        .collect();
    assert!(probes.len() >= 3);
    let g1 = probes[1].saturating_since(probes[0]);
    let g2 = probes[2].saturating_since(probes[1]);
    assert_eq!(g2.as_nanos(), 2 * g1.as_nanos(), "persist timer backs off");
    // The application reads: a window update restarts the flow.
    p.server_reads = true;
    p.run_until(at_ms(200_000), |p| p.received.len() == 6000);
    assert_eq!(p.received, p.to_write);
    assert_eq!(p.client.stats().timeouts, 0);
}

#[test]
fn test_listen_accepts_via_listener() {
    let cfg = Config::linux_like();
    let mut c = Connection::connect(cfg, CLIENT, SERVER, 1500, 7);
    let mut buf = Vec::new();
    let syn = c.poll_transmit(SimTime::ZERO, &mut buf).unwrap();
    let l = Listener::new(cfg, SERVER, 1280);
    let mut s = l
        .accept(
            SimTime::ZERO,
            Segment::new(*CLIENT.ip(), *SERVER.ip(), &buf[..syn.len]),
            99,
        )
        .unwrap();
    assert_eq!(s.state(), State::SynReceived);
    assert_eq!(s.remote(), CLIENT.into());
    buf.clear();
    let sa = s.poll_transmit(SimTime::ZERO, &mut buf).unwrap();
    assert!(sa.flags.syn() && sa.flags.ack() && sa.ack == 8);
    let (r, _) = TcpRepr::parse_unchecked(&buf[..sa.len]).unwrap();
    assert_eq!(r.mss, Some(1240));
    c.handle_input(
        SimTime::ZERO,
        Segment::new(*SERVER.ip(), *CLIENT.ip(), &buf[..sa.len]),
    )
    .unwrap();
    assert_eq!(c.state(), State::Established);
    assert_eq!(c.smss(), 1228);
    // A non-SYN is refused.
    buf.clear();
    let ack = c.poll_transmit(SimTime::ZERO, &mut buf).unwrap();
    assert!(l
        .accept(
            SimTime::ZERO,
            Segment::new(*CLIENT.ip(), *SERVER.ip(), &buf[..ack.len]),
            1
        )
        .is_err());
}

#[test]
fn test_established_nagle() {
    for nagle in [true, false] {
        let mut cfg = Config::rfc();
        cfg.nagle = nagle;
        let mut p = Pair::new(cfg, ms(50));
        p.establish();
        assert_eq!(p.client.write(b"hello"), 5);
        p.step();
        assert_eq!(p.client.write(b"world"), 5);
        p.step();
        let data = p.data_segments(Dir::ToServer);
        if nagle {
            assert_eq!(data.len(), 1, "second runt waits for the ACK");
        } else {
            assert_eq!(data.len(), 2);
        }
        p.run_until(at_ms(5_000), |p| p.received.len() == 10);
        assert_eq!(p.received, b"helloworld");
    }
}

#[test]
fn test_established_delayed_ack() {
    // rfc profile: one small segment is ACKed after 200 ms; two full-sized
    // segments are ACKed at once (RFC 5681 §4.2).
    let mut p = Pair::new(Config::rfc(), ms(10));
    p.establish();
    let t0 = p.now;
    p.client.write(b"x");
    p.run_until(at_ms(5_000), |p| {
        p.log.iter().any(|s| s.dir == Dir::ToClient && s.at > t0)
    });
    let ack = p
        .log
        .iter()
        .find(|s| s.dir == Dir::ToClient && s.at > t0)
        .unwrap();
    assert_eq!(ack.at, t0 + ms(10) + ms(200));
    let t1 = p.now;
    p.to_write = vec![1; 2 * 1460];
    p.run_until(at_ms(10_000), |p| {
        p.log.iter().any(|s| s.dir == Dir::ToClient && s.at > t1)
    });
    let ack = p
        .log
        .iter()
        .find(|s| s.dir == Dir::ToClient && s.at > t1)
        .unwrap();
    assert_eq!(ack.at, t1 + ms(10), "second full segment is ACKed at once");
    assert_eq!(ack.info.ack, p.client.stats().bytes_sent as u32 + 1_000_001);
}

#[test]
fn test_established_user_timeout() {
    let mut cfg = Config::linux_like();
    cfg.user_timeout = Some(SimDuration::from_secs(10));
    let mut p = Pair::new(cfg, ms(5));
    p.establish();
    p.set_fate(|d, _, _| {
        if d == Dir::ToServer {
            vec![]
        } else {
            vec![SimDuration::ZERO]
        }
    });
    let t0 = p.now;
    p.client.write(b"lost forever");
    p.run(at_ms(100_000));
    let lost = p.client_events.last().unwrap();
    assert_eq!(
        lost.1,
        Event::ConnectionLost {
            reason: LostReason::UserTimeout
        }
    );
    assert_eq!(lost.0, t0 + SimDuration::from_secs(10));
}

#[test]
fn connection_is_compact() {
    let size = std::mem::size_of::<Connection>();
    // about 0.6 KB per connection: 10,000 MQTT clients need 6.5 MB for TCP
    // state. 40 of these bytes are CUBIC's (W_max, cwnd_prior, W_est, the
    // curve's origin) and 24 RACK-TLP's (the scoreboard pointer, the timer
    // kind, pingpong, the latest out-of-order sequence; the scoreboard
    // itself is boxed and exists only once SACK was negotiated); 592 before
    // both; 8 more for Minshall's Nagle (`snd_sml`, issue 21).
    assert!(size <= 664, "Connection is {size} bytes");
}
