//! `qossim new <pattern> <protocol> [--radio]` (issue 17 item 7): every
//! skeleton loads without a warning, runs as it is and delivers, opens with
//! a question (so `qossim list` shows it), and bad names are refused with
//! a suggestion; `--out` never replaces a file.

mod common;
use common::cli::run as qossim;

fn delivery(dir: &std::path::Path) -> f64 {
    let r = common::sim::run_row(dir, "readings");
    common::sim::num(&r, "delivery_ratio")
}

#[test]
fn every_skeleton_checks_runs_and_delivers() {
    let dir = common::temp_dir("new");
    for radio in [false, true] {
        for pattern in qossim::cli::new::PATTERNS {
            for protocol in qossim::cli::new::PROTOCOLS {
                let mut args = vec!["new", pattern, protocol];
                if radio {
                    args.push("--radio");
                }
                let (code, text, err) = qossim(&args);
                assert_eq!(code, 0, "{args:?}: {err}");
                assert!(text.starts_with("# Question: "), "{text}");
                let question_end = text.find('?').expect("a question");
                assert!(text[..question_end].lines().all(|l| l.starts_with('#')));
                let tag = format!("{pattern}-{protocol}-{radio}");
                let file = dir.join(format!("{tag}.toml"));
                std::fs::write(&file, &text).expect("write");
                let f = file.to_str().expect("utf-8");
                let (code, _, err) = qossim(&["check", f, "--deny-warnings"]);
                assert_eq!(code, 0, "{tag}: {err}");
                let out = dir.join(&tag);
                let (code, _, err) = qossim(&[
                    "run",
                    f,
                    "--quiet",
                    "--deny-warnings",
                    "--set",
                    "duration=2min",
                    "--out",
                    out.to_str().expect("utf-8"),
                ]);
                assert_eq!(code, 0, "{tag}: {err}");
                let d = delivery(&out);
                // 5 % Bernoulli loss on the sensor links: only UDP loses
                // (each datagram crosses one lossy link: ≈ 0.95)
                let floor = if protocol == "udp" && !radio {
                    0.85
                } else {
                    0.99
                };
                assert!(d >= floor, "{tag}: delivery {d}");
            }
        }
    }
    // `qossim list` shows the skeletons with their question
    let (code, listing, err) = qossim(&["list", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        listing.contains("Question: Five sensors to one collector"),
        "{listing}"
    );
}

#[test]
fn bad_names_are_refused_and_out_never_replaces() {
    let (code, _, err) = qossim(&["new", "fan_in", "mqt"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown protocol `mqt`") && err.contains("did you mean `mqtt`?"),
        "{err}"
    );
    let (code, _, err) = qossim(&["new", "fanin", "coap"]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `fan_in`?"), "{err}");
    let dir = common::temp_dir("new-out");
    let f = dir.join("s.toml");
    let fs = f.to_str().expect("utf-8");
    let (code, _, err) = qossim(&["new", "broadcast", "mqttsn", "--out", fs]);
    assert_eq!(code, 0, "{err}");
    let first = std::fs::read_to_string(&f).expect("written");
    assert!(first.contains("protocol = \"mqttsn\""));
    let (code, _, err) = qossim(&["new", "fan_in", "udp", "--out", fs]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not replace"), "{err}");
    assert_eq!(std::fs::read_to_string(&f).expect("kept"), first);
}
