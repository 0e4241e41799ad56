//! Running `tshark` on capture files written by tests.
//!
//! When `tshark` is not installed, [`available`] fails the test if the
//! environment says `CI=true` (CI must run the interop checks) and otherwise
//! prints why the test is skipped, so a developer without Wireshark can still
//! run `cargo test`.

use std::path::Path;
use std::process::Command;

/// True when `tshark -v` runs. Panics (failing the test) when it does not
/// and `CI=true`; otherwise prints a skip message naming `test` and returns false.
pub fn available(test: &str) -> bool {
    let ok = Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: tshark is required when CI=true but was not found on PATH");
        }
        eprintln!(
            "{test}: SKIPPED — tshark not found on PATH (install it, e.g. apt-get install tshark)"
        );
    }
    ok
}

/// Run `tshark -r <file> <args…>` and return its standard output; panics with
/// tshark's stderr when it exits unsuccessfully.
pub fn run(file: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tshark: {e}"));
    assert!(
        out.status.success(),
        "tshark {args:?} on {} failed ({}): {}",
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fail the test when tshark, reading `file` with the options `opts`,
/// finds a malformed packet, an expert message of severity Warning or
/// worse, a bad 802.15.4 FCS, or a packet matching the display filter
/// `also` (when given).
pub fn assert_clean(file: &Path, opts: &[&str], also: Option<&str>) {
    let bad = flagged_or(file, opts, also, "Warning");
    assert!(
        bad.is_empty(),
        "tshark found malformed packets or warnings in {}: {bad:?}",
        file.display()
    );
}

/// The values tshark gives `fields` in each packet of `file` (read with
/// the options `opts`), one row per packet; fails the test when a row does
/// not have one value per field.
pub fn field_rows(file: &Path, opts: &[&str], fields: &[&str]) -> Vec<Vec<String>> {
    let mut args = opts.to_vec();
    args.extend(["-T", "fields", "-E", "separator=|"]);
    for f in fields {
        args.extend(["-e", f]);
    }
    let out = run(file, &args);
    lines(&out)
        .into_iter()
        .map(|l| {
            let row: Vec<String> = l.split('|').map(str::to_string).collect();
            assert_eq!(row.len(), fields.len(), "tshark row {l:?} for {fields:?}");
            row
        })
        .collect()
}

/// Frames of `file` that tshark (with the options `pre` first) finds
/// malformed, flags with an expert info of severity Warning or worse, or
/// whose IEEE 802.15.4 FCS is bad: one line each, frame number and expert
/// messages. Empty when the capture is clean.
pub fn flagged(file: &Path, pre: &[&str]) -> Vec<String> {
    flagged_or(file, pre, None, "Warning")
}

/// Fail the test when tshark finds a malformed packet, an expert message
/// of severity Error or a bad FCS in `file` (read with `opts`): for
/// captures where warnings are expected (TCP analysis of a lossy link,
/// which the sender-side capture shows before the loss; Wireshark's
/// MQTT-SN dissector reading a binary payload as text).
pub fn assert_no_errors(file: &Path, opts: &[&str]) {
    let bad = flagged_or(file, opts, None, "Error");
    assert!(
        bad.is_empty(),
        "tshark found malformed packets or errors in {}: {bad:?}",
        file.display()
    );
}

/// Frames that are malformed, have an expert message of severity `min` or
/// worse, a bad 802.15.4 FCS, or match the filter `also`.
fn flagged_or(file: &Path, pre: &[&str], also: Option<&str>, min: &str) -> Vec<String> {
    let mut filter =
        format!("_ws.malformed || _ws.expert.severity >= \"{min}\" || wpan.fcs_ok == 0");
    if let Some(f) = also {
        filter = format!("{filter} || {f}");
    }
    let mut args = pre.to_vec();
    args.extend(["-Y", &filter, "-T", "fields", "-e", "frame.number"]);
    args.extend(["-e", "_ws.expert.message"]);
    lines(&run(file, &args))
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Non-empty output lines.
pub fn lines(s: &str) -> Vec<&str> {
    s.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Write CoAP datagrams `(time, from, to, bytes)` to a fresh capture file
/// (raw IPv4, the simulator's pcap writer) as IPv4/UDP packets between
/// 10.0.0.`from + 1` and 10.0.0.`to + 1`, port 5683 both ends, so tshark
/// dissects them as CoAP.
pub fn coap_capture(
    tag: &str,
    datagrams: &[(qossim::sim::SimTime, usize, usize, &[u8])],
) -> std::path::PathBuf {
    udp_capture(tag, 5683, datagrams)
}

/// [`coap_capture`] with `port` at both ends (5684 for CoAP over DTLS).
pub fn udp_capture(
    tag: &str,
    port: u16,
    datagrams: &[(qossim::sim::SimTime, usize, usize, &[u8])],
) -> std::path::PathBuf {
    use qossim::net::ip::Ipv4Repr;
    use qossim::report::pcap::PcapWriter;
    let file = super::temp_dir(tag).join("udp.pcap");
    let f = std::fs::File::create(&file).expect("create capture");
    let mut w = PcapWriter::new(std::io::BufWriter::new(f)).expect("pcap header");
    let mut pkt = Vec::new();
    for (i, &(t, from, to, bytes)) in datagrams.iter().enumerate() {
        let host = |n: usize| std::net::Ipv4Addr::new(10, 0, 0, n as u8 + 1);
        let ip = Ipv4Repr {
            src: host(from),
            dst: host(to),
            protocol: qossim::net::ip::PROTO_UDP,
            ttl: 64,
            ident: i as u16,
            dont_fragment: false,
            more_fragments: false,
            frag_offset: 0,
            payload_len: 0,
        };
        qossim::net::udp::build_ipv4_udp(&mut pkt, &ip, port, port, bytes).expect("packet");
        w.write_packet(t, &pkt).expect("write packet");
    }
    w.flush().expect("flush capture");
    file
}

/// tshark's reading of every CoAP message in `file`, one line each, in the
/// notation of the RFCs' figures: type and code, then, in the message's
/// option order, Block1/Block2 as `1:NUM/M/SIZE` / `2:NUM/M/SIZE`,
/// `Observe:N`, `Size1:N` and `Size2` (this tshark has no Size2 value
/// field), as tshark decodes them, e.g. `CON 0.01 2:1/0/128` or
/// `ACK 2.05 Observe:12`. Fails the test when tshark reports any malformed
/// packet.
pub fn coap_figure(file: &Path) -> Vec<String> {
    let fields = [
        "coap.type",
        "coap.code",
        "coap.opt.name",
        "coap.opt.block_number",
        "coap.opt.block_mflag",
        "coap.opt.block_size",
        "coap.opt.observe",
        "coap.opt.size1",
        "_ws.malformed",
    ];
    let mut args = vec![
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=;",
    ];
    for f in &fields {
        args.extend(["-e", f]);
    }
    let out = run(file, &args);
    lines(&out)
        .into_iter()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            assert_eq!(f.len(), fields.len(), "{l}");
            assert!(f[8].is_empty(), "tshark: malformed: {l}");
            let ty = match f[0] {
                "0" => "CON",
                "1" => "NON",
                "2" => "ACK",
                "3" => "RST",
                t => panic!("type {t:?} in {l}"),
            };
            let code: u8 = f[1].parse().expect("code");
            let list =
                |i: usize| -> Vec<&str> { f[i].split(';').filter(|v| !v.is_empty()).collect() };
            let (nums, ms, szxs) = (list(3), list(4), list(5));
            let mut block = 0;
            let mut s = format!("{ty} {}.{:02}", code >> 5, code & 0x1f);
            for name in list(2) {
                // "#2: Block2"
                let name = name.rsplit(": ").next().unwrap_or(name);
                match name {
                    "Block1" | "Block2" => {
                        let szx: u32 = szxs[block].parse().expect("szx");
                        s += &format!(
                            " {}:{}/{}/{}",
                            &name[5..],
                            nums[block],
                            ms[block],
                            16u32 << szx
                        );
                        block += 1;
                    }
                    "Observe" => s += &format!(" Observe:{}", f[6]),
                    "Size1" => s += &format!(" Size1:{}", f[7]),
                    "Size2" => s += " Size2",
                    _ => {}
                }
            }
            s
        })
        .collect()
}

/// Write one TCP conversation 10.0.0.1:40000 → 10.0.0.2:`port` to a fresh
/// capture file (raw IPv4, the simulator's pcap writer and TCP/IPv4
/// encoders): a three-way handshake, then `writes` in order (client →
/// server when the flag is true), each write in segments of at most 1460
/// bytes, 1 ms apart.
pub fn tcp_capture(tag: &str, port: u16, writes: &[(bool, Vec<u8>)]) -> std::path::PathBuf {
    use qossim::net::ip::Ipv4Repr;
    use qossim::report::pcap::PcapWriter;
    use qossim::sim::SimTime;
    use qossim::transport::tcp::segment::{TcpFlags, TcpRepr};
    use std::net::Ipv4Addr;

    let file = super::temp_dir(tag).join("tcp.pcap");
    let f = std::fs::File::create(&file).expect("create capture");
    let mut w = PcapWriter::new(std::io::BufWriter::new(f)).expect("pcap header");
    let (c, sv) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let (mut cseq, mut sseq) = (1000u32, 5000u32);
    let mut n = 0u64;
    let mut put = |from_client: bool, flags: u8, seq: u32, ack: u32, payload: &[u8]| {
        let (src, dst, sp, dp) = if from_client {
            (c, sv, 40000, port)
        } else {
            (sv, c, port, 40000)
        };
        let t = TcpRepr {
            src_port: sp,
            dst_port: dp,
            seq,
            ack,
            flags: TcpFlags(flags),
            window: 65535,
            payload_len: payload.len() as u16,
            ..TcpRepr::default()
        };
        let mut seg = vec![0u8; t.buffer_len()];
        t.emit(&mut seg, src, dst, payload).expect("segment");
        let ip = Ipv4Repr {
            src,
            dst,
            protocol: 6,
            ttl: 64,
            ident: n as u16,
            dont_fragment: true,
            more_fragments: false,
            frag_offset: 0,
            payload_len: seg.len() as u16,
        };
        let mut pkt = vec![0u8; ip.buffer_len()];
        ip.emit(&mut pkt).expect("ip header");
        pkt.extend_from_slice(&seg);
        n += 1;
        w.write_packet(SimTime::from_nanos(n * 1_000_000), &pkt)
            .expect("write packet");
    };
    put(true, 0x02, cseq - 1, 0, &[]);
    put(false, 0x12, sseq - 1, cseq, &[]);
    put(true, 0x10, cseq, sseq, &[]);
    for (from_client, bytes) in writes {
        for seg in bytes.chunks(1460) {
            if *from_client {
                put(true, 0x18, cseq, sseq, seg);
                cseq = cseq.wrapping_add(seg.len() as u32);
            } else {
                put(false, 0x18, sseq, cseq, seg);
                sseq = sseq.wrapping_add(seg.len() as u32);
            }
        }
    }
    w.flush().expect("flush capture");
    file
}
