//! CoAP GET polling (`coap_mode = "get"`, issue 14 item 3) through the
//! simulator: the scenario loader, run path and files the CLI uses, checked
//! against closed forms, exact byte counts, tshark and a real libcoap
//! capture. Run in release: `cargo test --release --test coap_get`.

mod common;
use common::sim::*;
use common::tshark;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `n` sensors `s-1 … s-n`, each on its own point-to-point link to the
/// collector (Bernoulli loss `p` in each direction), publishing every
/// `interval`; the collector polls each with GETs every `poll`.
fn polled(n: u32, p: f64, rel: &str, interval: &str, poll: &str, duration: &str) -> String {
    format!(
        r#"
name = "coap-get-test"
duration = "{duration}"
drain = "60 s"
[[nodes]]
name = "collector"
role = "client"
[[groups]]
name = "s-{{i}}"
count = {n}
role = "server"
link = {{ to = "collector", rate = "1 Mbit/s", delay = "10 ms", loss = {{ model = "bernoulli", p = {p} }} }}
[[flows]]
name = "f"
pattern = "fan_in"
protocol = "coap"
coap_mode = "get"
reliability = "{rel}"
publishers = ["s-*"]
receivers = ["collector"]
topic = "building/xyz/room/{{i}}/temperature"
payload_bytes = 8
interval = "{interval}"
poll_interval = "{poll}"
"#
    )
}

/// `"2014.284358"` (ms with six decimals, as every `*_ms` column) → ns.
fn ns(ms: &str) -> u64 {
    let (int, frac) = ms.split_once('.').expect("six decimals");
    assert_eq!(frac.len(), 6, "{ms}");
    int.parse::<u64>().expect("ms") * 1_000_000 + frac.parse::<u64>().expect("frac")
}

/// packets.csv rows of `kind` sent from `from` to `to` (first hop).
fn packets<'a>(
    rows: &'a [BTreeMap<String, String>],
    kind: &str,
    from: &str,
    to: &str,
) -> Vec<&'a BTreeMap<String, String>> {
    rows.iter()
        .filter(|r| r["kind"] == kind && r["from"] == from && r["to"] == to)
        .collect()
}

// ---------------------------------------------------------------------------
// (1) round-trip success of NON GET = (1 − p)²

/// NON GET with loss p each way: a round trip succeeds when neither the
/// request nor the response is lost, (1 − p)². 25 sensors polled every 4 s
/// (longer than non_timeout = 3 s, so exchanges never overlap) for 3400 s:
/// n = 25 · 851 = 21,275 exchanges; s.e. = √(q(1 − q)/n) = 0.0033 for
/// q = 0.64 (p = 0.2) and q = 0.36 (p = 0.4). The column must also equal the
/// packet-level truth exactly (responses that arrived / requests sent).
fn non_round_trip(p: f64) {
    let dir = run_text(
        "coap-get-rt",
        &polled(25, p, "non", "4 s", "4 s", "3400 s"),
        &[],
    );
    let r = run_row(&dir, "f");
    let rows = read_csv(&dir.join("packets.csv"));
    let (mut requests, mut answered) = (0usize, 0usize);
    for i in 1..=25 {
        let s = format!("s-{i}");
        requests += packets(&rows, "coap_non", "collector", &s).len();
        answered += packets(&rows, "coap_non", &s, "collector")
            .iter()
            .filter(|r| r["outcome"] == "delivered")
            .count();
    }
    let n = requests as f64;
    assert!(n >= 20_000.0, "n = {n}");
    let success = num(&r, "round_trip_success");
    let exact = answered as f64 / n;
    assert!(
        (success - exact).abs() < 1e-6,
        "round_trip_success {success} vs packets {answered}/{requests}"
    );
    let q = (1.0 - p) * (1.0 - p);
    eprintln!(
        "NON GET p={p}: n={requests}, round_trip_success {success:.5}, (1-p)^2 = {q:.5}, s.e. {:.5}",
        (q * (1.0 - q) / n).sqrt()
    );
    assert_proportion(success, q, n, 3.0, &format!("NON GET round trip, p={p}"));
    // NON: nothing is retransmitted, nothing given up
    assert_eq!(num(&r, "retransmissions"), 0.0);
    assert_eq!(num(&r, "give_ups"), 0.0);
    // RTT on a lossless exchange: request and response, 10 ms each way
    let rtt = num(&r, "rtt_ms_p50");
    assert!((20.0..21.5).contains(&rtt), "rtt {rtt}");
}

#[test]
fn non_get_round_trip_success_is_one_minus_p_squared_p02() {
    non_round_trip(0.2);
}

#[test]
fn non_get_round_trip_success_is_one_minus_p_squared_p04() {
    non_round_trip(0.4);
}

// ---------------------------------------------------------------------------
// (2) a CON GET of /building/xyz/room/120/temperature is 40 + 28 bytes

/// Header 0x42 (version 1, CON, TKL 2), code 0.01 GET; then (after message
/// ID and the 2-byte token) five Uri-Path options, RFC 7252 §3.1/§5.10.1:
/// delta 11 length 8 "building", then delta 0: "xyz", "room", "120",
/// "temperature" — 9 + 4 + 5 + 4 + 12 = 34 bytes.
const URI_PATH_OPTIONS: &str =
    "b86275696c64696e670378797a04726f6f6d033132300b74656d7065726174757265";

fn room_120() -> String {
    r#"
name = "room-120-get"
duration = "30 s"
drain = "10 s"
[[nodes]]
name = "collector"
role = "client"
[[nodes]]
name = "sensor"
role = "server"
[[links]]
a = "collector"
b = "sensor"
[[flows]]
name = "f"
pattern = "fan_in"
protocol = "coap"
coap_mode = "get"
reliability = "con"
publishers = ["sensor"]
receivers = ["collector"]
topic = "building/xyz/room/120/temperature"
payload_bytes = 8
interval = "10 s"
"#
    .to_string()
}

/// `[protocols.coap] token_length = 1` (libcoap's coap-client): the same
/// GET is one byte shorter (TKL 1, 39 bytes of CoAP, 67 of IPv4); tokens
/// stay distinct (0, 1, 2, …) and every response still matches its request.
#[test]
fn token_length_one_makes_the_get_one_byte_shorter() {
    let text = format!("{}\n[protocols.coap]\ntoken_length = 1\n", room_120());
    let dir = run_text("coap-get-tkl1", &text, &[]);
    let rows = read_csv(&dir.join("packets.csv"));
    let reqs = packets(&rows, "coap_con", "collector", "sensor");
    assert!(reqs.len() >= 3, "{} requests", reqs.len());
    assert!(reqs.iter().all(|r| r["bytes"] == "67"), "{reqs:?}");
    assert_eq!(num(&run_row(&dir, "f"), "round_trip_success"), 1.0);
    for bad in [
        "protocols.coap.token_length=0",
        "protocols.coap.token_length=9",
    ] {
        let e = qossim::scenario::load_str(
            &room_120(),
            "t.toml",
            std::path::Path::new("."),
            &[bad.to_string()],
        )
        .expect_err(bad)
        .to_string();
        assert!(e.contains("protocols.coap.token_length"), "{bad}: {e}");
    }
}

#[test]
fn con_get_of_room_120_is_40_bytes_of_coap_and_68_of_ipv4() {
    let dir = run_text("coap-get-bytes", &room_120(), &[]);
    let rows = read_csv(&dir.join("packets.csv"));
    let reqs = packets(&rows, "coap_con", "collector", "sensor");
    assert!(reqs.len() >= 3, "{} requests", reqs.len());
    for r in &reqs {
        assert_eq!(r["bytes"], "68", "CON GET on the wire: {r:?}");
    }
    // the piggybacked 2.05: 4 + 2 + Content-Format (2) + 0xFF + 8 = 17, +28;
    // a poll before the sensor's first reading gets 4.04 (4 + 2, +28)
    let acks = packets(&rows, "coap_ack", "sensor", "collector");
    assert_eq!(acks.len(), reqs.len());
    let content = acks.iter().filter(|r| r["bytes"] == "45").count();
    let not_found = acks.iter().filter(|r| r["bytes"] == "34").count();
    assert_eq!(content + not_found, acks.len(), "{acks:?}");
    assert!(content >= 2 && not_found <= 1, "{acks:?}");
    let r = run_row(&dir, "f");
    // every exchange: the request and its ACK, no retransmission
    let bytes = (68 * reqs.len() + 45 * content + 34 * not_found) as f64;
    assert_eq!(num(&r, "bytes_per_exchange"), bytes / reqs.len() as f64);
    assert_eq!(num(&r, "round_trip_success"), 1.0);

    if !tshark::available("con_get_of_room_120_is_40_bytes_of_coap_and_68_of_ipv4") {
        return;
    }
    let pcap = dir.join("pcap").join("collector--sensor.pcap");
    let out = tshark::run(
        &pcap,
        &[
            "-Y",
            "coap.code == 1",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "ip.len",
            "-e",
            "udp.length",
            "-e",
            "coap.version",
            "-e",
            "coap.type",
            "-e",
            "coap.token_len",
            "-e",
            "coap.opt.uri_path_recon",
            "-e",
            "udp.payload",
            "-e",
            "_ws.malformed",
        ],
    );
    let lines = tshark::lines(&out);
    assert_eq!(lines.len(), reqs.len(), "{out}");
    for l in &lines {
        let f: Vec<&str> = l.split('|').collect();
        assert_eq!(
            &f[..6],
            &[
                "68",
                "48",
                "1",
                "0",
                "2",
                "/building/xyz/room/120/temperature"
            ],
            "tshark: {l}"
        );
        let coap = f[6].replace(':', "");
        assert_eq!(coap.len(), 80, "40 bytes of CoAP: {coap}");
        assert_eq!(&coap[..4], "4201", "CON, TKL 2, GET: {coap}");
        assert_eq!(&coap[12..], URI_PATH_OPTIONS, "Uri-Path options");
        assert_eq!(f[7], "", "malformed: {l}");
    }
    // the response: ACK 2.05 Content, Content-Format 42, the 8-byte reading
    let out = tshark::run(
        &pcap,
        &[
            "-Y",
            "coap.code == 69",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "ip.len",
            "-e",
            "coap.type",
            "-e",
            "coap.opt.ctype",
            "-e",
            "coap.payload",
        ],
    );
    let lines = tshark::lines(&out);
    assert_eq!(lines.len(), content, "{out}");
    for l in lines {
        let f: Vec<&str> = l.split('|').collect();
        assert_eq!(f[0], "45", "{l}");
        assert_eq!(f[1], "2", "ACK: {l}");
        assert!(f[2].contains("42") || f[2].contains("octet-stream"), "{l}");
    }
}

/// Kills a child process when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// libcoap's own client (Debian `libcoap3-bin`), captured by tshark on the
/// loopback interface, sends the same 40-byte GET (68 bytes of IPv4) with the
/// same Uri-Path option bytes as the simulator. The server listens on port
/// 5683 of a loopback address of its own, so the client adds no Uri-Port
/// (default port) and no Uri-Host (IP literal). Skipped (with a message) when
/// libcoap or tshark is missing (failed under CI=true) or when this machine
/// does not allow capturing on `lo` (needs CAP_NET_RAW).
#[test]
fn real_libcoap_get_matches_the_simulated_bytes() {
    const TEST: &str = "real_libcoap_get_matches_the_simulated_bytes";
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !tshark::available(TEST) {
        return;
    }
    for bin in ["coap-client-notls", "coap-server-notls"] {
        if !on_path(bin) {
            assert!(!ci, "{bin} is required when CI=true (Debian libcoap3-bin)");
            eprintln!("{TEST}: SKIPPED — {bin} not found (Debian libcoap3-bin)");
            return;
        }
    }
    let pid = std::process::id();
    let host = format!("127.{}.{}.{}", 100 + pid % 100, (pid / 100) % 250 + 1, 7);
    let dir = common::temp_dir("coap-get-real");
    let pcap = dir.join("lo.pcap");
    let log = dir.join("tshark.log");
    let mut tshark = KillOnDrop(
        Command::new("tshark")
            .args(["-i", "lo", "-c", "1", "-f"])
            .arg(format!("udp and dst host {host} and dst port 5683"))
            .arg("-w")
            .arg(&pcap)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn tshark"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Capturing on") {
            break;
        }
        if let Ok(Some(status)) = tshark.0.try_wait() {
            eprintln!("{TEST}: SKIPPED — cannot capture on lo here ({status}): {text}");
            return;
        }
        if Instant::now() > deadline {
            eprintln!("{TEST}: SKIPPED — tshark did not start capturing on lo: {text}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _server = KillOnDrop(
        Command::new("coap-server-notls")
            .args(["-A", &host, "-p", "5683"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn coap-server-notls"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let client = Command::new("coap-client-notls")
        .args(["-B", "3", "-T", "ab", "-m", "get"])
        .arg(format!("coap://{host}/building/xyz/room/120/temperature"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run coap-client-notls");
    eprintln!("{TEST}: coap-client-notls exited {client}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tshark.0.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "tshark captured nothing");
        std::thread::sleep(Duration::from_millis(50));
    }
    let fields = [
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "ip.len",
        "-e",
        "udp.length",
        "-e",
        "coap.type",
        "-e",
        "coap.code",
        "-e",
        "coap.token_len",
        "-e",
        "coap.opt.uri_path_recon",
        "-e",
        "udp.payload",
    ];
    let real = tshark::run(&pcap, &fields);
    let real: Vec<&str> = tshark::lines(&real)[0].split('|').collect();
    eprintln!("{TEST}: real capture {real:?}");

    let sim_dir = run_text("coap-get-real-sim", &room_120(), &[]);
    let mut args = vec!["-Y", "coap.code == 1"];
    args.extend_from_slice(&fields);
    let sim = tshark::run(&sim_dir.join("pcap").join("collector--sensor.pcap"), &args);
    let sim: Vec<&str> = tshark::lines(&sim)[0].split('|').collect();
    eprintln!("{TEST}: simulated    {sim:?}");
    // IP length, UDP length, type, code, TKL, path: equal field by field
    assert_eq!(real[..6], sim[..6]);
    assert_eq!(real[0], "68");
    // the CoAP bytes after header, message ID and token (the 34 option
    // bytes) are identical; message ID and token values differ
    let (real_coap, sim_coap) = (real[6].replace(':', ""), sim[6].replace(':', ""));
    assert_eq!(real_coap.len(), 80);
    assert_eq!(real_coap[..4], sim_coap[..4], "header byte and code");
    assert_eq!(real_coap[12..], sim_coap[12..], "options");
    assert_eq!(&sim_coap[12..], URI_PATH_OPTIONS);
}

// ---------------------------------------------------------------------------
// (3) staleness, (4) duplicates: exact against the poll phase

/// What one run of `polled(…)` shows per sensor on a lossless link:
/// (poll times, response departures at the sensor, messages by id).
struct Polls {
    /// (sent_at, delivered_at, copies) by message id, per sensor.
    msgs: BTreeMap<String, Vec<(u64, Option<u64>, u32)>>,
    /// First-hop transmission times of the GETs, per sensor.
    polls: BTreeMap<String, Vec<u64>>,
    /// Departure times of the responses at the sensor (= request arrival).
    answers: BTreeMap<String, Vec<u64>>,
    rtt: u64,
}

fn lossless_polls(dir: &Path, sensors: u32) -> Polls {
    let r = run_row(dir, "f");
    assert_eq!(r["rtt_ms_p50"], r["rtt_ms_p99"], "lossless: one RTT");
    let rtt = ns(&r["rtt_ms_p50"]);
    let rows = read_csv(&dir.join("packets.csv"));
    let mut out = Polls {
        msgs: BTreeMap::new(),
        polls: BTreeMap::new(),
        answers: BTreeMap::new(),
        rtt,
    };
    for i in 1..=sensors {
        let s = format!("s-{i}");
        let times = |v: Vec<&BTreeMap<String, String>>| -> Vec<u64> {
            v.iter().map(|r| ns(&r["time_ms"])).collect()
        };
        out.polls.insert(
            s.clone(),
            times(packets(&rows, "coap_non", "collector", &s)),
        );
        out.answers.insert(
            s.clone(),
            times(packets(&rows, "coap_non", &s, "collector")),
        );
    }
    for m in read_csv(&dir.join("messages.csv")) {
        let d = (!m["delivered_at_ms"].is_empty()).then(|| ns(&m["delivered_at_ms"]));
        out.msgs.entry(m["publisher"].clone()).or_default().push((
            ns(&m["sent_at_ms"]),
            d,
            m["copies"].parse().expect("copies"),
        ));
    }
    out
}

/// Every poll fetches the reading stored when the GET reached the sensor;
/// that reading's first copy arrives one RTT after the poll, so its latency
/// is the staleness at the poll plus the RTT. Checks, per sensor: polls at
/// start + offset + k·poll with 0 ≤ offset < poll; the delivered readings
/// are exactly the fetched ones, with the predicted receipt time and copies;
/// everything else is lost. Returns (readings fetched, copies, the sum of
/// their predicted latencies).
fn check_polls(p: &Polls, interval: u64, poll: u64) -> (usize, usize, u64) {
    let (mut fetched_total, mut copies_total, mut latency_sum) = (0, 0, 0);
    for (s, polls) in &p.polls {
        let answers = &p.answers[s];
        let msgs = &p.msgs[s];
        assert_eq!(polls.len(), answers.len(), "{s}: lossless");
        let offset = polls[0];
        assert!(
            offset < poll,
            "{s}: first poll {offset} within one poll interval"
        );
        for (k, &q) in polls.iter().enumerate() {
            assert_eq!(q, offset + k as u64 * poll, "{s}: poll {k} on its period");
        }
        // the reading each poll fetched: the last one made by the time the
        // GET reached the sensor (none before the first: 4.04)
        let mut expect: BTreeMap<usize, (u64, u32)> = BTreeMap::new();
        for (&q, &a) in polls.iter().zip(answers) {
            let Some(i) = msgs.iter().rposition(|m| m.0 <= a) else {
                continue;
            };
            let e = expect.entry(i).or_insert((q + p.rtt, 0));
            e.1 += 1;
        }
        for (i, m) in msgs.iter().enumerate() {
            match expect.get(&i) {
                Some(&(at, copies)) => {
                    assert_eq!(
                        m.1,
                        Some(at),
                        "{s}: message {i} received one RTT after its poll"
                    );
                    latency_sum += at - m.0;
                    assert_eq!(m.2, copies, "{s}: message {i} copies");
                    copies_total += copies as usize;
                }
                None => assert_eq!((m.1, m.2), (None, 0), "{s}: message {i} is lost"),
            }
        }
        fetched_total += expect.len();
        // the phase: readings at φ_p + k·interval, polls at offset + j·poll
        // (one period a multiple of the other); a reading's first copy is
        // fetched (offset − φ_p) mod min(interval, poll) after it was made —
        // but for the last reading, which later polls find after
        // publishing stopped
        let m = interval.min(poll);
        let phi = msgs[0].0 % interval;
        let stale = (offset + m - phi % m) % m;
        let d1 = answers[0] - polls[0];
        if stale > d1 {
            for (&i, &(at, _)) in expect.iter().filter(|(&i, _)| i + 1 < msgs.len()) {
                assert_eq!(
                    at - msgs[i].0,
                    stale + p.rtt,
                    "{s}: latency = staleness + RTT"
                );
            }
        }
    }
    (fetched_total, copies_total, latency_sum)
}

#[test]
fn polling_three_times_slower_delivers_a_third_with_the_staleness_in_latency() {
    let (n, t, poll) = (8u32, 10_000_000_000u64, 30_000_000_000u64);
    let dir = run_text(
        "coap-get-stale",
        &polled(n, 0.0, "non", "10 s", "30 s", "3000 s"),
        &[],
    );
    let r = run_row(&dir, "f");
    let p = lossless_polls(&dir, n);
    let (fetched, copies, lat) = check_polls(&p, t, poll);
    let sent = num(&r, "sent");
    assert_eq!(num(&r, "delivered") as usize, fetched);
    // a poll every three readings fetches each once; only the last reading
    // of a sensor may be fetched again by the poll after publishing stopped
    assert_eq!(num(&r, "duplicates") as usize, copies - fetched);
    assert!(
        copies - fetched <= n as usize,
        "{copies} copies of {fetched}"
    );
    // 300 readings per sensor, 100 polls: a third, up to one per sensor at
    // the edges of the window
    let ratio = num(&r, "delivery_ratio");
    assert!(
        (ratio - 1.0 / 3.0).abs() <= f64::from(n) / sent,
        "delivery ratio {ratio} vs 1/3 (sent {sent})"
    );
    // latency_ms_mean is the mean of staleness + RTT over the fetched
    // readings, as predicted from the poll times
    let expect_mean = lat as f64 / fetched as f64 / 1e6;
    let mean = num(&r, "latency_ms_mean");
    eprintln!(
        "poll 3x publish: delivered {fetched}/{sent} = {ratio:.4}; latency mean {mean:.3} ms, predicted {expect_mean:.3} ms"
    );
    assert!((mean - expect_mean).abs() < 1e-3, "{mean} vs {expect_mean}");
}

#[test]
fn polling_twice_as_fast_delivers_each_reading_twice() {
    let (n, t, poll) = (8u32, 10_000_000_000u64, 5_000_000_000u64);
    let dir = run_text(
        "coap-get-dup",
        &polled(n, 0.0, "non", "10 s", "5 s", "1000 s"),
        &[],
    );
    let r = run_row(&dir, "f");
    let p = lossless_polls(&dir, n);
    let (fetched, copies, _) = check_polls(&p, t, poll);
    let (sent, delivered, dups) = (num(&r, "sent"), num(&r, "delivered"), num(&r, "duplicates"));
    assert_eq!(delivered as usize, fetched);
    assert_eq!(
        dups as usize,
        copies - fetched,
        "duplicates = copies − first copies"
    );
    eprintln!("poll publish/2: sent {sent}, delivered {delivered}, duplicates {dups}");
    // every reading is polled twice before the next one: all delivered and
    // each once more, up to one reading per sensor at the window's edges
    assert!(sent - delivered <= f64::from(n), "{delivered}/{sent}");
    assert!(
        (dups - delivered).abs() <= f64::from(n),
        "{dups} vs {delivered}"
    );
}

// ---------------------------------------------------------------------------
// (5) determinism, (6) non_timeout

fn digest_dir(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "csv" || x == "pcap") {
                let rel = p.strip_prefix(dir).expect("under").display().to_string();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn same_scenario_and_seed_give_identical_outputs() {
    let text = scenario_file("coap-get.toml");
    let a = run_text("coap-get-det-a", &text, &[]);
    let b = run_text("coap-get-det-b", &text, &[]);
    let (da, db) = (digest_dir(&a), digest_dir(&b));
    assert!(da.len() >= 5, "{} files", da.len());
    assert_eq!(da.len(), db.len());
    for ((fa, ba), (fb, bb)) in da.iter().zip(&db) {
        assert_eq!(fa, fb);
        assert!(ba == bb, "{fa} differs between two runs of the same seed");
    }
    // and the seed matters (poll offsets, loss)
    let c = run_text("coap-get-det-c", &text, &["seed=2"]);
    assert_ne!(
        std::fs::read(a.join("messages.csv")).expect("a"),
        std::fs::read(c.join("messages.csv")).expect("c")
    );
}

/// 1 s each way: every NON response arrives ≈ 2 s after its GET. With
/// non_timeout 1.5 s the client has given up on every GET by then (the late
/// response matches nothing and is ignored): no round trip succeeds and
/// nothing is delivered. With 2.5 s, or the default 3 s, every one does.
#[test]
fn non_timeout_decides_when_a_non_get_has_failed() {
    let slow = polled(4, 0.0, "non", "10 s", "10 s", "600 s").replace("10 ms", "1 s");
    let run = |tag: &str, set: &[&str]| run_row(&run_text(tag, &slow, set), "f");
    let short = run("coap-get-nt-short", &["protocols.coap.non_timeout=1500ms"]);
    assert_eq!(num(&short, "round_trip_success"), 0.0);
    assert_eq!(num(&short, "delivered"), 0.0);
    assert_eq!(short["rtt_ms_p50"], "", "no answered exchange, no RTT");
    for (tag, set) in [
        (
            "coap-get-nt-long",
            &["protocols.coap.non_timeout=2.5 s"][..],
        ),
        ("coap-get-nt-default", &[][..]),
    ] {
        let long = run(tag, set);
        assert_eq!(num(&long, "round_trip_success"), 1.0, "{tag}");
        assert!(num(&long, "delivery_ratio") > 0.95, "{tag}");
        let rtt = num(&long, "rtt_ms_p50");
        assert!((2000.0..2001.0).contains(&rtt), "{tag}: rtt {rtt}");
    }
    // CON GETs are ACKed (piggybacked 2.05), so the NON timeout does not apply
    let con = slow.replace("reliability = \"non\"", "reliability = \"con\"");
    let r = run_row(
        &run_text(
            "coap-get-nt-con",
            &con,
            &["protocols.coap.non_timeout=1500ms"],
        ),
        "f",
    );
    assert_eq!(num(&r, "round_trip_success"), 1.0);
}

// ---------------------------------------------------------------------------
// scenario checks: file, line and field in every error

fn check_error(text: &str, field: &str, needle: &str) {
    let dir = common::temp_dir("coap-get-check");
    let file = dir.join("bad.toml");
    std::fs::write(&file, text).expect("write");
    let (code, out) = common::cli::qossim(&["check", file.to_str().expect("utf-8")]);
    assert_ne!(code, 0, "{out}");
    let line = text
        .lines()
        .position(|l| {
            l.trim_start()
                .starts_with(field.rsplit('.').next().expect("key"))
        })
        .expect("field in text")
        + 1;
    let want = format!("bad.toml:{line}:");
    assert!(out.contains(&want), "no {want} in: {out}");
    assert!(out.contains(&format!("field `{field}`")), "{out}");
    assert!(out.contains(needle), "no {needle:?} in: {out}");
}

#[test]
fn check_names_file_line_and_field_of_bad_coap_get_settings() {
    let base = polled(2, 0.0, "non", "10 s", "10 s", "60 s");
    check_error(
        &base.replace("coap_mode = \"get\"", "coap_mode = \"poll\""),
        "flows.f.coap_mode",
        "expected one of: put, get",
    );
    check_error(
        &base
            .replace("protocol = \"coap\"", "protocol = \"udp\"")
            .replace("reliability = \"non\"", "reliability = \"best_effort\"")
            .replace("poll_interval = \"10 s\"\n", ""),
        "flows.f.coap_mode",
        "applies to protocol \"coap\" only",
    );
    check_error(
        &base.replace("coap_mode = \"get\"\n", ""),
        "flows.f.poll_interval",
        "coap_mode = \"get\"",
    );
    check_error(
        &format!("{base}\n[protocols.coap]\nnon_timeout = \"0 s\"\n"),
        "protocols.coap.non_timeout",
        "must be positive",
    );
    // and --set reaches the field
    let dir = common::temp_dir("coap-get-set");
    let file = dir.join("ok.toml");
    std::fs::write(&file, &base).expect("write");
    let f = file.to_str().expect("utf-8");
    let (code, out) = common::cli::qossim(&[
        "check",
        f,
        "--set",
        "flows.f.coap_mode=put",
        "--set",
        "flows.f.poll_interval=1s",
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("field `flows.f.poll_interval`"), "{out}");
    let (code, out) =
        common::cli::qossim(&["check", f, "--set", "protocols.coap.non_timeout=500ms"]);
    assert_eq!(code, 0, "{out}");
}
