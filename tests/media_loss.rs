//! `loss = { model = "bernoulli", p }` on a `[[media]]` table: an independent
//! loss of every frame attempt at every receiver, on top of SINR, drawn on
//! the receiver's stream `medium/<name>/<member>/frame_loss`.
//!
//! Whole scenarios run through the same loader and run path as the CLI
//! (`common::sim`); the broadcast and "on top of SINR" checks drive
//! `link::medium::Medium`, the type the world runs. Statistical checks use a
//! fixed seed and 3 standard errors of a proportion, se = sqrt(q(1 − q)/n).
//! Run in release: `cargo test --release --test media_loss`.

mod common;
use common::sim::{load, num, read_csv, run_row, run_text};
use qossim::link::medium::{FadingParams, Medium, PhyParams, Propagation, RxOutcome};
use qossim::scenario::model::{Fading, LossSpec};
use qossim::sim::{SimDuration, SimTime};
use std::collections::BTreeMap;
use std::path::Path;

/// Messages per run (one frame each: 30-byte payload, no fragmentation).
const N: u32 = 20_000;

/// A sends N UDP datagrams to B 10 m away: −70 dBm over a −100 dBm noise
/// floor (30 dB SNR, PER ≈ 10⁻¹⁰⁰), no fading, no shadowing, so SINR
/// delivers every frame and only the medium's `loss` loses any. One frame
/// every 20 ms, far longer than the longest exchange (4 attempts with CSMA
/// backoffs and ACK waits, < 15 ms), so the MAC queue never overflows.
/// `mac` holds extra `[[media]]` fields (the `loss` table, MAC settings).
fn two_nodes(mac: &str) -> String {
    common::sim::radio_pair(
        "name = \"media-loss\"\nseed = 11\nduration = \"401 s\"\ndrain = \"5 s\"\n",
        mac,
        &format!("payload_bytes = 30\ninterval = \"20 ms\"\ncount = {N}"),
        "",
    )
}

fn loss(p: f64) -> String {
    format!("loss = {{ model = \"bernoulli\", p = {p:?} }}")
}

/// |observed − expected| < 3·se over n trials; prints both.
fn within_3se(observed: f64, expected: f64, n: f64, what: &str) {
    let se = (expected * (1.0 - expected) / n).sqrt();
    eprintln!(
        "{what}: observed {observed:.5}, expected {expected:.5}, se {se:.5}, z {:+.2} (n = {n})",
        (observed - expected) / se
    );
    assert!(
        (observed - expected).abs() < 3.0 * se,
        "{what}: observed {observed:.5}, expected {expected:.5} ± 3·{se:.5} (n = {n})"
    );
}

/// packets.csv rows on the medium of `kind` ("udp" data frames or "mac_ack").
fn rows(dir: &Path, kind: &str) -> Vec<BTreeMap<String, String>> {
    read_csv(&dir.join("packets.csv"))
        .into_iter()
        .filter(|r| r["link"] == "wpan" && r["kind"] == kind)
        .collect()
}

fn count(rows: &[BTreeMap<String, String>], outcome: &str) -> usize {
    rows.iter().filter(|r| r["outcome"] == outcome).count()
}

/// The run's figures for flow `f`: (sent, delivered, duplicates, drops_channel).
fn figures(dir: &Path) -> (f64, f64, f64, f64) {
    let r = run_row(dir, "f");
    let sent = num(&r, "intended");
    assert_eq!(sent, f64::from(N), "every message counted");
    assert_eq!(
        num(&r, "drops_queue"),
        0.0,
        "the MAC queue never overflowed"
    );
    (
        sent,
        num(&r, "delivered"),
        num(&r, "duplicates"),
        num(&r, "drops_channel"),
    )
}

#[test]
fn without_mac_retries_a_frame_is_delivered_with_probability_1_minus_p() {
    for p in [0.2, 0.4] {
        // no ACKs: one attempt per frame
        let dir = run_text(
            "ml-noack",
            &two_nodes(&format!("ack = false\n{}", loss(p))),
            &[],
        );
        let (sent, delivered, dups, drops) = figures(&dir);
        within_3se(
            delivered / sent,
            1.0 - p,
            sent,
            &format!("ack off, p = {p}: delivery"),
        );
        assert_eq!(dups, 0.0);
        // a frame lost this way is a channel drop, and its attempt row says lost_channel
        assert_eq!(drops, sent - delivered, "drops_channel = lost frames");
        let data = rows(&dir, "udp");
        assert_eq!(data.len() as f64, sent, "one attempt per frame");
        assert_eq!(count(&data, "lost_channel") as f64, drops);
        assert_eq!(count(&data, "delivered") as f64, delivered);

        // ACKs on, max_frame_retries = 0: still one attempt per frame; a lost
        // ACK makes the MAC give up a frame that did arrive (`no_ack`, not a
        // drop), so delivery is still 1 − p and the give-up rate is
        // 1 − (1 − p)².
        let dir = run_text(
            "ml-r0",
            &two_nodes(&format!("max_frame_retries = 0\n{}", loss(p))),
            &[],
        );
        let (sent, delivered, dups, drops) = figures(&dir);
        within_3se(
            delivered / sent,
            1.0 - p,
            sent,
            &format!("R = 0, p = {p}: delivery"),
        );
        assert_eq!(dups, 0.0);
        assert_eq!(
            drops,
            sent - delivered,
            "only frames that never arrived are drops"
        );
        let data = rows(&dir, "udp");
        let attempts = data.len() - count(&data, "no_ack");
        assert_eq!(attempts as f64, sent, "one attempt per frame");
        let q = 1.0 - (1.0 - p) * (1.0 - p);
        within_3se(
            count(&data, "no_ack") as f64 / sent,
            q,
            sent,
            &format!("R = 0, p = {p}: MAC gives up"),
        );
        // every delivered frame was ACKed; the ACKs are lost with p too
        let acks = rows(&dir, "mac_ack");
        assert_eq!(acks.len() as f64, delivered, "one ACK per arrived frame");
        within_3se(
            count(&acks, "lost_channel") as f64 / acks.len() as f64,
            p,
            acks.len() as f64,
            &format!("R = 0, p = {p}: ACK loss"),
        );
    }
}

/// MAC retries on (ACKs on, R retries): a frame is given up only after R + 1
/// attempts without an ACK, and it was delivered unless all R + 1 data
/// frames were lost, so delivery = 1 − p^(R+1) (a lost ACK only causes a
/// retry whose copy the receiver's MAC drops). The MAC itself succeeds (gets
/// an ACK) with 1 − (1 − (1 − p)²)^(R+1).
#[test]
fn with_mac_retries_delivery_is_1_minus_p_to_the_r_plus_1() {
    for (r, p) in [(3u32, 0.2), (3, 0.4), (1, 0.4)] {
        let dir = run_text(
            "ml-retry",
            &two_nodes(&format!("max_frame_retries = {r}\n{}", loss(p))),
            &[],
        );
        let (sent, delivered, dups, drops) = figures(&dir);
        let tries = f64::from(r + 1);
        within_3se(
            delivered / sent,
            1.0 - p.powf(tries),
            sent,
            &format!("R = {r}, p = {p}: delivery"),
        );
        assert_eq!(dups, 0.0, "the MAC drops copies of retried frames");
        assert_eq!(drops, sent - delivered);
        let data = rows(&dir, "udp");
        let no_ack = count(&data, "no_ack") as f64;
        within_3se(
            no_ack / sent,
            (1.0 - (1.0 - p) * (1.0 - p)).powf(tries),
            sent,
            &format!("R = {r}, p = {p}: MAC gives up"),
        );
        // per attempt, data frames and ACKs are each lost with p
        let attempts = data.len() as f64 - no_ack;
        assert!(attempts > sent, "retries happened");
        within_3se(
            count(&data, "lost_channel") as f64 / attempts,
            p,
            attempts,
            &format!("R = {r}, p = {p}: data loss per attempt"),
        );
        let acks = rows(&dir, "mac_ack");
        within_3se(
            count(&acks, "lost_channel") as f64 / acks.len() as f64,
            p,
            acks.len() as f64,
            &format!("R = {r}, p = {p}: ACK loss per attempt"),
        );
        // more arrivals than deliveries: lost ACKs made the sender retry
        assert!(count(&data, "delivered") as f64 > delivered);
    }
}

/// `base` with `extra` as the last line of its `[[media]]` table; the line
/// of `extra` in the result.
fn with_media_line(extra: &str) -> (String, usize) {
    let text = two_nodes(extra);
    let line = text
        .lines()
        .position(|l| l == extra)
        .expect("extra line present")
        + 1;
    (text, line)
}

fn load_err(text: &str, overrides: &[&str]) -> qossim::scenario::ScenarioError {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    match qossim::scenario::load_str(text, "t.toml", Path::new("."), &o) {
        Ok(_) => panic!("scenario should be refused"),
        Err(e) => e,
    }
}

#[test]
fn media_take_only_none_and_bernoulli_with_p_in_0_1() {
    // a model the links accept, but not a medium
    let (text, line) =
        with_media_line("loss = { model = \"gilbert_elliott\", mean_loss = 0.05, burst = 4.0 }");
    let e = load_err(&text, &[]);
    let shown = e.to_string();
    eprintln!("{shown}");
    assert_eq!(e.field.as_deref(), Some("media.wpan.loss.model"), "{shown}");
    assert_eq!(e.line, Some(line), "{shown}");
    assert!(shown.starts_with(&format!("t.toml:{line}:")), "{shown}");
    assert!(
        e.message
            .contains("\"gilbert_elliott\" is not supported on a medium")
            && e.message.contains("expected one of: none, bernoulli"),
        "{shown}"
    );
    // a misspelt model is unknown, with the same expectation
    let (text, line) =
        with_media_line("loss = { model = \"gilbert-elliott\", p_gb = 0.1, p_bg = 0.5 }");
    let e = load_err(&text, &[]);
    assert_eq!(e.field.as_deref(), Some("media.wpan.loss.model"), "{e}");
    assert_eq!(e.line, Some(line), "{e}");
    assert!(
        e.message.contains("unknown loss model \"gilbert-elliott\"")
            && e.message.contains("expected one of: none, bernoulli"),
        "{e}"
    );
    // p out of [0, 1]
    let (text, line) = with_media_line("loss = { model = \"bernoulli\", p = 1.5 }");
    let e = load_err(&text, &[]);
    eprintln!("{e}");
    assert_eq!(e.field.as_deref(), Some("media.wpan.loss.p"), "{e}");
    assert_eq!(e.line, Some(line), "{e}");
    assert!(e.message.contains("must be in [0, 1]"), "{e}");
    let (text, _) = with_media_line("loss = { model = \"bernoulli\", p = -0.1 }");
    assert_eq!(
        load_err(&text, &[]).field.as_deref(),
        Some("media.wpan.loss.p")
    );
    // bernoulli needs p, and takes nothing else
    let (text, _) = with_media_line("loss = { model = \"bernoulli\" }");
    let e = load_err(&text, &[]);
    assert!(e.message.contains("needs `p`"), "{e}");
    let (text, _) = with_media_line("loss = { model = \"bernoulli\", p = 0.1, burst = 2.0 }");
    let e = load_err(&text, &[]);
    assert_eq!(e.field.as_deref(), Some("media.wpan.loss.burst"), "{e}");
    // what is accepted
    let (text, _) = with_media_line("loss = { model = \"none\" }");
    assert_eq!(load(&text, &[]).media[0].loss, LossSpec::None);
    assert_eq!(load(&two_nodes(""), &[]).media[0].loss, LossSpec::None);
    for p in [0.0, 0.3, 1.0] {
        let sc = load(&two_nodes(&loss(p)), &[]);
        assert_eq!(sc.media[0].loss, LossSpec::Bernoulli { p });
    }
}

#[test]
fn set_paths_reach_the_medium_loss() {
    let sc = load(&two_nodes(&loss(0.1)), &["media.wpan.loss.p=0.35"]);
    assert_eq!(sc.media[0].loss, LossSpec::Bernoulli { p: 0.35 });
    // created where the file has none, as a table or key by key
    let sc = load(
        &two_nodes(""),
        &["media.wpan.loss={ model = \"bernoulli\", p = 0.25 }"],
    );
    assert_eq!(sc.media[0].loss, LossSpec::Bernoulli { p: 0.25 });
    let sc = load(
        &two_nodes(""),
        &["media.wpan.loss.model=bernoulli", "media.wpan.loss.p=0.05"],
    );
    assert_eq!(sc.media[0].loss, LossSpec::Bernoulli { p: 0.05 });
    let sc = load(&two_nodes(&loss(0.1)), &["media.wpan.loss.model=none"]);
    assert_eq!(sc.media[0].loss, LossSpec::None, "model switch drops `p`");
    // and checked like the file
    let e = load_err(&two_nodes(&loss(0.1)), &["media.wpan.loss.p=2"]);
    assert_eq!(e.field.as_deref(), Some("media.wpan.loss.p"), "{e}");
    let e = load_err(
        &two_nodes(&loss(0.1)),
        &["media.wpan.loss.model=gilbert_elliott"],
    );
    assert_eq!(e.field.as_deref(), Some("media.wpan.loss.model"), "{e}");
    // the CLI shows file, line and field
    let dir = common::temp_dir("ml-cli");
    let (text, line) =
        with_media_line("loss = { model = \"gilbert_elliott\", p_gb = 0.1, p_bg = 0.5 }");
    let path = dir.join("bad.toml");
    std::fs::write(&path, text).expect("write scenario");
    let (code, out) = common::cli::qossim(&["check", path.to_str().expect("utf-8")]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(&format!("bad.toml:{line}:"))
            && out.contains("field `media.wpan.loss.model`")
            && out.contains("expected one of: none, bernoulli"),
        "{out}"
    );
}

#[test]
fn same_scenario_and_seed_give_byte_identical_packets_csv() {
    let text = two_nodes(&format!("max_frame_retries = 2\n{}", loss(0.3)));
    let over = ["flows.f.count=2000"];
    let a = std::fs::read(run_text("ml-det-a", &text, &over).join("packets.csv")).expect("a");
    let b = std::fs::read(run_text("ml-det-b", &text, &over).join("packets.csv")).expect("b");
    assert!(a.len() > 100_000, "{} bytes", a.len());
    assert!(a == b, "packets.csv differs between two identical runs");
    // another seed draws other losses
    let c = std::fs::read(run_text("ml-det-c", &text, &[over[0], "seed=12"]).join("packets.csv"))
        .expect("c");
    assert!(a != c, "the loss draws depend on the seed");
    // p = 0 is the same run as no `loss` at all (no draw, no other stream moved)
    let none = two_nodes("max_frame_retries = 2");
    let zero = two_nodes(&format!("max_frame_retries = 2\n{}", loss(0.0)));
    let x = std::fs::read(run_text("ml-det-none", &none, &over).join("packets.csv")).expect("x");
    let y = std::fs::read(run_text("ml-det-zero", &zero, &over).join("packets.csv")).expect("y");
    assert!(x == y, "p = 0 changed packets.csv");
}

// ---------------------------------------------------------------------------
// The medium itself

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("n{i}")).collect()
}

fn medium(fading: Option<FadingParams>, noise_dbm: f64, pos: &[(f64, f64)]) -> Medium {
    let phy = PhyParams {
        noise_dbm,
        ..PhyParams::IEEE802154
    };
    let prop = Propagation {
        shadowing_db: 0.0,
        ..Propagation::INDOOR_2_4_GHZ
    };
    let names = names(pos.len());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    Medium::new("m", 7, phy, prop, fading, pos, &refs, &[])
}

fn with_loss(m: Medium, p: f64, n: usize) -> Medium {
    let names = names(n);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    m.with_frame_loss(p, 7, "m", &refs)
}

/// One broadcast from member 0 at `t`: the outcome at each other member.
fn broadcast(m: &mut Medium, t: SimTime, receivers: usize) -> Vec<RxOutcome> {
    let mut locks = Vec::new();
    let id = m.begin_tx(t, 0, 40, |_| true, &mut locks);
    let mut out = Vec::new();
    m.end_tx(id, |_| true, &mut out, &mut locks);
    (1..=receivers as u32)
        .map(|r| out.iter().find(|x| x.rx == r).expect("reached").outcome)
        .collect()
}

#[test]
fn each_receiver_of_a_broadcast_loses_it_independently() {
    // two receivers 10 m away (clean SINR), p = 0.3: each loses a broadcast
    // with p, both with p², 10⁵ broadcasts
    let pos = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
    let p = 0.3;
    let mut m = with_loss(medium(None, -100.0, &pos), p, 3);
    let n = 100_000;
    let (mut lost, mut both) = ([0usize; 2], 0usize);
    for i in 0..n {
        let o = broadcast(&mut m, SimTime(i * 10_000_000), 2);
        for (k, x) in o.iter().enumerate() {
            assert!(matches!(x, RxOutcome::Delivered | RxOutcome::LostChannel));
            lost[k] += usize::from(*x == RxOutcome::LostChannel);
        }
        both += usize::from(o.iter().all(|x| *x == RxOutcome::LostChannel));
    }
    let n = n as f64;
    within_3se(lost[0] as f64 / n, p, n, "broadcast: receiver 1 loss");
    within_3se(lost[1] as f64 / n, p, n, "broadcast: receiver 2 loss");
    within_3se(both as f64 / n, p * p, n, "broadcast: both lose it");
    // p = 1 loses everything, p = 0 nothing
    let mut m = with_loss(medium(None, -100.0, &pos), 1.0, 3);
    for i in 0..100 {
        let o = broadcast(&mut m, SimTime(i * 10_000_000), 2);
        assert_eq!(o, [RxOutcome::LostChannel; 2]);
    }
    let mut m = with_loss(medium(None, -100.0, &pos), 0.0, 3);
    for i in 0..100 {
        let o = broadcast(&mut m, SimTime(i * 10_000_000), 2);
        assert_eq!(o, [RxOutcome::Delivered; 2]);
    }
}

#[test]
fn the_loss_comes_on_top_of_sinr_and_moves_no_other_draw() {
    // Rayleigh fading and a noise floor that makes the PER matter (≈ 0 dB
    // mean SNR): the same medium with and without `loss` makes the same
    // fading and PER draws, so every frame SINR lost is lost in both, and a
    // frame SINR delivered is lost with p only where the loss applies.
    let pos = [(0.0, 0.0), (10.0, 0.0)];
    let fading = Some(FadingParams {
        fading: Fading::Rayleigh,
        coherence: SimDuration::from_millis(1),
    });
    let p = 0.25;
    let mut plain = medium(fading, -72.0, &pos);
    let mut lossy = with_loss(medium(fading, -72.0, &pos), p, 2);
    let n = 100_000u64;
    let (mut sinr_ok, mut extra) = (0usize, 0usize);
    for i in 0..n {
        let t = SimTime(i * 2_000_000);
        let a = broadcast(&mut plain, t, 1)[0];
        let b = broadcast(&mut lossy, t, 1)[0];
        match a {
            RxOutcome::Delivered => {
                sinr_ok += 1;
                extra += usize::from(b == RxOutcome::LostChannel);
                assert!(matches!(b, RxOutcome::Delivered | RxOutcome::LostChannel));
            }
            other => assert_eq!(b, other, "frame {i}: SINR's verdict kept"),
        }
    }
    let k = sinr_ok as f64;
    assert!(
        k > 0.3 * n as f64 && k < 0.9 * n as f64,
        "SINR delivered {k} of {n}"
    );
    within_3se(
        extra as f64 / k,
        p,
        k,
        "extra loss of frames SINR delivered",
    );
}
