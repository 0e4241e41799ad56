//! The shared radio medium (issue #4 items 1–3): per-receiver fading against
//! the Rayleigh and Rician CDFs, PER against the Annex E formula, collisions
//! and capture, driving `link::medium::Medium` — the type the world runs.
//! MAC behaviour over whole scenarios is in the second half.

mod common;
use common::sim::{load, read_csv, run_text};
use qossim::link::medium::{FadingParams, Medium, PhyParams, Propagation, RxOutcome, RxResult};
use qossim::scenario::model::Fading;
use qossim::sim::{SimDuration, SimTime};
use std::collections::BTreeMap;

fn phy() -> PhyParams {
    PhyParams::IEEE802154
}

/// Exponent 3, 40 dB at 1 m, no shadowing: −70 dBm at 10 m, −79 at 20 m.
fn prop() -> Propagation {
    Propagation {
        shadowing_db: 0.0,
        ..Propagation::INDOOR_2_4_GHZ
    }
}

fn medium(phy: PhyParams, fading: Option<FadingParams>, pos: &[(f64, f64)]) -> Medium {
    let names: Vec<String> = (0..pos.len()).map(|i| format!("n{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    Medium::new("m", 20240601, phy, prop(), fading, pos, &refs, &[])
}

/// Send one frame from `s` at `t` and return every receiver's result.
fn one_frame(m: &mut Medium, t: SimTime, s: u32, psdu: u32) -> Vec<RxResult> {
    let mut locks = Vec::new();
    let id = m.begin_tx(t, s, psdu, |_| true, &mut locks);
    let mut out = Vec::new();
    m.end_tx(id, |_| true, &mut out, &mut locks);
    out
}

fn outcome_at(r: &[RxResult], rx: u32) -> RxOutcome {
    r.iter()
        .find(|x| x.rx == rx)
        .map(|x| x.outcome)
        .expect("receiver reached")
}

/// Modified Bessel I0 by its power series.
fn bessel_i0(x: f64) -> f64 {
    let (mut term, mut sum) = (1.0, 1.0);
    for m in 1..200 {
        term *= (x / 2.0) * (x / 2.0) / (m as f64 * m as f64);
        sum += term;
        if term < 1e-17 * sum {
            break;
        }
    }
    sum
}

/// Rician CDF of the unit-mean power gain (Simpson over its pdf).
fn rician_cdf(k: f64, t: f64) -> f64 {
    let pdf = |g: f64| {
        (k + 1.0)
            * (-k).exp()
            * (-(k + 1.0) * g).exp()
            * bessel_i0(2.0 * (k * (k + 1.0) * g).sqrt())
    };
    let n = 20_000;
    let h = t / n as f64;
    let mut s = pdf(0.0) + pdf(t);
    for i in 1..n {
        s += if i % 2 == 1 { 4.0 } else { 2.0 } * pdf(i as f64 * h);
    }
    s * h / 3.0
}

const SAMPLES: usize = 200_000;

/// Fraction of fading blocks in which the receiver 10 m away (mean −70 dBm)
/// gets the frame below a sensitivity `thr_db` under the mean: those frames
/// are lost, the others (noise far below) are delivered. One frame per 1 ms
/// coherence block, so it is the fraction of time the SNR is below the
/// threshold.
fn fraction_below(f: Fading, thr_db: f64) -> f64 {
    let mut p = phy();
    p.noise_dbm = -200.0;
    p.sensitivity_dbm = -70.0 + thr_db;
    p.cutoff_dbm = -150.0;
    let fading = FadingParams {
        fading: f,
        coherence: SimDuration::from_millis(1),
    };
    let mut m = medium(p, Some(fading), &[(0.0, 0.0), (10.0, 0.0)]);
    let mut below = 0;
    for i in 0..SAMPLES {
        let r = one_frame(&mut m, SimTime(i as u64 * 1_000_000), 0, 20);
        if outcome_at(&r, 1) != RxOutcome::Delivered {
            below += 1;
        }
    }
    below as f64 / SAMPLES as f64
}

/// Tolerance: 3 standard errors of a proportion over 2·10⁵ blocks
/// (≤ 0.0034 absolute), so a correct model passes with probability ≈ 0.997
/// per point and the seed is fixed.
fn within_3se(measured: f64, expected: f64, what: &str) {
    let se = (expected * (1.0 - expected) / SAMPLES as f64).sqrt();
    assert!(
        (measured - expected).abs() <= 3.0 * se,
        "{what}: {measured:.5} vs {expected:.5} ± 3·{se:.5}"
    );
}

#[test]
fn medium_rayleigh_time_below_threshold_matches_the_cdf() {
    for thr_db in [-10.0, -3.0, 0.0, 3.0] {
        let t = 10f64.powf(thr_db / 10.0);
        within_3se(
            fraction_below(Fading::Rayleigh, thr_db),
            1.0 - (-t).exp(),
            &format!("Rayleigh P(SNR < mean {thr_db} dB)"),
        );
    }
}

#[test]
fn medium_rician_time_below_threshold_matches_the_cdf() {
    for k in [2.0, 6.0] {
        for thr_db in [-6.0, -2.0, 0.0, 2.0] {
            let t = 10f64.powf(thr_db / 10.0);
            within_3se(
                fraction_below(Fading::Rician { k }, thr_db),
                rician_cdf(k, t),
                &format!("Rician K={k} P(SNR < mean {thr_db} dB)"),
            );
        }
    }
}

#[test]
fn two_receivers_of_one_broadcast_see_different_outcomes() {
    // receivers 1 and 2 at the same distance: same mean power, own fading
    // streams. With the sensitivity at the mean, each loses a frame with
    // probability p = 1 − e^{-1}; independent draws disagree with
    // probability 2p(1 − p) ≈ 0.465. 10⁵ broadcasts, 4 standard errors.
    let mut p = phy();
    p.noise_dbm = -200.0;
    p.sensitivity_dbm = -70.0;
    p.cutoff_dbm = -150.0;
    let fading = FadingParams {
        fading: Fading::Rayleigh,
        coherence: SimDuration::from_millis(1),
    };
    let mut m = medium(p, Some(fading), &[(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)]);
    let n = 100_000;
    let (mut differ, mut lost1, mut lost2) = (0, 0, 0);
    for i in 0..n {
        let r = one_frame(&mut m, SimTime(i as u64 * 1_000_000), 0, 20);
        let (a, b) = (outcome_at(&r, 1), outcome_at(&r, 2));
        lost1 += usize::from(a != RxOutcome::Delivered);
        lost2 += usize::from(b != RxOutcome::Delivered);
        differ += usize::from(a != b);
    }
    let pl = 1.0 - (-1.0f64).exp();
    let expect = 2.0 * pl * (1.0 - pl);
    let se = (expect * (1.0 - expect) / n as f64).sqrt();
    let got = differ as f64 / n as f64;
    eprintln!("broadcast outcomes differ in {got:.4} (expected {expect:.4})");
    assert!((got - expect).abs() <= 4.0 * se, "{got} vs {expect}");
    for (l, who) in [(lost1, "rx 1"), (lost2, "rx 2")] {
        let x = l as f64 / n as f64;
        let se = (pl * (1.0 - pl) / n as f64).sqrt();
        assert!((x - pl).abs() <= 4.0 * se, "{who}: {x} vs {pl}");
    }
}

/// IEEE 802.15.4-2006 Annex E BER, written out here from the formula.
fn annex_e_ber(snr: f64) -> f64 {
    let mut sum = 0.0;
    for k in 2..=16u32 {
        let binom = (1..=k).fold(1.0, |c, j| c * f64::from(16 - k + j) / f64::from(j));
        let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
        sum += sign * binom * (20.0 * snr * (1.0 / f64::from(k) - 1.0)).exp();
    }
    8.0 / 15.0 / 16.0 * sum
}

#[test]
fn medium_per_follows_the_formula_over_snr_and_frame_size() {
    // no fading: the receiver 10 m away gets −70 dBm; the noise floor sets
    // the SNR. 20 000 frames per point, 4 standard errors.
    let n = 20_000;
    let mut prev_small = 1.0;
    for snr_db in [-1.0, -0.5, 0.0] {
        let mut p = phy();
        p.noise_dbm = -70.0 - snr_db;
        let mut m = medium(p, None, &[(0.0, 0.0), (10.0, 0.0)]);
        let mut loss = Vec::new();
        for psdu in [24u32, 127] {
            let lost = (0..n)
                .filter(|&i| {
                    let r = one_frame(&mut m, SimTime(i as u64 * 10_000_000), 0, psdu);
                    outcome_at(&r, 1) == RxOutcome::LostChannel
                })
                .count() as f64
                / n as f64;
            let bits = 8.0 * f64::from(psdu + 6);
            let snr = 10f64.powf(snr_db / 10.0);
            let expect = 1.0 - (1.0 - annex_e_ber(snr)).powf(bits);
            let se = (expect * (1.0 - expect) / n as f64).sqrt().max(1e-4);
            assert!(
                (lost - expect).abs() <= 4.0 * se,
                "PER at {snr_db} dB, {psdu} B: {lost} vs {expect}"
            );
            eprintln!("PER at {snr_db} dB, {psdu}-byte PSDU: {lost:.4} (formula {expect:.4})");
            loss.push(lost);
        }
        assert!(loss[1] > loss[0], "larger frames lose more at {snr_db} dB");
        assert!(loss[0] < prev_small, "higher SNR loses less");
        prev_small = loss[0];
    }
}

#[test]
fn overlapping_frames_collide_at_a_common_receiver_and_a_near_one_captures() {
    // A(0) and C(40 m) both reach B(20 m) at −79 dBm: equal power, no capture.
    // D sits 2 m from C: C is ~40 dB stronger there than A.
    let pos = [(0.0, 0.0), (20.0, 0.0), (40.0, 0.0), (38.0, 0.0)];
    let (a, b, c, d) = (0u32, 1u32, 2u32, 3u32);
    let mut m = medium(phy(), None, &pos);
    let mut locks = Vec::new();
    let ta = m.begin_tx(SimTime(0), a, 100, |_| true, &mut locks);
    let tc = m.begin_tx(SimTime(1_000_000), c, 100, |_| true, &mut locks);
    let (mut ra, mut rc) = (Vec::new(), Vec::new());
    m.end_tx(ta, |_| true, &mut ra, &mut locks);
    m.end_tx(tc, |_| true, &mut rc, &mut locks);
    assert_eq!(outcome_at(&ra, b), RxOutcome::Collision, "A lost at B");
    assert_eq!(outcome_at(&rc, b), RxOutcome::Collision, "C lost at B");
    assert_eq!(outcome_at(&rc, d), RxOutcome::Delivered, "C captured at D");
    assert_eq!(outcome_at(&ra, d), RxOutcome::Collision, "A lost at D");
    // and alone, each gets through to B
    let r = one_frame(&mut m, SimTime(10_000_000), a, 100);
    assert_eq!(outcome_at(&r, b), RxOutcome::Delivered);
    assert!(m.stats.collisions >= 3);
}

#[test]
fn a_transmitting_radio_hears_nothing() {
    let pos = [(0.0, 0.0), (10.0, 0.0)];
    let mut m = medium(phy(), None, &pos);
    m.set_deaf(1);
    let r = one_frame(&mut m, SimTime(0), 0, 50);
    assert_eq!(outcome_at(&r, 1), RxOutcome::Deaf);
    // back after the turnaround only
    m.set_hearing(1, SimTime(192_000));
    let r = one_frame(&mut m, SimTime(100_000), 0, 50);
    assert_eq!(outcome_at(&r, 1), RxOutcome::Deaf);
    let r = one_frame(&mut m, SimTime(192_000), 0, 50);
    assert_eq!(outcome_at(&r, 1), RxOutcome::Delivered);
}

// ---------------------------------------------------------------------------
// MAC over whole scenarios (the world drives the same medium)

/// Nodes given as (name, role, x, y), all on one medium `wpan` without
/// fading or shadowing; `mac` holds extra medium fields.
fn scenario(nodes: &[(&str, &str, f64, f64)], mac: &str, flows: &str, extra: &str) -> String {
    let mut s = String::from("name = \"mac\"\nseed = 3\nduration = \"60 s\"\ndrain = \"5 s\"\n");
    for (n, role, x, y) in nodes {
        s.push_str(&format!(
            "[[nodes]]\nname = \"{n}\"\nrole = \"{role}\"\nposition = [{x}, {y}]\n"
        ));
    }
    let members: Vec<String> = nodes.iter().map(|n| format!("\"{}\"", n.0)).collect();
    s.push_str(&format!(
        "[[media]]\nname = \"wpan\"\nmembers = [{}]\nfading = \"none\"\nshadowing_db = 0.0\n{mac}\n{flows}\n{extra}",
        members.join(", ")
    ));
    s
}

fn udp_flow(
    name: &str,
    from: &str,
    to: &str,
    payload: u32,
    interval: &str,
    jitter: &str,
) -> String {
    format!(
        "[[flows]]\nname = \"{name}\"\npattern = \"point_to_point\"\nprotocol = \"udp\"\npublishers = [\"{from}\"]\nreceivers = [\"{to}\"]\ntopic = \"t\"\npayload_bytes = {payload}\ninterval = \"{interval}\"\njitter = \"{jitter}\"\n"
    )
}

/// packets.csv rows of data frames on the medium.
fn data_rows(dir: &std::path::Path) -> Vec<BTreeMap<String, String>> {
    read_csv(&dir.join("packets.csv"))
        .into_iter()
        .filter(|r| r["link"] == "wpan" && r["kind"] != "mac_ack")
        .collect()
}

fn collision_rate(dir: &std::path::Path) -> (f64, usize) {
    let rows = data_rows(dir);
    let attempts = rows
        .iter()
        .filter(|r| !matches!(r["outcome"].as_str(), "no_ack" | "cca_fail" | "lost_queue"))
        .count();
    let coll = rows.iter().filter(|r| r["outcome"] == "collision").count();
    (coll as f64 / attempts.max(1) as f64, attempts)
}

#[test]
fn hidden_terminals_collide_despite_csma() {
    // A and C are 70 m apart (−95.4 dBm: out of each other's reception range
    // and far below the −77 dBm CCA threshold), B in the middle hears both
    // at −86 dBm (routed with a 5 dB margin). CSMA cannot see the other sender, so over a third of the
    // frames collide at B. Control: C moved next to A (in CCA range) — CSMA
    // then defers and collisions become rare. Fixed seed; the thresholds sit
    // far from the measured values (docs/channels.md).
    let flows = udp_flow("fa", "A", "B", 80, "20 ms", "20 ms")
        + &udp_flow("fc", "C", "B", 80, "20 ms", "20 ms");
    let hidden = scenario(
        &[
            ("A", "client", 0.0, 0.0),
            ("B", "server", 35.0, 0.0),
            ("C", "client", 70.0, 0.0),
        ],
        "ack = false\nroute_margin_db = 5.0",
        &flows,
        "",
    );
    let (rate, n) = collision_rate(&run_text("hidden", &hidden, &[]));
    assert!(n > 4000, "{n} attempts");
    assert!(rate > 0.15, "hidden terminals: collision rate {rate}");
    let exposed = scenario(
        &[
            ("A", "client", 0.0, 0.0),
            ("B", "server", 35.0, 0.0),
            ("C", "client", 0.0, 5.0),
        ],
        "ack = false\nroute_margin_db = 5.0",
        &flows,
        "",
    );
    let (rate2, _) = collision_rate(&run_text("visible", &exposed, &[]));
    eprintln!("hidden-terminal collision rate {rate:.4}, in CCA range {rate2:.4}");
    assert!(rate2 < rate / 3.0, "in CCA range: {rate2} vs hidden {rate}");
}

/// Eight senders within 4 m of the sink and of each other, each offering a
/// 100-byte datagram every `interval` on average (plus equal jitter).
fn crowd(interval: &str) -> String {
    let mut nodes = vec![("sink", "server", 0.0, 0.0)];
    let names: Vec<String> = (1..=8).map(|i| format!("s{i}")).collect();
    let mut flows = String::new();
    for (i, n) in names.iter().enumerate() {
        let a = i as f64 * std::f64::consts::PI / 4.0;
        nodes.push((n.as_str(), "client", 2.0 * a.cos(), 2.0 * a.sin()));
        flows.push_str(&udp_flow(
            &format!("f{i}"),
            n,
            "sink",
            100,
            interval,
            interval,
        ));
    }
    scenario(&nodes, "ack = false", &flows, "")
}

#[test]
fn csma_lowers_collisions_among_saturated_senders_in_range() {
    // saturated: offered load ≈ 4.6 (each sender always has a frame). Without
    // CSMA every frame overlaps another; unslotted CSMA-CA still collides
    // when two backoffs end within one CCA + turnaround (~320 µs) of each
    // other, but far less often.
    let text = crowd("8 ms");
    let (on, n_on) = collision_rate(&run_text("csma-on", &text, &[]));
    let (off, n_off) = collision_rate(&run_text("csma-off", &text, &["media.wpan.csma=false"]));
    assert!(n_on > 10_000 && n_off > 10_000, "{n_on} {n_off}");
    assert!(off > 0.9, "ALOHA-like when saturated: {off}");
    eprintln!("saturated collision rate: CSMA on {on:.4}, off {off:.4}");
    assert!(on < 0.7 * off, "CSMA on {on} vs off {off}");
    // moderate load (≈ 0.6): CSMA removes most collisions
    let text = crowd("60 ms");
    let (on, _) = collision_rate(&run_text("csma-on-60", &text, &[]));
    let (off, _) = collision_rate(&run_text("csma-off-60", &text, &["media.wpan.csma=false"]));
    eprintln!("moderate-load collision rate: CSMA on {on:.4}, off {off:.4}");
    assert!(on < off / 2.0, "moderate load: CSMA on {on} vs off {off}");
}

#[test]
fn unicast_is_retried_max_frame_retries_times_then_fails_upward() {
    // B crashes at 10 s: every later frame to it gets no ACK; the MAC tries
    // 1 + macMaxFrameRetries times and reports `no_ack`, which the flow
    // counts as a channel drop.
    let flows = udp_flow("f", "A", "B", 30, "1 s", "0 s");
    let crash = "[[events]]\nat = \"10 s\"\naction = \"node_crash\"\nnode = \"B\"\n";
    let text = scenario(
        &[("A", "client", 0.0, 0.0), ("B", "server", 10.0, 0.0)],
        "",
        &flows,
        crash,
    );
    for (retries, over) in [(3u32, vec![]), (1, vec!["media.wpan.max_frame_retries=1"])] {
        let dir = run_text("retries", &text, &over);
        let rows = data_rows(&dir);
        let count = |o: &str| rows.iter().filter(|r| r["outcome"] == o).count();
        let (no_ack, tries) = (count("no_ack"), count("rx_off"));
        assert!(no_ack >= 45, "{no_ack}");
        assert_eq!(tries, no_ack * (1 + retries as usize), "attempts per frame");
        let r = common::sim::run_row(&dir, "f");
        assert_eq!(common::sim::num(&r, "drops_channel") as usize, no_ack);
        // before the crash every frame went through at the first attempt
        assert!(count("delivered") >= 9);
        assert_eq!(count("delivered") + tries, rows.len() - no_ack);
    }
}

#[test]
fn a_full_frame_occupies_the_medium_for_4256_us() {
    // 88-byte UDP payload: 116-byte IPv4 packet, 127-byte MAC frame, 133 on air
    let flows =
        udp_flow("f", "A", "B", 88, "1 s", "0 s").replace("interval", "count = 1\ninterval");
    let text = scenario(
        &[("A", "client", 0.0, 0.0), ("B", "server", 10.0, 0.0)],
        "csma = false\nack = false",
        &flows,
        common::sim::NO_PROCESSING,
    );
    let sc = load(&text, &[]);
    let out = qossim::world::World::new(&sc, 0, Default::default())
        .expect("world")
        .run()
        .expect("run");
    let (_, st) = &out.radio.media[0];
    assert_eq!(st.transmissions, 1);
    assert_eq!(st.airtime_ns, 4_256_000);
    let dir = run_text("airtime", &text, &[]);
    let rows = data_rows(&dir);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["bytes"], "133");
    // received at the end of the frame, after the 192 µs RX→TX turnaround
    let m = read_csv(&dir.join("messages.csv"));
    assert_eq!(m[0]["latency_ms"], "4.448000");
}

#[test]
fn an_acked_exchange_takes_airtime_turnaround_and_ack_airtime() {
    // 150-byte payload: two fragments queued at once. Fragment 1 (a full
    // 133-byte PPDU) starts at t0; the ACK starts 4.256 + 0.192 ms later and
    // lasts 0.352 ms; the exchange ends at t0 + 4.800 ms and fragment 2
    // starts one RX→TX turnaround after that (CSMA off).
    let flows =
        udp_flow("f", "A", "B", 150, "1 s", "0 s").replace("interval", "count = 1\ninterval");
    let text = scenario(
        &[("A", "client", 0.0, 0.0), ("B", "server", 10.0, 0.0)],
        "csma = false",
        &flows,
        "",
    );
    let dir = run_text("ack-timing", &text, &[]);
    let rows = read_csv(&dir.join("packets.csv"));
    let t = |i: usize| -> u64 {
        let s = &rows[i]["time_ms"];
        let (a, b) = s.split_once('.').expect("ms");
        a.parse::<u64>().expect("ms") * 1_000_000 + b.parse::<u64>().expect("ns")
    };
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str()).collect();
    assert_eq!(kinds, ["udp", "mac_ack", "udp", "mac_ack"]);
    assert_eq!(rows[0]["bytes"], "133");
    assert_eq!(rows[1]["bytes"], "11");
    assert_eq!(t(1) - t(0), 4_256_000 + 192_000);
    assert_eq!(t(2) - t(0), 4_256_000 + 192_000 + 352_000 + 192_000);
    let sc = load(&text, &[]);
    let out = qossim::world::World::new(&sc, 0, Default::default())
        .expect("world")
        .run()
        .expect("run");
    let (_, st) = &out.radio.media[0];
    assert_eq!(st.transmissions, 4);
    // two data frames (133 B and the remainder) and two 11-byte ACKs
    let second = (rows[2]["bytes"].parse::<u64>().expect("bytes")) * 32_000;
    assert_eq!(st.airtime_ns, 4_256_000 + second + 2 * 352_000);
}

#[test]
fn a_bursty_interferer_destroys_frames_and_csma_waits_for_its_gaps() {
    // the interferer sits 2 m from B and is on 20 ms out of every 100 ms at
    // 0 dBm: B's SINR under a burst is far below the capture threshold.
    // Without CSMA a frame (1.9 ms) overlapping a burst is lost: ≈ 22 %; with
    // CSMA, A hears the burst (−70 dBm > −77 dBm CCA threshold) and its
    // backoffs (up to ≈ 37 ms in all) mostly carry the frame into the gap
    // (measured: 3.5 % cca_fail — five busy CCAs — and 2.7 % collisions of
    // frames started just before a burst).
    let flows = udp_flow("f", "A", "B", 30, "37 ms", "10 ms");
    let interferer = "interferers = [{ position = [12.0, 0.0], power_dbm = 0.0, period = \"100 ms\", burst = \"20 ms\" }]";
    let nodes = [("A", "client", 0.0, 0.0), ("B", "server", 10.0, 0.0)];
    let off = scenario(
        &nodes,
        &format!("ack = false\ncsma = false\n{interferer}"),
        &flows,
        "",
    );
    let r = common::sim::run_row(&run_text("interf-off", &off, &[]), "f");
    let ratio_off = common::sim::num(&r, "delivery_ratio");
    assert!((0.7..0.85).contains(&ratio_off), "{ratio_off}");
    assert!(common::sim::num(&r, "collisions") > 200.0);
    let on = scenario(&nodes, &format!("ack = false\n{interferer}"), &flows, "");
    let r = common::sim::run_row(&run_text("interf-on", &on, &[]), "f");
    let ratio_on = common::sim::num(&r, "delivery_ratio");
    eprintln!("interferer delivery: CSMA off {ratio_off:.4}, on {ratio_on:.4}");
    assert!(ratio_on > 0.9, "CSMA {ratio_on} vs none {ratio_off}");
    // and without the interferer nothing is lost
    let clean = scenario(&nodes, "ack = false", &flows, "");
    let r = common::sim::run_row(&run_text("interf-none", &clean, &[]), "f");
    assert_eq!(common::sim::num(&r, "delivery_ratio"), 1.0);
}

#[test]
fn lost_acks_cause_retries_that_the_receiver_deduplicates() {
    // An interferer 1 m from the sender A, on 50 ms of every 100 ms: at A it
    // drowns B's ACKs (SINR ≈ −34 dB), at B (29 m from it) A's frames still
    // arrive with ≈ 10 dB SINR. A frame sent during a burst is delivered,
    // its ACK lost, and retried; B takes each frame once, so nothing is
    // duplicated, nothing is lost, and the `no_ack` frames that did arrive
    // are not counted as drops.
    let flows = udp_flow("f", "A", "B", 30, "37 ms", "10 ms");
    let mac = "csma = false\nroute_margin_db = 5.0\ninterferers = [{ position = [-1.0, 0.0], power_dbm = -10.0, period = \"100 ms\", burst = \"50 ms\" }]";
    let text = scenario(
        &[("A", "client", 0.0, 0.0), ("B", "server", 30.0, 0.0)],
        mac,
        &flows,
        "",
    );
    let dir = run_text("dedup", &text, &[]);
    let r = common::sim::run_row(&dir, "f");
    assert_eq!(common::sim::num(&r, "delivery_ratio"), 1.0);
    assert_eq!(common::sim::num(&r, "duplicates"), 0.0);
    assert_eq!(common::sim::num(&r, "drops_channel"), 0.0);
    let rows = read_csv(&dir.join("packets.csv"));
    let count = |kind: &str, o: &str| {
        rows.iter()
            .filter(|r| r["outcome"] == o && (r["kind"] == "mac_ack") == (kind == "mac_ack"))
            .count()
    };
    let delivered = count("udp", "delivered");
    let sent = common::sim::num(&r, "sent") as usize;
    assert!(
        delivered > sent + 500,
        "{delivered} deliveries of {sent} frames"
    );
    assert!(count("mac_ack", "collision") > 500);
    assert!(count("udp", "no_ack") > 100);
}
