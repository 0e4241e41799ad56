//! Retransmission timer (RFC 6298), Karn's rule, the Linux RTO formula,
//! fast retransmit (RFC 5681 §3.2) and NewReno (RFC 6582).

mod tcp_common;
use tcp_common::*;

use qossim::sim::{SimDuration, SimTime};
use qossim::transport::tcp::rto::RttEstimator;
use qossim::transport::tcp::{Config, Event, LostReason};

/// Drop the first transmissions (not retransmissions) of client data
/// segments whose offset from the first data byte is in `offsets`.
fn drop_first_tx(p: &mut Pair, offsets: &'static [u32], data_start: u32) {
    p.set_fate(move |d, t, _| {
        let off = t.seq.wrapping_sub(data_start);
        if d == Dir::ToServer && t.payload_len > 0 && !t.is_retransmission && offsets.contains(&off)
        {
            vec![]
        } else {
            vec![SimDuration::ZERO]
        }
    });
}

/// Client ISS in the harness is 1_000_000, so data starts at 1_000_001.
const DATA: u32 = 1_000_001;

fn warm_up(p: &mut Pair, n: usize) {
    // A few request/ACK exchanges to get RTT samples.
    for _ in 0..n {
        let before = p.received.len();
        p.client.write(&[7; 100]);
        p.run_until(p.now + SimDuration::from_secs(5), |p| {
            p.received.len() == before + 100 && p.client.send_buffered() == 0
        });
    }
}

#[test]
fn rto_single_loss_fires_at_computed_rto() {
    for cfg in [Config::rfc(), linux_no_sack(), Config::linux_like()] {
        let mut p = Pair::new(cfg, ms(20));
        p.establish();
        warm_up(&mut p, 3);
        let rto = p.client.current_rto();
        // Hand-check the estimator's own RTO against its SRTT/RTTVAR.
        let srtt = p.client.rtt().srtt().unwrap().as_nanos();
        let var = p.client.rtt().rttvar().as_nanos();
        let expect = match cfg.profile {
            qossim::transport::tcp::Profile::Rfc => {
                (srtt + (4 * var).max(1_000_000)).max(1_000_000_000)
            }
            qossim::transport::tcp::Profile::LinuxLike => srtt + (4 * var).max(200_000_000),
        };
        assert_eq!(rto.as_nanos(), expect);
        let sent_before = p.client.stats().bytes_sent as u32;
        let first = DATA + sent_before;
        p.set_fate(move |d, t, _| {
            if d == Dir::ToServer && t.seq == first && !t.is_retransmission && t.payload_len > 0 {
                vec![]
            } else {
                vec![SimDuration::ZERO]
            }
        });
        p.client.write(&[9; 50]);
        p.run_until(p.now + SimDuration::from_secs(10), |p| {
            p.client.send_buffered() == 0
        });
        let tx: Vec<&Sent> = p
            .log
            .iter()
            .filter(|s| s.dir == Dir::ToServer && s.info.seq == first && s.info.payload_len > 0)
            .collect();
        assert_eq!(tx.len(), 2, "{tx:?}");
        assert!(tx[1].info.is_retransmission);
        assert_eq!(tx[1].at.saturating_since(tx[0].at), rto);
        assert_eq!(p.client.stats().fast_retransmits, 0);
        if cfg.sack_permitted {
            // RACK-TLP: one segment in flight, PTO = 2·SRTT + 200 ms is
            // later than the RTO, so the probe fires at the RTO's time
            // (Linux `tcp_schedule_loss_probe`) and is not a timeout.
            assert_eq!(p.client.stats().timeouts, 0);
            assert_eq!(p.client.stats().loss_probes, 1);
        } else {
            assert_eq!(p.client.stats().timeouts, 1);
        }
    }
}

#[test]
fn rto_linux_short_path_matches_measured_linux() {
    // Linux on a short-RTT path: first retransmission ~204–210 ms after the
    // original — the tail-loss probe, whose PTO (2·SRTT + 200 ms with one
    // segment in flight) is capped at the RTO — then the RTO, counted from
    // the probe and not yet backed off, then exact doubling.
    let mut p = Pair::new(Config::linux_like(), ms(2));
    p.establish();
    warm_up(&mut p, 4);
    let first = DATA + p.client.stats().bytes_sent as u32;
    p.set_fate(move |d, t, _| {
        if d == Dir::ToServer && t.seq == first && t.payload_len > 0 {
            vec![]
        } else {
            vec![SimDuration::ZERO]
        }
    });
    p.client.write(&[1; 10]);
    p.run(p.now + SimDuration::from_secs(2000));
    let times: Vec<SimTime> = p
        .log
        .iter()
        .filter(|s| s.dir == Dir::ToServer && s.info.seq == first && s.info.payload_len > 0)
        .map(|s| s.at)
        .collect();
    let gaps: Vec<u64> = times
        .windows(2)
        .map(|w| w[1].saturating_since(w[0]).as_nanos() / 1_000_000)
        .collect();
    assert!((204..=210).contains(&gaps[0]), "first gap {} ms", gaps[0]);
    assert!(gaps[1].abs_diff(gaps[0]) <= 1, "probe then RTO: {gaps:?}");
    for i in 2..gaps.len() {
        let expect = (gaps[0] << (i - 1)).min(120_000);
        assert!(
            gaps[i].abs_diff(expect) <= 1,
            "gap {i}: {} vs {expect}",
            gaps[i]
        );
    }
    // tcp_retries2 = 15: the original, the probe and 15 RTO
    // retransmissions, then the connection is lost.
    assert_eq!(times.len(), 17);
    assert_eq!(p.client.stats().loss_probes, 1);
    assert_eq!(
        p.client_events.last().map(|e| e.1),
        Some(Event::ConnectionLost {
            reason: LostReason::RetransmitLimit
        })
    );
}

#[test]
fn rto_consecutive_timeouts_double_up_to_max() {
    let mut p = Pair::new(Config::rfc(), ms(20));
    p.establish();
    p.set_fate(|d, _, _| {
        if d == Dir::ToServer {
            vec![]
        } else {
            vec![SimDuration::ZERO]
        }
    });
    p.client.write(&[3; 10]);
    p.run(p.now + SimDuration::from_secs(10_000));
    let times: Vec<SimTime> = p
        .data_segments(Dir::ToServer)
        .iter()
        .map(|s| s.at)
        .collect();
    let gaps: Vec<u64> = times
        .windows(2)
        .map(|w| w[1].saturating_since(w[0]).as_nanos() / 1_000_000_000)
        .collect();
    // RFC 6298 §5.7: no sample yet and the SYN was not retransmitted, but the
    // handshake gave one sample (40 ms) → RTO = max(40 + 4·20, 1 s) = 1 s.
    assert_eq!(gaps, vec![1, 2, 4, 8, 16, 32, 60, 60]);
    let lost = p.client_events.last().unwrap();
    assert_eq!(
        lost.1,
        Event::ConnectionLost {
            reason: LostReason::RetransmitLimit
        }
    );
}

#[test]
fn rto_after_syn_timeout_starts_at_3s() {
    // RFC 6298 §5.7.
    let mut p = Pair::new(Config::rfc(), ms(20));
    let mut syns = 0;
    p.set_fate(move |d, t, _| {
        if d == Dir::ToServer && t.flags.syn() {
            syns += 1;
            if syns == 1 {
                return vec![];
            }
        }
        if d == Dir::ToServer && t.payload_len > 0 && !t.is_retransmission {
            return vec![];
        }
        vec![SimDuration::ZERO]
    });
    p.establish();
    assert_eq!(p.client.current_rto(), SimDuration::from_secs(3));
    p.client.write(&[1; 10]);
    p.run_until(p.now + SimDuration::from_secs(30), |p| {
        p.client.send_buffered() == 0
    });
    let d = p.data_segments(Dir::ToServer);
    assert_eq!(d[1].at.saturating_since(d[0].at), SimDuration::from_secs(3));
}

#[test]
fn karn_ignores_samples_of_retransmitted_segments() {
    // Without timestamps (with them, RFC 7323 §4 takes a sample from the
    // echo: tests/tcp_rack_tlp.rs).
    let cfg = Config {
        timestamps: false,
        ..linux_no_sack()
    };
    let mut p = Pair::new(cfg, ms(20));
    p.establish();
    warm_up(&mut p, 3);
    let srtt = p.client.rtt().srtt().unwrap();
    let var = p.client.rtt().rttvar();
    let first = DATA + p.client.stats().bytes_sent as u32;
    p.set_fate(move |d, t, _| {
        if d == Dir::ToServer && t.seq == first && !t.is_retransmission && t.payload_len > 0 {
            vec![]
        } else {
            vec![SimDuration::ZERO]
        }
    });
    p.client.write(&[5; 10]);
    p.run_until(p.now + SimDuration::from_secs(10), |p| {
        p.client.send_buffered() == 0
    });
    assert_eq!(p.client.stats().timeouts, 1);
    // The ACK of the retransmission gave no sample: a sample measured from
    // the original send would be RTO + 40 ms and move SRTT.
    assert_eq!(p.client.rtt().srtt(), Some(srtt));
    assert_eq!(p.client.rtt().rttvar(), var);
    // The backoff stays until a valid sample (Karn's algorithm) ...
    assert_eq!(p.client.rtt().backoff(), 1);
    // ... and the next clean exchange takes a sample again.
    p.set_fate(|_, _, _| vec![SimDuration::ZERO]);
    warm_up(&mut p, 1);
    assert_eq!(p.client.rtt().backoff(), 0);
}

#[test]
fn linux_rto_formula_matches_hand_computed_values() {
    // Samples 100, 120, 80, 200 ms. By hand (ms):
    //  s1: SRTT 100, RTTVAR 50 → RTO 100 + max(200, 200) = 300
    //  s2: RTTVAR 50·3/4 + 20/4 = 42.5, SRTT 100·7/8 + 120/8 = 102.5
    //      → RTO 102.5 + max(170, 200) = 302.5
    //  s3: RTTVAR 42.5·3/4 + 22.5/4 = 37.5, SRTT 102.5·7/8 + 10 = 99.6875
    //      → RTO 99.6875 + 200 = 299.6875
    //  s4: RTTVAR 37.5·3/4 + 100.3125/4 = 53.203125,
    //      SRTT 99.6875·7/8 + 25 = 112.2265625 → RTO 112.2265625 + 212.8125
    //      = 325.0390625
    let c = Config::linux_like();
    let mut e = RttEstimator::new(&c);
    let expect_us = [300_000.0, 302_500.0, 299_687.5, 325_039.062_5];
    for (r, want) in [100u64, 120, 80, 200].iter().zip(expect_us) {
        e.sample(&c, ms(*r));
        let got = e.rto().as_nanos() as f64 / 1000.0;
        assert!((got - want).abs() <= 1.0, "{got} µs vs {want} µs");
    }
    // RFC 6298 formula on 500, 700 ms: 500 + 4·250 = 1500; then RTTVAR
    // 237.5, SRTT 525 → 525 + 950 = 1475 ms.
    let c = Config::rfc();
    let mut e = RttEstimator::new(&c);
    e.sample(&c, ms(500));
    assert_eq!(e.rto(), ms(1500));
    e.sample(&c, ms(700));
    assert_eq!(e.rto(), ms(1475));
}

#[test]
fn fast_retransmit_on_third_dup_ack() {
    let mut p = Pair::new(Config::linux_like(), ms(20));
    p.establish();
    // One exchange first, so the window advertised in the SYN-ACK (never
    // scaled) has been replaced by the scaled one: an ACK that changes the
    // window is not a duplicate ACK (RFC 5681 §2).
    warm_up(&mut p, 1);
    let first = DATA + 100;
    let t0 = p.now;
    // Drop the first data segment; space the others 1 ms apart (as a
    // link's serialisation would) so each duplicate ACK arrives alone.
    p.set_fate(move |d, t, i| {
        if d == Dir::ToServer && t.payload_len > 0 && !t.is_retransmission {
            if t.seq == first {
                return vec![];
            }
            return vec![ms(i as u64)];
        }
        vec![SimDuration::ZERO]
    });
    p.to_write = vec![4; 8 * 1448];
    p.run_until(p.now + SimDuration::from_secs(10), |p| {
        p.received.len() == 100 + 8 * 1448
    });
    assert_eq!(p.received.len(), 100 + 8 * 1448);
    let s = p.client.stats();
    assert_eq!(s.timeouts, 0);
    assert_eq!(s.fast_retransmits, 1);
    assert_eq!(s.dupacks_received, 7);
    // The retransmission leaves when the third duplicate ACK arrives.
    let dups: Vec<SimTime> = p
        .log
        .iter()
        .filter(|x| x.dir == Dir::ToClient && x.info.ack == first && x.at > t0)
        .map(|x| x.at + ms(20))
        .collect();
    assert_eq!(dups.len(), 7, "{dups:?}");
    assert!(dups[1] < dups[2] && dups[2] < dups[3]);
    let rtx = p
        .log
        .iter()
        .find(|x| x.dir == Dir::ToServer && x.info.is_retransmission)
        .unwrap();
    assert_eq!(rtx.info.seq, first);
    assert_eq!(
        rtx.at, dups[2],
        "on the third duplicate ACK, not the second or fourth"
    );
}

#[test]
fn newreno_recovers_two_losses_without_timeout() {
    // NewReno's reduction is what this checks (linux-like defaults to
    // CUBIC; tests/tcp_cubic.rs has the CUBIC version).
    let mut cfg = Config::linux_like();
    cfg.congestion = qossim::transport::tcp::CongestionAlgorithm::NewReno;
    let mut p = Pair::new(cfg, ms(20));
    p.establish();
    drop_first_tx(&mut p, &[1448, 4 * 1448], DATA);
    p.to_write = (0..10 * 1448u32).map(|i| (i % 251) as u8).collect();
    p.run_until(p.now + SimDuration::from_secs(10), |p| {
        p.received.len() == 10 * 1448
    });
    assert_eq!(p.received, p.to_write);
    let s = p.client.stats();
    assert_eq!(s.timeouts, 0, "NewReno partial ACK avoids the RTO");
    assert_eq!(
        s.fast_retransmits, 2,
        "one fast retransmit + one partial-ACK retransmit"
    );
    assert_eq!(s.retransmissions, 2);
    // ssthresh halved once (one reduction per window, RFC 6582): the
    // FlightSize at the third duplicate ACK was 9 segments (segment 0 was
    // acknowledged), so ssthresh = 9·1448 / 2 (RFC 5681 eq. 4).
    assert_eq!(p.client.ssthresh(), 9 * 1448 / 2);
}
