//! `qossim broker` (the REAL binary on a free loopback port) driven by
//! paho-mqtt 2.x MQTTv5 clients: session expiry across reconnects, topic
//! aliases, Receive Maximum, shared subscriptions, will delay, and access
//! control from a scenario's `[protocols.mqtt] acl` (plus one
//! mosquitto_sub -V 311 refusal).
//!
//! Peers: python3 paho-mqtt 2.x and mosquitto_sub (Debian
//! `mosquitto-clients`); scripts/test.sh installs them. Without them a test
//! says why and returns, except under `CI=true`, where it fails.

mod common;

use common::peers::{paho_available, peer_binary};
use common::served::Served;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Imports and helpers every paho script below starts with.
const PRELUDE: &str = r#"
import sys, time, threading, paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
port = int(sys.argv[1])

def props(kind, **kv):
    p = Properties(kind)
    for k, v in kv.items():
        setattr(p, k, v)
    return p

def client(cid, clean_start=True, connect_props=None, **kw):
    """A started MQTTv5 client; returns (client, session_present)."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5, **kw)
    ev, res = threading.Event(), {}
    def on_connect(c, u, flags, rc, p):
        res["sp"], res["rc"] = flags.session_present, rc.value
        ev.set()
    c.on_connect = on_connect
    c.connect("127.0.0.1", port, clean_start=clean_start, properties=connect_props)
    c.loop_start()
    assert ev.wait(10), "no CONNACK for %s" % cid
    assert res["rc"] == 0, "CONNACK %s: 0x%02x" % (cid, res["rc"])
    return c, res["sp"]

def subscribe(c, flt, qos=1):
    """SUBSCRIBE one filter; returns its SUBACK reason code."""
    ev, res = threading.Event(), {}
    def on_subscribe(c, u, mid, rcs, p):
        res["rc"] = rcs[0].value
        ev.set()
    c.on_subscribe = on_subscribe
    c.subscribe(flt, qos=qos)
    assert ev.wait(10), "no SUBACK for %s" % flt
    return res["rc"]

def stop(c):
    c.disconnect()
    c.loop_stop()
"#;

/// Run `PRELUDE + body` with the broker's port; it must exit 0. Its stdout.
fn paho(b: &Served, body: &str) -> String {
    let script = format!("{PRELUDE}\n{body}");
    let out = Command::new("python3")
        .args(["-c", &script, &b.port()])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "paho script failed ({}):\n{}\nstdout:\n{}\nbroker log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
        b.log_text()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A session kept by SessionExpiryInterval=60 survives a reconnect with
/// clean_start=False (session present, the QoS 1 messages queued while
/// away delivered); one ended with SessionExpiryInterval=1 is gone 3 s
/// later.
#[test]
fn paho_v5_session_expiry_across_reconnect() {
    if !paho_available() {
        return;
    }
    let b = Served::start("v5-sess", &[]);
    let out = paho(
        &b,
        r#"
sei = lambda s: props(PacketTypes.CONNECT, SessionExpiryInterval=s)
a, sp = client("sess-a", clean_start=False, connect_props=sei(60))
print("first", sp)
print("suback", subscribe(a, "sess/#", 1))
stop(a)
p, _ = client("sess-pub")
for i in range(3):
    p.publish("sess/%d" % i, "m%d" % i, qos=1).wait_for_publish(10)
stop(p)
got, done = [], threading.Event()
def on_message(c, u, m):
    got.append((m.topic, m.payload.decode(), m.qos))
    if len(got) == 3:
        done.set()
a = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sess-a", protocol=mqtt.MQTTv5)
a.on_message = on_message
ev, res = threading.Event(), {}
a.on_connect = lambda c, u, f, rc, pr: (res.__setitem__("sp", f.session_present), ev.set())
a.connect("127.0.0.1", port, clean_start=False, properties=sei(60))
a.loop_start()
assert ev.wait(10), "no CONNACK on reconnect"
print("second", res["sp"])
done.wait(10)
time.sleep(0.5)
print("got", sorted(got))
stop(a)
# now end the session with a 1 s expiry and come back after 3 s
a, sp = client("sess-a", clean_start=False, connect_props=sei(1))
print("third", sp)
stop(a)
time.sleep(3)
a, sp = client("sess-a", clean_start=False, connect_props=sei(60))
print("after expiry", sp)
stop(a)
"#,
    );
    assert_eq!(
        out,
        "first False\nsuback 1\nsecond True\n\
         got [('sess/0', 'm0', 1), ('sess/1', 'm1', 1), ('sess/2', 'm2', 1)]\n\
         third True\nafter expiry False\n",
        "broker log:\n{}",
        b.log_text()
    );
}

/// A publisher's Topic Alias: the first PUBLISH carries the topic and
/// alias 1, the second an empty topic and alias 1; the subscriber gets both
/// on the full topic, and the broker's log shows the second as received.
#[test]
fn paho_v5_topic_alias_is_resolved_for_subscribers() {
    if !paho_available() {
        return;
    }
    let b = Served::start("v5-alias", &[]);
    let out = paho(
        &b,
        r#"
got, done = [], threading.Event()
def on_message(c, u, m):
    got.append((m.topic, m.payload.decode()))
    if len(got) == 2:
        done.set()
s, _ = client("alias-sub")
s.on_message = on_message
print("suback", subscribe(s, "alias/#", 1))
p, _ = client("alias-pub")
alias = props(PacketTypes.PUBLISH, TopicAlias=1)
p.publish("alias/long/topic/name", "one", qos=1, properties=alias).wait_for_publish(10)
p.publish("", "two", qos=1, properties=alias).wait_for_publish(10)
done.wait(10)
time.sleep(0.3)
for t, m in got:
    print(t, m)
stop(p); stop(s)
"#,
    );
    assert_eq!(
        out,
        "suback 1\nalias/long/topic/name one\nalias/long/topic/name two\n",
        "broker log:\n{}",
        b.log_text()
    );
    b.wait_log(&[
        " in PUBLISH ",
        "topic=\"alias/long/topic/name\" topic_alias=1 qos=1",
    ]);
    b.wait_log(&[" in PUBLISH ", "topic=\"\" topic_alias=1 qos=1"]);
}

/// Receive Maximum 1: with QoS 1 messages waiting, a subscriber that does
/// not acknowledge gets one at a time — the next only after its PUBACK.
#[test]
fn paho_v5_receive_maximum_limits_unacknowledged_deliveries() {
    if !paho_available() {
        return;
    }
    let b = Served::start("v5-recvmax", &[]);
    let out = paho(
        &b,
        r#"
got = []
s, _ = client("rm-sub", connect_props=props(PacketTypes.CONNECT, ReceiveMaximum=1), manual_ack=True)
s.on_message = lambda c, u, m: got.append(m)
print("suback", subscribe(s, "rm/#", 1))
p, _ = client("rm-pub")
for i in range(3):
    p.publish("rm/%d" % i, "m%d" % i, qos=1).wait_for_publish(10)
for step in range(3):
    time.sleep(1.5)
    print("window", step, [m.payload.decode() for m in got])
    if got:
        s.ack(got[-1].mid, got[-1].qos)
time.sleep(1.0)
print("end", [m.payload.decode() for m in got])
stop(p); stop(s)
"#,
    );
    assert_eq!(
        out,
        "suback 1\nwindow 0 ['m0']\nwindow 1 ['m0', 'm1']\n\
         window 2 ['m0', 'm1', 'm2']\nend ['m0', 'm1', 'm2']\n",
        "broker log:\n{}",
        b.log_text()
    );
}

/// `$share/g/jobs/#` with two members: 10 messages split 5 and 5 in
/// strict alternation, none lost, none duplicated.
#[test]
fn paho_v5_shared_subscription_round_robin() {
    if !paho_available() {
        return;
    }
    let b = Served::start("v5-share", &[]);
    let out = paho(
        &b,
        r#"
got = {"w1": [], "w2": []}
lock = threading.Lock()
def on_message_for(name):
    def f(c, u, m):
        with lock:
            got[name].append(int(m.payload.decode()))
    return f
w1, _ = client("w1")
w1.on_message = on_message_for("w1")
print("suback w1", subscribe(w1, "$share/g/jobs/#", 1))
w2, _ = client("w2")
w2.on_message = on_message_for("w2")
print("suback w2", subscribe(w2, "$share/g/jobs/#", 1))
p, _ = client("jobs-pub")
for i in range(10):
    p.publish("jobs/%d" % i, str(i), qos=1).wait_for_publish(10)
deadline = time.time() + 10
while time.time() < deadline and len(got["w1"]) + len(got["w2"]) < 10:
    time.sleep(0.05)
time.sleep(1.0)  # room for duplicates to show
print("w1", got["w1"])
print("w2", got["w2"])
stop(p); stop(w1); stop(w2)
"#,
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("suback w1 1"), "{out}");
    assert_eq!(lines.next(), Some("suback w2 1"), "{out}");
    let parse = |l: Option<&str>, name: &str| -> Vec<u32> {
        let l = l.unwrap_or_else(|| panic!("no {name} line in {out}"));
        let list = l
            .strip_prefix(&format!("{name} ["))
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or_else(|| panic!("bad line {l:?}"));
        list.split(", ")
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().expect("number"))
            .collect()
    };
    let w1 = parse(lines.next(), "w1");
    let w2 = parse(lines.next(), "w2");
    assert_eq!((w1.len(), w2.len()), (5, 5), "w1 {w1:?} w2 {w2:?}");
    let mut all: Vec<u32> = w1.iter().chain(&w2).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..10).collect::<Vec<_>>(), "lost or duplicated");
    // strict round robin: each member gets every other message, in order
    let evens = vec![0, 2, 4, 6, 8];
    let odds = vec![1, 3, 5, 7, 9];
    assert!(
        (w1 == evens && w2 == odds) || (w1 == odds && w2 == evens),
        "not strict alternation: w1 {w1:?} w2 {w2:?}"
    );
}

/// A will with WillDelayInterval=2 (session expiry 10 s): its client is
/// killed without DISCONNECT; a watcher gets the will 2 s later, not
/// before.
#[test]
fn paho_v5_will_delay_interval() {
    if !paho_available() {
        return;
    }
    let b = Served::start("v5-will", &[]);
    let out = paho(
        &b,
        r#"
import subprocess, signal
child = r'''
import sys, time, threading, paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="will-c", protocol=mqtt.MQTTv5)
wp = Properties(PacketTypes.WILLMESSAGE); wp.WillDelayInterval = 2
c.will_set("will/t", "gone", qos=1, properties=wp)
cp = Properties(PacketTypes.CONNECT); cp.SessionExpiryInterval = 10
ev = threading.Event()
c.on_connect = lambda *a: ev.set()
c.connect("127.0.0.1", int(sys.argv[1]), properties=cp)
c.loop_start()
assert ev.wait(10)
print("connected", flush=True)
time.sleep(60)
'''
got = []
w, _ = client("will-watcher")
w.on_message = lambda c, u, m: got.append((time.monotonic(), m.topic, m.payload.decode()))
print("suback", subscribe(w, "will/#", 1))
proc = subprocess.Popen([sys.executable, "-c", child, str(port)], stdout=subprocess.PIPE, text=True)
assert proc.stdout.readline().strip() == "connected"
t0 = time.monotonic()
proc.send_signal(signal.SIGKILL)
proc.wait()
time.sleep(1.5)
print("at 1.5 s", len(got))
deadline = t0 + 8
while time.monotonic() < deadline and not got:
    time.sleep(0.02)
assert got, "no will within 8 s"
t, topic, msg = got[0]
print("will", topic, msg, len(got))
print("delay %.3f" % (t - t0))
stop(w)
"#,
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("suback 1"), "{out}");
    assert_eq!(lines.next(), Some("at 1.5 s 0"), "will came early: {out}");
    assert_eq!(lines.next(), Some("will will/t gone 1"), "{out}");
    let delay: f64 = lines
        .next()
        .and_then(|l| l.strip_prefix("delay "))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no delay line: {out}"));
    assert!(
        (2.0..5.0).contains(&delay),
        "will after {delay} s (expected 2 s after the kill)"
    );
}

/// quickstart.toml with an access control list appended, in a temp dir.
fn acl_scenario() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = std::fs::read_to_string(root.join("scenarios/quickstart.toml")).expect("quickstart");
    assert!(
        !base.contains("[protocols.mqtt]"),
        "quickstart grew an mqtt table"
    );
    let file = common::temp_dir("v5-acl").join("acl.toml");
    std::fs::write(
        &file,
        format!(
            "{base}\n[protocols.mqtt]\nacl = [ {{ clients = \"dash\", subscribe = [\"sensors/#\"] }}, \
             {{ clients = \"sensor-*\", publish = [\"sensors/%c/#\"] }} ]\n"
        ),
    )
    .expect("write scenario");
    file
}

/// `--scenario` with an acl: a 5.0 SUBSCRIBE to `#` by "dash" gets 0x87,
/// `sensors/#` is granted; "sensor-1" publishing to another sensor's topic
/// gets PUBACK 0x87 and nothing is forwarded, to its own topic it is.
#[test]
fn paho_v5_acl_from_scenario() {
    if !paho_available() {
        return;
    }
    let scenario = acl_scenario();
    let b = Served::start(
        "v5-acl",
        &["--scenario", scenario.to_str().expect("utf-8 path")],
    );
    let out = paho(
        &b,
        r##"
got = []
d, _ = client("dash")
d.on_message = lambda c, u, m: got.append((m.topic, m.payload.decode()))
print("dash # 0x%02x" % subscribe(d, "#", 1))
print("dash sensors/# 0x%02x" % subscribe(d, "sensors/#", 1))
s, _ = client("sensor-1")
acks = {}
ev = threading.Event()
def on_publish(c, u, mid, rc, p):
    acks[mid] = rc.value
    ev.set()
s.on_publish = on_publish
for topic in ("sensors/sensor-2/t", "sensors/sensor-1/t"):
    ev.clear()
    info = s.publish(topic, "v", qos=1)
    assert ev.wait(10), "no PUBACK for " + topic
    print("puback %s 0x%02x" % (topic, acks[info.mid]))
time.sleep(1.0)
print("dash got", got)
stop(s); stop(d)
"##,
    );
    assert_eq!(
        out,
        "dash # 0x87\ndash sensors/# 0x01\n\
         puback sensors/sensor-2/t 0x87\npuback sensors/sensor-1/t 0x00\n\
         dash got [('sensors/sensor-1/t', 'v')]\n",
        "broker log:\n{}",
        b.log_text()
    );
}

/// The same acl for a 3.1.1 client: mosquitto_sub -V 311 as "dash" on `#`
/// gets SUBACK 0x80; mosquitto_sub says "All subscription requests were
/// denied." and quits at once.
#[test]
fn mosquitto_sub_v311_acl_refusal_from_scenario() {
    let Some(subs) = peer_binary("mosquitto_sub", "install Debian package mosquitto-clients")
    else {
        return;
    };
    let scenario = acl_scenario();
    let b = Served::start(
        "v311-acl",
        &["--scenario", scenario.to_str().expect("utf-8 path")],
    );
    let start = Instant::now();
    let out = Command::new(subs)
        .args(["-V", "311", "-h", "127.0.0.1", "-p", &b.port()])
        .args(["-i", "dash", "-t", "#", "-q", "1", "-W", "5"])
        .output()
        .expect("mosquitto_sub");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let took = start.elapsed();
    b.wait_log(&[" out SUBACK ", "0x80"]);
    // mosquitto_sub 2.x prints this on stderr, disconnects and exits 0 at
    // once (not after -W 5, which would exit 27)
    assert!(
        out.status.success() && took < Duration::from_secs(4),
        "mosquitto_sub ended with {} after {took:?}: {text}",
        out.status
    );
    assert!(
        text.contains("All subscription requests were denied"),
        "mosquitto_sub ({}): {text}\nbroker log:\n{}",
        out.status,
        b.log_text()
    );
}
