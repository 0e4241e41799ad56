//! Docs that run (issue 17 item 6): every `qossim …` command shown in
//! README.md, docs/tutorial.md and the `--help` texts runs, in document
//! order, in one temporary directory (so `merge` finds the shards the
//! commands before it wrote and `diagram` the trace). A documented command
//! that breaks fails this test, naming the document and the line.
//!
//! Rules: a command must exit 0, except `qossim test …` and `run --strict`,
//! which may exit 1 when the output shows the failed expectation (what
//! they are documented to do). Server commands (`qossim gateway`) are
//! started, probed once with one MQTT-SN datagram, stopped with SIGINT and
//! must then exit 0 having counted the probe; `qossim broker` likewise, on
//! a free port instead of the one it names, probed with one MQTT CONNECT;
//! `qossim coap-server` on port 0, probed with one CoAP GET.
//! Only `qossim` lines in code blocks count; the command ends at two
//! spaces (a comment or a description follows).

mod common;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The command part of a documentation line: up to two spaces.
fn command_of(line: &str) -> Option<String> {
    let t = line.trim_start();
    if t != "qossim" && !t.starts_with("qossim ") {
        return None;
    }
    // a run's output shown in a code block ("qossim 0.1.0: scenario …")
    if t.split_whitespace()
        .nth(1)
        .is_some_and(|w| w.starts_with(|c: char| c.is_ascii_digit()))
    {
        return None;
    }
    let end = t.find("  ").unwrap_or(t.len());
    Some(t[..end].trim_end().to_string())
}

/// `qossim …` lines of a Markdown file's code blocks (indented by four
/// spaces, or fenced): (where, command).
fn from_markdown(rel: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join(rel)).expect("doc");
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !(fenced || line.starts_with("    ")) {
            continue;
        }
        if let Some(c) = command_of(line) {
            out.push((format!("{rel}:{}", i + 1), c));
        }
    }
    out
}

/// `qossim …` example lines of `qossim [sub] --help`.
fn from_help() -> Vec<(String, String)> {
    let help = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_qossim"))
            .args(args)
            .output()
            .expect("help");
        assert!(o.status.success());
        String::from_utf8(o.stdout).expect("utf-8")
    };
    let top = help(&["--help"]);
    // the subcommands, from the "Commands:" list
    let subs: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|s| s != "help")
        .collect();
    assert!(subs.len() >= 8, "{subs:?}");
    let mut out = Vec::new();
    for (name, text) in std::iter::once(("qossim --help".to_string(), top.clone())).chain(
        subs.iter()
            .map(|s| (format!("qossim {s} --help"), help(&[s, "--help"]))),
    ) {
        for line in text.lines() {
            if let Some(c) = command_of(line) {
                out.push((name.clone(), c));
            }
        }
    }
    out
}

/// Start a server command, probe it once, stop it with SIGINT.
fn serve(dir: &Path, path_env: &str, cmd: &str, listen: &str) -> Result<(), String> {
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!("exec {cmd}"))
        .current_dir(dir)
        .env("PATH", path_env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    // ready when it answers on its UDP port: a SEARCHGW it counts
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_secs(10);
    if Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            let o = child.wait_with_output().map_err(|e| e.to_string())?;
            return Err(format!(
                "exited early ({st}): {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        let _ = sock.send_to(&[3, 0x01, 1], listen);
        std::thread::sleep(Duration::from_millis(300));
    }
    // SAFETY: plain kill(2) on our own child's pid
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let o = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if !o.status.success() {
        return Err(format!("exit {:?} after SIGINT: {text}", o.status.code()));
    }
    if !text.contains("1 datagrams in") {
        return Err(format!("the probe was not counted: {text}"));
    }
    Ok(())
}

/// Start a `qossim broker` command on a free port instead of the one it
/// names (tests never take fixed ports), probe it with one MQTT CONNECT,
/// stop it with SIGINT: it must exit 0 having counted the CONNECT.
fn serve_broker(dir: &Path, path_env: &str, cmd: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddrV4::new(common::peers::LOCALHOST, common::peers::free_port());
    let words: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
    let mut args: Vec<String> = Vec::new();
    let mut it = words.into_iter().skip(1).peekable();
    while let Some(w) = it.next() {
        if w == "--listen" {
            it.next();
            continue;
        }
        args.push(w);
    }
    args.extend(["--listen".to_string(), addr.to_string()]);
    let mut child = Command::new(dir.join("bin/qossim"))
        .args(&args)
        .current_dir(dir)
        .env("PATH", path_env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        if let Ok(Some(st)) = child.try_wait() {
            let o = child.wait_with_output().map_err(|e| e.to_string())?;
            return Err(format!(
                "exited early ({st}): {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        if let Ok(c) = std::net::TcpStream::connect(addr) {
            break c;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("not listening after 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // CONNECT, client id "docs", clean session; CONNACK 0 expected
    let connect = [
        0x10, 16, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 0, 0, 4, b'd', b'o', b'c', b's',
    ];
    let mut connack = [0u8; 4];
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let probe = conn
        .write_all(&connect)
        .and_then(|()| conn.read_exact(&mut connack));
    // SAFETY: plain kill(2) on our own child's pid
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let o = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    probe.map_err(|e| format!("CONNECT/CONNACK: {e}: {text}"))?;
    if connack != [0x20, 2, 0, 0] {
        return Err(format!("CONNACK {connack:?}: {text}"));
    }
    if !o.status.success() {
        return Err(format!("exit {:?} after SIGINT: {text}", o.status.code()));
    }
    if !text.contains("1 CONNECTs accepted") {
        return Err(format!("the probe was not counted: {text}"));
    }
    Ok(())
}

/// Start a `qossim coap-server` command on a free port (`--listen
/// 127.0.0.1:0` instead of the address it names; the bound one is read
/// from its banner), probe it with one CoAP GET of `/.well-known/core`,
/// stop it with SIGINT: it must exit 0 having counted the request.
fn serve_coap(dir: &Path, path_env: &str, cmd: &str) -> Result<(), String> {
    use std::io::BufRead;
    let mut args: Vec<String> = Vec::new();
    let mut it = cmd.split_whitespace().skip(1);
    while let Some(w) = it.next() {
        if w == "--listen" {
            it.next();
            continue;
        }
        args.push(w.to_string());
    }
    args.extend(["--listen".to_string(), "127.0.0.1:0".to_string()]);
    let mut child = Command::new(dir.join("bin/qossim"))
        .args(&args)
        .current_dir(dir)
        .env("PATH", path_env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut err = std::io::BufReader::new(child.stderr.take().ok_or("stderr")?);
    let mut banner = String::new();
    let _ = err.read_line(&mut banner);
    let addr = banner
        .strip_prefix("qossim coap-server: CoAP on udp ")
        .and_then(|r| r.split(';').next())
        .map(str::to_string);
    // CON GET /.well-known/core, MID 1, no token
    let get = [
        0x40, 1, 0, 1, 0xbb, b'.', b'w', b'e', b'l', b'l', b'-', b'k', b'n', b'o', b'w', b'n',
        0x04, b'c', b'o', b'r', b'e',
    ];
    let probe = addr
        .ok_or_else(|| format!("no banner: {banner:?}"))
        .and_then(|a| {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            s.send_to(&get, &a).map_err(|e| e.to_string())?;
            let mut buf = [0u8; 1500];
            let (n, _) = s.recv_from(&mut buf).map_err(|e| e.to_string())?;
            Ok(buf[..n.min(4)].to_vec())
        });
    // SAFETY: plain kill(2) on our own child's pid
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    let o = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = format!("{}{banner}{rest}", String::from_utf8_lossy(&o.stdout));
    let head = probe.map_err(|e| format!("GET /.well-known/core: {e}: {text}"))?;
    if head != [0x60, 0x45, 0, 1] {
        return Err(format!("answer {head:02x?} (want ACK 2.05 MID 1): {text}"));
    }
    if !o.status.success() {
        return Err(format!("exit {:?} after SIGINT: {text}", o.status.code()));
    }
    if !text.contains("requests: 1 served") {
        return Err(format!("the probe was not counted: {text}"));
    }
    Ok(())
}

#[test]
fn every_documented_command_runs() {
    let mut cmds = from_markdown("README.md");
    cmds.extend(from_markdown("docs/tutorial.md"));
    cmds.extend(from_help());
    // the same command twice (README and --help show some alike) runs once
    let mut seen = std::collections::BTreeSet::new();
    cmds.retain(|(_, c)| seen.insert(c.clone()));
    assert!(cmds.len() >= 30, "{cmds:?}");
    let dir = common::temp_dir("docs-commands");
    std::os::unix::fs::symlink(root().join("scenarios"), dir.join("scenarios")).expect("link");
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).expect("bin");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_qossim"), bin.join("qossim")).expect("link");
    let path_env = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failures = Vec::new();
    for (at, cmd) in &cmds {
        let t0 = Instant::now();
        if cmd.starts_with("qossim broker") {
            let r = serve_broker(&dir, &path_env, cmd);
            eprintln!("{at}: `{cmd}`: served and stopped: {r:?}");
            if let Err(e) = r {
                failures.push(format!("{at}: `{cmd}`: {e}"));
            }
            continue;
        }
        if cmd.starts_with("qossim coap-server") {
            let r = serve_coap(&dir, &path_env, cmd);
            eprintln!("{at}: `{cmd}`: served and stopped: {r:?}");
            if let Err(e) = r {
                failures.push(format!("{at}: `{cmd}`: {e}"));
            }
            continue;
        }
        if cmd.starts_with("qossim gateway") {
            let listen = cmd
                .split_whitespace()
                .skip_while(|w| *w != "--listen")
                .nth(1)
                .unwrap_or("127.0.0.1:1883")
                .to_string();
            let r = serve(&dir, &path_env, cmd, &listen);
            eprintln!("{at}: `{cmd}`: served and stopped: {r:?}");
            if let Err(e) = r {
                failures.push(format!("{at}: `{cmd}`: {e}"));
            }
            continue;
        }
        let o = Command::new("bash")
            .arg("-c")
            .arg(cmd)
            .current_dir(&dir)
            .env("PATH", &path_env)
            .output()
            .expect("bash");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let checks = cmd.starts_with("qossim test ") || cmd.contains("--strict");
        let ok =
            o.status.success() || (checks && o.status.code() == Some(1) && text.contains("FAIL"));
        eprintln!(
            "{at}: `{cmd}`: exit {:?} in {:.1} s",
            o.status.code(),
            t0.elapsed().as_secs_f64()
        );
        if !ok {
            let tail: String = text
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            failures.push(format!("{at}: `{cmd}`: exit {:?}\n{tail}", o.status.code()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // every subcommand with examples was exercised, servers included
    for sub in [
        "run",
        "check",
        "list",
        "new",
        "test",
        "sweep",
        "merge",
        "plot",
        "diagram",
        "gateway",
        "broker",
        "coap-server",
    ] {
        assert!(
            cmds.iter()
                .any(|(_, c)| c.starts_with(&format!("qossim {sub}"))),
            "no documented `qossim {sub}` command"
        );
    }
}

/// One "Shipped scenarios" list (issue 17 item 6): scenarios/README.md has
/// that heading once, and it names every scenario file at the top level,
/// in `bench/` and in `teaching/` (fidelity twins and regression checks are
/// named by their directories).
#[test]
fn one_shipped_scenarios_list_names_every_file() {
    let text = std::fs::read_to_string(root().join("scenarios/README.md")).expect("readme");
    assert_eq!(text.matches("\n## Shipped scenarios\n").count(), 1);
    let start = text.find("\n## Shipped scenarios\n").expect("heading");
    let section = &text[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut missing = Vec::new();
    for sub in ["", "bench/", "teaching/"] {
        let dir = root().join("scenarios").join(sub);
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        files.sort();
        for f in files {
            if !section.contains(&format!("`{sub}{f}`")) {
                missing.push(format!("{sub}{f}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in the Shipped scenarios list: {missing:?}"
    );
    for d in ["fidelity/", "regression/"] {
        assert!(section.contains(&format!("`{d}`")), "{d}");
    }
}

/// README and docs name nothing outside the repository (issue 17 item 6):
/// no `../` path out of the project (`../shared/…`, the tool library) and
/// no absolute path of a team machine; a relative link to a file must
/// resolve inside the repository.
#[test]
fn docs_name_nothing_outside_the_repository() {
    let mut docs = vec![
        root().join("README.md"),
        root().join("scenarios/README.md"),
        root().join("notebooks/README.md"),
    ];
    for e in std::fs::read_dir(root().join("docs"))
        .expect("docs")
        .flatten()
    {
        if e.path().extension().is_some_and(|x| x == "md") {
            docs.push(e.path());
        }
    }
    let mut bad = Vec::new();
    for d in &docs {
        let text = std::fs::read_to_string(d).expect("doc");
        for (i, line) in text.lines().enumerate() {
            for needle in ["../shared", "../.library", "/work/", "/home/"] {
                if line.contains(needle) {
                    bad.push(format!("{}:{}: {needle}", d.display(), i + 1));
                }
            }
            // Markdown links `](path)` to local files must exist
            for part in line.split("](").skip(1) {
                let target = part.split(')').next().unwrap_or("");
                let target = target.split('#').next().unwrap_or("");
                if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let p = d.parent().expect("dir").join(target);
                let inside = p
                    .canonicalize()
                    .map(|c| c.starts_with(root().canonicalize().expect("root")));
                if !matches!(inside, Ok(true)) {
                    bad.push(format!("{}:{}: link to {target}", d.display(), i + 1));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}
