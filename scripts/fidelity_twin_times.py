#!/usr/bin/env python3
"""The fidelity twins' processing times, from a calibration of this host.

Usage: scripts/fidelity_twin_times.py CALIBRATION.json mqtt|coap
       scripts/fidelity_twin_times.py CALIBRATION.json --describe

CALIBRATION.json is what `scripts/calibrate-processing.sh --veth-only
--json FILE` writes (veth measurements: n, p50 and p90 in ms). Prints one
`--set` assignment per line (`processing.client.stack_tx=uniform(…)`) for
the twins of one protocol (scenarios/fidelity/), derived as in
docs/fidelity.md "Calibration":

- the kernel's time per packet and side, k = (TCP SYN → SYN-ACK at the
  client) / 2: one receive and one send in the peer kernel;
- mosquitto: stack k each way, `service` = (PUBLISH in → copy out) − 2k;
- coap-server-notls: stack k each way, `service` = (GET in → 2.05 out) − 2k;
- paho-mqtt clients: `stack_tx` = publish() → PUBLISH on the wire,
  `stack_rx` = PUBLISH on the wire → on_message (library + kernel);
- coap-client-notls (C): stack k each way.

Each time becomes a uniform distribution with the measured median m and
p90 p: [m − d, m + d] with d = (p − m) / 0.8 (the lower end clamped at 0);
a constant m when p = m.

Why: the twins' shipped times were measured on one machine, and host
speed is most of the latency at 0 % loss — the CI machine measured MQTT
QoS 0's real p50 at 1.07–1.25 ms (QoS 0 and 1) where the calibration machine measured
0.46–0.54 ms. Calibrating on the host that runs the real cells makes the
p50 bound check how the model composes the per-stage times into an
end-to-end latency, not how fast the machine is.

With --describe prints one line for docs/fidelity.md saying which times
were used. Exits 2 with a message when a measurement is missing.
"""
import json
import sys


def fail(msg):
    print(f"fidelity_twin_times: {msg}", file=sys.stderr)
    sys.exit(2)


def stat(cal, key):
    m = cal["measurements"].get(key)
    if not m or not m.get("n") or m.get("p50") is None or m.get("p90") is None:
        fail(f"the calibration has no samples for `{key}` "
             f"({(m or {}).get('name', 'not measured')}); see its capture")
    return float(m["p50"]), float(m["p90"])


def minus(a, b):
    """(median, p90) of a stage minus a constant kernel share."""
    return max(0.0, a[0] - b[0]), max(0.0, a[1] - b[0])


def bounds_ns(mp):
    """(low, median, high) in ns of the uniform with median m and p90 p
    (ms); low == high == median when p = m."""
    m, p = mp
    mn, pn = round(m * 1e6), round(p * 1e6)
    d = max(0, round((pn - mn) / 0.8))
    return max(0, mn - d), mn, mn + d


def dist(mp):
    """The distribution as a scenario value: `uniform(6438 ns, 13590 ns)`."""
    lo, m, hi = bounds_ns(mp)
    return f"{m} ns" if lo == hi else f"uniform({lo} ns, {hi} ns)"


def us(mp):
    """The same distribution for a reader: `uniform(6.4–13.6 µs)`."""
    lo, m, hi = bounds_ns(mp)
    return f"{m / 1000:.1f} µs" if lo == hi else f"uniform({lo / 1000:.1f}–{hi / 1000:.1f} µs)"


def times(cal, kind):
    syn = stat(cal, "syn")
    k = (syn[0] / 2, syn[1] / 2)
    if kind == "mqtt":
        return [
            ("processing.broker.stack_tx", k),
            ("processing.broker.stack_rx", k),
            ("processing.broker.service", minus(stat(cal, "broker_copy"), (2 * k[0],))),
            ("processing.client.stack_tx", stat(cal, "paho_tx")),
            ("processing.client.stack_rx", stat(cal, "paho_rx")),
        ]
    if kind == "coap":
        return [
            ("processing.server.stack_tx", k),
            ("processing.server.stack_rx", k),
            ("processing.server.service", minus(stat(cal, "coap_server"), (2 * k[0],))),
            ("processing.client.stack_tx", k),
            ("processing.client.stack_rx", k),
        ]
    fail(f"unknown twin kind `{kind}` (expected mqtt or coap)")


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        with open(argv[0]) as f:
            cal = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"cannot read {argv[0]}: {e}")
    if argv[1] == "--describe":
        parts = []
        for kind in ("mqtt", "coap"):
            parts += [f"`{name}` {us(mp)}" for name, mp in times(cal, kind)
                      if not (kind == "coap" and name.startswith("processing.client"))
                      and not (kind == "coap" and name.startswith("processing.server.stack"))]
        n, period = cal.get("samples"), cal.get("period_s")
        print(f"Twins' processing times calibrated on this host before the cells "
              f"(`scripts/calibrate-processing.sh --veth-only`, {n} samples every "
              f"{float(period) * 1000:g} ms; kernel = SYN → SYN-ACK / 2 also for the CoAP "
              f"server's and client's stacks): " + ", ".join(parts) + ".")
        return 0
    for name, mp in times(cal, argv[1]):
        print(f"{name}={dist(mp)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
