//! `qossim new <pattern> <protocol> [--radio]`: a commented scenario
//! skeleton that loads and runs as it is, for a user to edit. Every field
//! it writes is one scenarios/README.md documents; the comments say what
//! each part does and what to change.

use super::CliError;

/// The patterns `new` knows (the flow `pattern` values).
pub const PATTERNS: [&str; 3] = ["point_to_point", "broadcast", "fan_in"];
/// The protocols `new` knows (the flow `protocol` values).
pub const PROTOCOLS: [&str; 6] = ["mqtt", "mqttsn", "coap", "udp", "tcp", "http"];

fn choose<'a>(what: &str, want: &str, known: &[&'a str]) -> Result<&'a str, CliError> {
    known.iter().copied().find(|k| *k == want).ok_or_else(|| {
        CliError::BadArgument(format!(
            "unknown {what} `{want}`, expected one of: {}{}",
            known.join(", "),
            crate::scenario::error::did_you_mean(want, known.iter().copied())
        ))
    })
}

/// `comment`, then a node and its link to the router.
fn wired_node(comment: &str, name: &str, role: &str, rate: &str, delay: &str) -> String {
    format!(
        "{comment}\n[[nodes]]\nname = \"{name}\"\nrole = \"{role}\"\n\n\
         [[links]]\na = \"router\"\nb = \"{name}\"\nrate = \"{rate}\"\ndelay = \"{delay}\"\n"
    )
}

/// `text` as `# ` comment lines of at most 76 characters.
fn comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.chars().count() + 1 + word.chars().count() > 76 && line != "#" {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out
}

/// The scenario text for `pattern` × `protocol`, with sensors on their own
/// wired links or (`radio`) on one shared 802.15.4 medium.
pub fn new_scenario(pattern: &str, protocol: &str, radio: bool) -> Result<String, CliError> {
    let pattern = choose("pattern", pattern, &PATTERNS)?;
    let protocol = choose("protocol", protocol, &PROTOCOLS)?;
    let (reliability, how) = match protocol {
        "mqtt" => ("qos1", "MQTT QoS 1 over TCP through the broker"),
        "mqttsn" => (
            "qos1",
            "MQTT-SN QoS 1 over UDP to a gateway, which relays to the MQTT broker",
        ),
        "coap" => (
            "con",
            "CoAP confirmable PUTs (retransmitted until acknowledged)",
        ),
        "udp" => ("best_effort", "plain UDP datagrams (nothing retransmitted)"),
        "tcp" => ("confirmed", "a TCP stream per sensor"),
        _ => ("confirmed", "HTTP/1.1 POSTs over TCP"),
    };
    let (sensors, receivers, shape) = match pattern {
        "point_to_point" => (2, 2, "Two sensors, each to its own display"),
        "broadcast" => (1, 3, "One sensor to three displays"),
        _ => (5, 1, "Five sensors to one collector"),
    };
    let mut s = String::new();
    let push = |s: &mut String, t: &str| {
        s.push_str(t);
        s.push('\n');
    };
    let question = format!(
        "Question: {shape}, over {}, with {how}: what is delivered, how late, and at what cost in bytes?",
        if radio {
            "a shared 802.15.4 radio channel"
        } else {
            "lossy 250 kbit/s links"
        },
    );
    push(&mut s, &comment(&question));
    push(
        &mut s,
        &format!(
            "#\n\
             # A skeleton made by `qossim new {pattern} {protocol}{}`: it runs as it is\n\
             # (`qossim run <this file>`); edit the parts below. Every field is in\n\
             # scenarios/README.md; every output column in docs/metrics.md.",
            if radio { " --radio" } else { "" },
        ),
    );
    push(
        &mut s,
        &format!(
            "name = \"{}-{}{}\"\n\
             seed = 1              # same seed, same results (byte for byte)\n\
             duration = \"5 min\"    # sensors publish in [0, duration)\n\
             warmup = \"10 s\"       # messages sent before this are not counted\n\
             drain = \"100 s\"       # the run goes on this long so late retransmissions count\n",
            pattern.replace('_', "-"),
            protocol,
            if radio { "-radio" } else { "" }
        ),
    );
    push(
        &mut s,
        &format!(
            "# The router forwards IP packets between links (the only role that does).\n\
             [[nodes]]\n\
             name = \"router\"\n\
             role = \"router\"{}",
            // with a radio, the router is the border router at the area's centre
            if radio {
                "\nposition = [15.0, 15.0]   # metres: the radio area's centre\n"
            } else {
                "\n"
            }
        ),
    );
    if matches!(protocol, "mqtt" | "mqttsn") {
        push(
            &mut s,
            &wired_node(
                "# The MQTT broker of every MQTT flow ([protocols.mqtt] tunes it).",
                "broker",
                "broker",
                "100 Mbit/s",
                "1 ms",
            ),
        );
    }
    if protocol == "mqttsn" {
        push(
            &mut s,
            &wired_node(
                "# The MQTT-SN gateway: clients talk MQTT-SN to it over UDP, it\n\
                 # relays to the broker over MQTT\n\
                 # ([protocols.mqttsn] chooses transparent or aggregating).",
                "gateway",
                "gateway",
                "100 Mbit/s",
                "1 ms",
            ),
        );
    }
    let (rx_group, rx_names) = if receivers == 1 {
        ("collector", "[\"collector\"]".to_string())
    } else {
        ("display-{i}", "[\"display-*\"]".to_string())
    };
    if receivers == 1 {
        push(
            &mut s,
            &wired_node(
                "# The receiver, on a fast wired link to the router.",
                rx_group,
                "server",
                "10 Mbit/s",
                "2 ms",
            ),
        );
    } else {
        push(
            &mut s,
            &format!(
                "# The receivers, on fast wired links to the router.\n\
                 [[groups]]\n\
                 name = \"{rx_group}\"\n\
                 count = {receivers}\n\
                 role = \"client\"\n\
                 link = {{ to = \"router\", rate = \"10 Mbit/s\", delay = \"2 ms\" }}\n"
            ),
        );
    }
    if radio {
        push(
            &mut s,
            &format!(
                "# The sensors, placed at random in a 20 m × 20 m square around the\n\
                 # router; they reach it over the radio medium below (no links).\n\
                 [[groups]]\n\
                 name = \"sensor-{{i}}\"\n\
                 count = {sensors}\n\
                 role = \"client\"\n\
                 placement = {{ kind = \"random\", origin = [5.0, 5.0], area = [20.0, 20.0] }}\n\n\
                 # One shared 802.15.4 channel (250 kbit/s, CSMA-CA, link-layer ACKs and\n\
                 # retries; docs/channels.md): try fading = \"rayleigh\", or more sensors.\n\
                 [[media]]\n\
                 name = \"wpan\"\n\
                 preset = \"ieee802154\"\n\
                 members = [\"router\", \"sensor-*\"]\n"
            ),
        );
    } else {
        push(
            &mut s,
            &format!(
                "# The sensors, each on its own 250 kbit/s link to the router that\n\
                 # loses 5 % of packets independently (try model = \"gilbert_elliott\"\n\
                 # for bursts, or --set \"groups.sensor-{{i}}.link.loss.p=0.2\").\n\
                 [[groups]]\n\
                 name = \"sensor-{{i}}\"\n\
                 count = {sensors}\n\
                 role = \"client\"\n\
                 link = {{ to = \"router\", rate = \"250 kbit/s\", delay = \"5 ms\", loss = {{ model = \"bernoulli\", p = 0.05 }} }}\n"
            ),
        );
    }
    let publishers = if pattern == "broadcast" {
        "[\"sensor-1\"]"
    } else {
        "[\"sensor-*\"]"
    };
    let topic = match pattern {
        "broadcast" => "lab/alarm",
        _ => "lab/{name}/temperature",
    };
    push(
        &mut s,
        &format!(
            "# What is sent: one 32-byte reading per sensor every 10 s (up to 1 s\n\
             # late at random, so sensors are not in step). Change protocol and reliability\n\
             # to compare (scenarios/README.md \"[[flows]]\" lists what each allows).\n\
             [[flows]]\n\
             name = \"readings\"\n\
             pattern = \"{pattern}\"\n\
             protocol = \"{protocol}\"\n\
             reliability = \"{reliability}\"\n\
             publishers = {publishers}\n\
             receivers = {rx_names}\n\
             topic = \"{topic}\"\n\
             payload_bytes = 32\n\
             interval = \"10 s\"\n\
             jitter = \"1 s\"\n\
             value = {{ kind = \"temperature\", mean = 21.0, sd = 0.5 }}"
        ),
    );
    if protocol == "mqttsn" {
        push(
            &mut s,
            "\n# The gateway is behind the router, out of reach of the clients'\n\
             # SEARCHGW broadcasts: clients are configured with its address\n\
             # (discovery = \"advertise\" needs it on the clients' own link or medium).\n\
             [protocols.mqttsn]\n\
             discovery = \"static\"",
        );
    }
    Ok(s)
}

/// Write a new scenario to `path`, refusing to replace an existing file.
pub fn write_new(path: &std::path::Path, text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                CliError::BadArgument(format!(
                    "{} exists; `qossim new` does not replace a file (choose another --out)",
                    path.display()
                ))
            } else {
                CliError::BadArgument(format!("cannot create {}: {e}", path.display()))
            }
        })?;
    f.write_all(text.as_bytes())
        .map_err(|e| CliError::BadArgument(format!("cannot write {}: {e}", path.display())))?;
    println!(
        "wrote {} — check it with `qossim check {0}`",
        path.display()
    );
    Ok(())
}
