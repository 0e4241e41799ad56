//! `qossim playground --out DIR`: the static site that runs the teaching
//! scenarios in the browser through the wasm build of the library.
//!
//! The browser test builds the wasm (`tests/common/wasm.rs`, the command
//! docs/tutorial.md gives), writes the site, serves
//! it from a loopback HTTP server thread, and drives headless Chromium over
//! the DevTools protocol (the run happens in a Web Worker, after the load
//! event, so `--dump-dom` would read the page too early): the page's
//! `#runs-csv` and `#summary-csv` must equal, byte for byte, what the native
//! `qossim run` writes for the same scenario and `--set` overrides, for
//! every teaching scenario and for qos-levels at two loss values, with no
//! console message; a bad override and a scenario over the event limit end
//! in `#error` with their message instead of a hang.
//!
//! Under CI=true a missing wasm32-unknown-unknown target or chromium fails
//! the test; elsewhere the browser part is skipped with a message.

mod common;
use common::browser::{chromium, Page};
use common::cli::run;
use common::peers::{free_port, LOCALHOST};
use common::temp_dir;
use qossim::cli::playground::{find_wasm, knobs, TEACHING, WASM_BUILD};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn embedded_teaching_scenarios_are_the_directory() {
    let mut on_disk: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("scenarios/teaching"))
        .expect("scenarios/teaching")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    on_disk.sort();
    let embedded: Vec<String> = TEACHING.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(embedded, on_disk, "TEACHING in src/cli/playground.rs");
    for (name, text) in TEACHING {
        let file = std::fs::read_to_string(format!("{ROOT}/scenarios/teaching/{name}.toml"));
        assert_eq!(file.as_deref().ok(), Some(text), "{name}");
    }
}

/// The knobs come from the scenario: its lossy link, its groups, each
/// flow's protocol and reliability, MQTT keep-alive, seed; and every knob
/// path is one `--set` accepts with the knob's own value.
#[test]
fn knobs_are_what_the_scenario_has_and_valid_set_paths() {
    let (_, qos) = TEACHING.iter().find(|(n, _)| *n == "qos-levels").unwrap();
    let k = knobs(qos).unwrap();
    let get = |p: &str| {
        k.iter()
            .find(|x| x["path"] == p)
            .unwrap_or_else(|| panic!("{p}"))
    };
    assert_eq!(get("links.backhaul.loss.p")["value"], 0.2);
    assert_eq!(get("groups.q1-{i}.count")["value"], 10);
    assert_eq!(get("flows.qos2.reliability")["value"], "qos2");
    assert_eq!(get("flows.qos2.protocol")["options"][2], "coap");
    assert_eq!(get("protocols.mqtt.keep_alive")["value"], "30 s");
    assert_eq!(get("seed")["value"], 1);
    let (_, con) = TEACHING
        .iter()
        .find(|(n, _)| *n == "coap-con-vs-non")
        .unwrap();
    let k2 = knobs(con).unwrap();
    assert!(k2.iter().any(|x| x["path"] == "groups.con-{i}.link.loss.p"));
    assert!(!k2.iter().any(|x| x["path"] == "protocols.mqtt.keep_alive"));
    for (name, text) in TEACHING {
        let sets: Vec<String> = knobs(text)
            .unwrap()
            .iter()
            .map(|x| {
                let v = &x["value"];
                format!(
                    "{}={}",
                    x["path"].as_str().unwrap(),
                    v.as_str().map_or(v.to_string(), str::to_string)
                )
            })
            .collect();
        let mut args = vec![
            "check".to_string(),
            format!("{ROOT}/scenarios/teaching/{name}.toml"),
        ];
        for s in &sets {
            args.extend(["--set".to_string(), s.clone()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{name} {sets:?}: {out}{err}");
    }
}

#[test]
fn a_missing_wasm_names_the_build_command() {
    let empty = temp_dir("playground-nowasm");
    // The command the error names is the one the tests build with.
    let args = common::wasm::WASM_BUILD.iter().filter(|a| **a != "--quiet");
    let want = format!(
        "env CARGO_TARGET_DIR=target/wasm cargo {}",
        args.copied().collect::<Vec<_>>().join(" ")
    );
    assert_eq!(WASM_BUILD, want);
    let e = find_wasm(None, &empty, None).unwrap_err().to_string();
    assert!(e.contains(WASM_BUILD), "{e}");
    let out = empty.join("site");
    let missing = empty.join("nope.wasm");
    let (code, _, err) = run(&[
        "playground",
        "--out",
        out.to_str().unwrap(),
        "--wasm",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("nope.wasm") && err.contains(WASM_BUILD),
        "{err}"
    );
    let not_wasm = empty.join("x.wasm");
    std::fs::write(&not_wasm, "hello").unwrap();
    let (code, _, err) = run(&[
        "playground",
        "--out",
        out.to_str().unwrap(),
        "--wasm",
        not_wasm.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a WebAssembly module"), "{err}");
    assert!(!out.join("index.html").exists(), "nothing written on error");
}

/// Serve `dir` over HTTP on a loopback port (GET only; one thread per
/// connection) until the test ends; the port.
fn serve(dir: PathBuf) -> u16 {
    let port = free_port();
    let listener = TcpListener::bind((LOCALHOST, port)).expect("bind");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut line = String::new();
                let mut r = BufReader::new(&stream);
                if r.read_line(&mut line).is_err() {
                    return;
                }
                let mut h = String::new();
                while r.read_line(&mut h).is_ok_and(|n| n > 2) {
                    h.clear();
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/");
                let path = path
                    .split('?')
                    .next()
                    .unwrap_or("/")
                    .trim_start_matches('/');
                let path = if path.is_empty() { "index.html" } else { path };
                let file = (!path.contains(".."))
                    .then(|| std::fs::read(dir.join(path)).ok())
                    .flatten();
                let mut s = &stream;
                let _ = match file {
                    Some(body) => {
                        let ty = match path.rsplit('.').next() {
                            Some("html") => "text/html; charset=utf-8",
                            Some("js") => "text/javascript; charset=utf-8",
                            Some("css") => "text/css; charset=utf-8",
                            Some("wasm") => "application/wasm",
                            _ => "application/octet-stream",
                        };
                        write!(s, "HTTP/1.1 200 OK\r\nContent-Type: {ty}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                            .and_then(|_| s.write_all(&body))
                    }
                    None => write!(
                        s,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    ),
                };
            });
        }
    });
    port
}

/// Percent-encode a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What the page showed after a run: its state (`done` or `error`),
/// `#error`, `#cli`, `#runs-csv`, `#summary-csv` and the number of charts.
struct Shown {
    state: String,
    error: String,
    cli: String,
    runs: String,
    summary: String,
    charts: u64,
}

fn browse(page: &mut Page, base: &str, scenario: &str, sets: &[&str]) -> Shown {
    let q: String = sets.iter().map(|s| format!("&set={}", enc(s))).collect();
    page.navigate(&format!(
        "{base}/index.html?scenario={scenario}{q}&autorun=1"
    ));
    let state = page.wait_for(
        "document.body.dataset.state",
        &["done", "error"],
        Duration::from_secs(300),
    );
    let status = page.eval("document.getElementById('status').textContent");
    eprintln!(
        "{scenario} {sets:?}: {}",
        status.as_str().unwrap_or_default()
    );
    let text = |p: &mut Page, id: &str| {
        p.eval(&format!("document.getElementById('{id}').textContent"))
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    Shown {
        error: text(page, "error"),
        cli: text(page, "cli"),
        runs: text(page, "runs-csv"),
        summary: text(page, "summary-csv"),
        charts: page
            .eval("document.querySelectorAll('#charts svg').length")
            .as_u64()
            .unwrap_or(0),
        state,
    }
}

/// The native CLI's runs.csv and summary.csv for the same run.
fn native(scenario: &str, sets: &[&str]) -> (String, String) {
    let out = temp_dir("playground-native");
    let file = format!("{ROOT}/scenarios/teaching/{scenario}.toml");
    let mut args = vec!["run", &file, "--quiet", "--out", out.to_str().unwrap()];
    for s in sets {
        args.extend(["--set", s]);
    }
    let (code, o, e) = run(&args);
    assert_eq!(code, 0, "{args:?}: {o}{e}");
    let read = |n: &str| std::fs::read_to_string(out.join(n)).unwrap();
    (read("runs.csv"), read("summary.csv"))
}

#[test]
fn the_playground_in_chromium_matches_the_native_cli() {
    let Some(c) = chromium() else { return };
    let Some(wasm) = common::wasm::build() else {
        return;
    };
    let site = temp_dir("playground-site");
    let (code, o, e) = run(&[
        "playground",
        "--out",
        site.to_str().unwrap(),
        "--wasm",
        wasm.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{o}{e}");
    for f in [
        "index.html",
        "app.js",
        "worker.js",
        "style.css",
        "scenarios.js",
        "qossim.wasm",
        "qossim-wasm.js",
        "worker-src.js",
    ] {
        assert!(site.join(f).is_file(), "{f} written");
    }
    for f in ["index.html", "app.js", "worker.js", "style.css"] {
        let t = std::fs::read_to_string(site.join(f))
            .unwrap()
            .replace("http://www.w3.org/2000/svg", "");
        assert!(
            !t.contains("http://") && !t.contains("https://"),
            "{f} refers to the network"
        );
    }
    let port = serve(site.clone());
    let base = format!("http://127.0.0.1:{port}");
    let mut page = Page::open(&c, 1280, 1700);

    // qos-levels at two loss values: the same bytes as the native CLI.
    for p in ["0.35", "0.05"] {
        let set = format!("links.backhaul.loss.p={p}");
        let shown = browse(&mut page, &base, "qos-levels", &[&set]);
        assert_eq!(shown.state, "done", "qos-levels {set}: {}", shown.error);
        if p == "0.35" {
            let png = page.screenshot();
            assert!(
                png.starts_with(b"\x89PNG") && png.len() > 20_000,
                "screenshot"
            );
            let shot = std::env::temp_dir().join("qossim-playground.png");
            std::fs::write(&shot, png).unwrap();
            eprintln!("screenshot: {}", shot.display());
        }
        let (runs, summary) = native("qos-levels", &[&set]);
        assert_eq!(shown.runs, runs, "runs.csv at {set}");
        assert_eq!(shown.summary, summary, "summary.csv at {set}");
        assert_eq!(
            shown.cli,
            format!("qossim run scenarios/teaching/qos-levels.toml --set {set}")
        );
        assert_eq!(shown.charts, 5, "charts drawn");
    }
    // Opened from disk (file://): the wasm and the worker come from
    // scripts, and the numbers are the same.
    let set = "links.backhaul.loss.p=0.2";
    let shown = browse(
        &mut page,
        &format!("file://{}", site.display()),
        "qos-levels",
        &[set],
    );
    assert_eq!(shown.state, "done", "from disk: {}", shown.error);
    let (runs, summary) = native("qos-levels", &[set]);
    assert_eq!(shown.runs, runs, "runs.csv from disk");
    assert_eq!(shown.summary, summary, "summary.csv from disk");
    // A knob moved away from the file's value shows up in the CLI line
    // with shell quoting, and the numbers still match.
    let sets = ["groups.q1-{i}.count=3", "protocols.mqtt.keep_alive=10 s"];
    let shown = browse(&mut page, &base, "qos-levels", &sets);
    assert_eq!(shown.state, "done", "{}", shown.error);
    assert_eq!(
        shown.cli,
        "qossim run scenarios/teaching/qos-levels.toml --set 'groups.q1-{i}.count=3' --set 'protocols.mqtt.keep_alive=10 s'"
    );
    assert_eq!((shown.runs, shown.summary), native("qos-levels", &sets));

    // Every teaching scenario runs within the limit, with the native bytes.
    for (name, _) in TEACHING {
        let shown = browse(&mut page, &base, name, &[]);
        assert_eq!(shown.state, "done", "{name}: {}", shown.error);
        assert_eq!((shown.runs, shown.summary), native(name, &[]), "{name}");
    }

    // A bad override and a run over the event limit: a message, no hang.
    let shown = browse(&mut page, &base, "qos-levels", &["links.nosuch.loss.p=0.1"]);
    assert_eq!(shown.state, "error");
    assert!(shown.error.contains("nosuch"), "{}", shown.error);
    assert!(shown.runs.is_empty() && shown.summary.is_empty());
    let big = ["groups.q0-{i}.count=3000", "duration=2 h"];
    let shown = browse(&mut page, &base, "qos-levels", &big);
    assert_eq!(shown.state, "error");
    let limit = format!(
        "more than {} events",
        qossim::browser::PLAYGROUND_EVENT_LIMIT
    );
    assert!(
        shown.error.starts_with("Too large for the browser: ") && shown.error.contains(&limit),
        "{}",
        shown.error
    );

    assert!(page.console.is_empty(), "console: {:#?}", page.console);
}

/// The console check can fail: a page that logs an error and throws is
/// caught.
#[test]
fn the_console_check_catches_a_page_error() {
    let Some(c) = chromium() else { return };
    let mut page = Page::open(&c, 800, 600);
    page.navigate("data:text/html,<script>console.error('boom');null.x</script>");
    std::thread::sleep(Duration::from_millis(300));
    page.eval("1");
    let all = page.console.join("\n");
    assert!(all.contains("boom") && all.contains("exception"), "{all}");
}
