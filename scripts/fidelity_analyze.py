#!/usr/bin/env python3
"""Analysis of scripts/fidelity.sh: the same tshark extraction of the real
capture and of qossim's pcaps, per cell (protocol/QoS × loss); prints the
tables and writes them into docs/fidelity.md between the markers
`<!-- fidelity:begin -->` and `<!-- fidelity:end -->` (the rest of the file
is kept). Python standard library + tshark only.

Per run:
  delivered     MQTT: distinct messages at the subscriber (real: its log;
                simulated: messages.csv) / N. CoAP: GET exchanges (client
                port, token) with a response seen at the client side / GET
                exchanges started (pcap, both sides).
  latency       MQTT: publish call → first receipt at the subscriber (real:
                timestamps in the payload; simulated: messages.csv
                latency_ms). CoAP: first transmission of the GET → first
                response frame (pcap). Nearest-rank p50/p90/p99, ms.
  retx          TCP: frames tshark flags tcp.analysis.retransmission,
                fast_retransmission or spurious_retransmission. CoAP: frames
                repeating an earlier (sender port, message ID) of the same
                type.
  first-RTO gap median over retransmitted segments (TCP: same stream,
                sender and sequence number, SYNs included; CoAP: same port
                and MID) of first transmission → first retransmission, ms.
  packet types  TCP segments with payload are named after the MQTT packet
                their first payload byte starts (as qossim's packets.csv);
                otherwise tcp_syn, tcp_synack, tcp_fin, tcp_rst, tcp_ack.
                CoAP: type and code (con_GET, ack_2.05, non_2.05, ack_empty,
                rst). Frames and IP bytes (ip.len) per type; MQTT frames are
                counted up to 1 s after the last PUBLISH-family frame (the
                simulated run goes on idle for its drain, with keep-alives).
  loss          real: nft counters (dropped / seen on each ingress);
                simulated: links.csv drops_channel / packets per direction.
"""
import argparse, bisect, csv, multiprocessing, collections, datetime, glob, json, math, os, platform, re, statistics, subprocess, sys

MQTT_NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
              7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
              12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT"}
PUB_FAMILY = {"PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP"}
COAP_T = {0: "con", 1: "non", 2: "ack", 3: "rst"}
FIELDS = ["frame.time_epoch", "ip.len", "ip.src", "ip.dst", "tcp.stream", "tcp.srcport", "tcp.dstport", "tcp.seq_raw",
          "tcp.len", "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.fin", "tcp.flags.reset",
          "tcp.analysis.retransmission", "tcp.analysis.fast_retransmission",
          "tcp.analysis.spurious_retransmission", "tcp.payload", "udp.srcport", "udp.dstport",
          "udp.payload"]


def q(v, p):
    """nearest-rank percentile (docs/metrics.md)"""
    if not v:
        return None
    v = sorted(v)
    return v[max(0, min(len(v) - 1, math.ceil(p / 100 * len(v)) - 1))]


def flag(x):
    return x not in ("", "0", "False")


def tshark_rows(pcap):
    out = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-E", "separator=\t",
                          "-o", "tcp.relative_sequence_numbers:FALSE"]
                         + sum((["-e", f] for f in FIELDS), []),
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        r = dict(zip(FIELDS, line.split("\t")))
        if r.get("ip.len"):
            yield r


def mqtt_kinds(rows):
    """Row index → the MQTT packet type its first payload byte belongs to,
    from each direction's byte stream rebuilt from every transmission (so a
    segment that starts inside a message, e.g. a retransmission that
    coalesced several, is named after that message, as in qossim's
    packets.csv)."""
    dirs = collections.defaultdict(lambda: {"isn": None, "segs": []})
    for j, r in enumerate(rows):
        if not r["tcp.srcport"]:
            continue
        d = dirs[(r["ip.src"], r["tcp.srcport"], r["ip.dst"], r["tcp.dstport"])]
        if flag(r["tcp.flags.syn"]) and d["isn"] is None:
            d["isn"] = int(r["tcp.seq_raw"])
        elif r["tcp.payload"]:
            d["segs"].append((j, int(r["tcp.seq_raw"]), bytes.fromhex(r["tcp.payload"])))
    out = {}
    for d in dirs.values():
        if not d["segs"]:
            continue
        base = (d["isn"] + 1) if d["isn"] is not None else min(x[1] for x in d["segs"])
        buf = {}
        for _, seq, pl in d["segs"]:
            off = (seq - base) % 2**32
            for k, b in enumerate(pl):
                buf.setdefault(off + k, b)
        starts = []; pos = 0
        while pos in buf:
            typ = buf[pos] >> 4; rl = 0; mul = 1; k = pos + 1
            while k in buf and k - pos <= 4:
                rl += (buf[k] & 127) * mul; mul *= 128; k += 1
                if not buf[k - 1] & 128:
                    break
            else:
                break
            starts.append((pos, typ)); pos = k + rl
        offs = [x[0] for x in starts]
        for j, seq, pl in d["segs"]:
            i = bisect.bisect_right(offs, (seq - base) % 2**32) - 1
            if i >= 0:
                out[j] = MQTT_NAMES.get(starts[i][1], "tcp_data")
    return out


def extract(pcaps, server_ports):
    """Frames of one run (all its pcaps) → per-run packet statistics."""
    frames = []
    for i, pcap in enumerate(pcaps):
        rows = list(tshark_rows(pcap))
        # B's address: where the SYNs / the CoAP requests go
        b_ip = None
        for r in rows:
            if r["tcp.srcport"] and flag(r["tcp.flags.syn"]) and not flag(r["tcp.flags.ack"]):
                b_ip = r["ip.dst"]; break
            if r["udp.srcport"] and r["udp.payload"] and 0 < int(r["udp.payload"][2:4], 16) < 32:
                b_ip = r["ip.dst"]; break
        kinds = mqtt_kinds(rows)
        for j, r in enumerate(rows):
            t = float(r["frame.time_epoch"]); ln = int(r["ip.len"].split(",")[0])
            if r["tcp.srcport"]:
                to_b = r["ip.dst"] == b_ip if b_ip else int(r["tcp.dstport"]) in server_ports
                pl = r["tcp.payload"]
                if flag(r["tcp.flags.syn"]):
                    kind = "tcp_synack" if flag(r["tcp.flags.ack"]) else "tcp_syn"
                elif flag(r["tcp.flags.reset"]):
                    kind = "tcp_rst"
                elif pl:
                    kind = kinds.get(j) or MQTT_NAMES.get(int(pl[:2], 16) >> 4, "tcp_data")
                elif flag(r["tcp.flags.fin"]):
                    kind = "tcp_fin"
                else:
                    kind = "tcp_ack"
                retx = any(flag(r[f]) for f in ("tcp.analysis.retransmission",
                                                "tcp.analysis.fast_retransmission",
                                                "tcp.analysis.spurious_retransmission"))
                carries = bool(pl) or flag(r["tcp.flags.syn"]) or flag(r["tcp.flags.fin"])
                key = (i, r["tcp.stream"], r["tcp.srcport"], r["tcp.seq_raw"]) if carries else None
                frames.append(dict(t=t, len=ln, kind=kind, to_b=to_b, retx=retx, key=key))
            elif r["udp.srcport"]:
                to_b = r["ip.dst"] == b_ip if b_ip else int(r["udp.dstport"]) in server_ports
                b = bytes.fromhex(r["udp.payload"])
                typ = COAP_T[(b[0] >> 4) & 3]; code = b[1]; tkl = b[0] & 15
                mid = int.from_bytes(b[2:4], "big"); tok = b[4:4 + tkl].hex()
                if code == 0:
                    kind = f"coap_{typ}_empty" if typ != "rst" else "coap_rst"
                elif code < 32:
                    kind = f"coap_{typ}_" + {1: "GET", 2: "POST", 3: "PUT", 4: "DELETE"}.get(code, str(code))
                else:
                    kind = f"coap_{typ}_{code >> 5}.{code & 31:02d}"
                port = r["udp.srcport"] if to_b else r["udp.dstport"]
                frames.append(dict(t=t, len=ln, kind=kind, to_b=to_b, typ=typ, mid=(i, r["ip.src"], r["udp.srcport"], mid), mid16=mid,
                                   exch=(i, port, tok), code=code, key=None, retx=False))
    frames.sort(key=lambda f: f["t"])
    return frames


def run_stats(frames, protocol):
    st = {}
    # retransmissions and first-retransmission gaps
    first = {}; gaps = []; retx = 0
    if protocol == "coap":
        # a NON is never retransmitted (RFC 7252 §4.3): only CON repeats
        # count (independent real clients may reuse a port and draw the
        # same message ID)
        seen = {}
        for f in frames:
            k = f["mid"]
            if f["typ"] != "con":
                continue
            if k in seen and f["t"] - seen[k][0] < 247:   # EXCHANGE_LIFETIME
                retx += 1
                if seen[k][1] is None:
                    seen[k][1] = f["t"]; gaps.append((f["t"] - seen[k][0]) * 1000)
            else:
                seen[k] = [f["t"], None]
        # exchanges: (client port, token) of GETs, a new one when a request
        # with another message ID reuses the key; answered if a response
        # reached the client's side
        ex = {}; cur = {}
        for f in frames:
            if f["to_b"] and f["code"] and f["code"] < 32:
                c = cur.get(f["exch"])
                if c is None or c[1] != f["mid16"]:
                    c = cur[f["exch"]] = (f["exch"] + (len(ex),), f["mid16"])
                    ex[c[0]] = [f["t"], None]
            elif not f["to_b"] and f["code"] >= 64 and f["exch"] in cur:
                e = ex[cur[f["exch"]][0]]
                if e[1] is None:
                    e[1] = f["t"]
        st["exchanges"] = len(ex)
        st["answered"] = sum(1 for v in ex.values() if v[1] is not None)
        st["lat"] = [(v[1] - v[0]) * 1000 for v in ex.values() if v[1] is not None]
        window = frames
    else:
        for f in frames:
            if f["retx"]:
                retx += 1
            if f["key"] is not None:
                if f["key"] not in first:
                    first[f["key"]] = [f["t"], None]
                elif first[f["key"]][1] is None:
                    first[f["key"]][1] = f["t"]; gaps.append((f["t"] - first[f["key"]][0]) * 1000)
        last = max((f["t"] for f in frames if f["kind"] in PUB_FAMILY), default=None)
        window = [f for f in frames if last is None or f["t"] <= last + 1.0]
    st["retx"] = retx
    st["gap"] = statistics.median(gaps) if gaps else None
    types = collections.defaultdict(lambda: [0, 0, collections.Counter()])
    for f in window:
        e = types[f["kind"]]; e[0] += 1; e[1] += f["len"]; e[2][f["len"]] += 1
    st["types"] = {k: (v[0], v[1], v[2].most_common(1)[0][0]) for k, v in types.items()}
    st["frames_window"] = len(window)
    return st


def stall(recv_times, t_first, t_end, complete):
    ts = sorted(recv_times)
    pts = [t_first] + ts
    g = max((b - a for a, b in zip(pts, pts[1:])), default=0.0)
    return g if complete else max(g, t_end - (ts[-1] if ts else t_first))


def real_mqtt(d, n, period, start, drain):
    meta = open(f"{d}/meta").read().split()
    t0 = float(meta[0]); sb, db, sa, da = (int(x or 0) for x in meta[1:5])
    recv = {}
    for line in open(f"{d}/sub.log"):
        p = line.strip().split(",")
        if len(p) == 3:
            s, ts, tr = int(p[0]), int(p[1]), int(p[2])
            if s not in recv:
                recv[s] = (ts, tr)
    st = run_stats(extract([f"{d}/real.pcap"], {1883}), "mqtt")
    st["delivered"] = len(recv); st["intended"] = n
    st["lat"] = [(tr - ts) / 1e6 for ts, tr in recv.values()]
    t_first = t0 + start; t_end = t_first + (n - 1) * period + drain
    st["stall"] = stall([tr / 1e9 for _, tr in recv.values()], t_first, t_end, len(recv) >= n)
    st["loss_ab"] = db / sb if sb else None; st["loss_ba"] = da / sa if sa else None
    return st


def real_coap(d):
    meta = open(f"{d}/meta").read().split()
    sb, db, sa, da = (int(x or 0) for x in meta[1:5])
    st = run_stats(extract([f"{d}/real.pcap"], {5683}), "coap")
    st["delivered"] = st["answered"]; st["intended"] = st["exchanges"]
    st["loss_ab"] = db / sb if sb else None; st["loss_ba"] = da / sa if sa else None
    return st


def sim_loss(d):
    toward = [0, 0]; back = [0, 0]
    for r in csv.DictReader(open(f"{d}/links.csv")):
        if r["from"] in ("*",):
            continue
        acc = toward if r["to"] in ("broker", "server") else back
        acc[0] += int(r["packets"]); acc[1] += int(r["drops_channel"])
    return (toward[1] / toward[0] if toward[0] else None, back[1] / back[0] if back[0] else None)


def sim_run(d, protocol, start, period, n, drain):
    pcaps = sorted(glob.glob(f"{d}/pcap/*.pcap"))
    if protocol == "coap":
        st = run_stats(extract(pcaps, {5683}), "coap")
        st["delivered"] = st["answered"]; st["intended"] = st["exchanges"]
    else:
        st = run_stats(extract(pcaps, {1883}), "mqtt")
        lat = []; rt = []; intended = 0
        for r in csv.DictReader(open(f"{d}/messages.csv")):
            intended += 1
            if r["latency_ms"]:
                lat.append(float(r["latency_ms"])); rt.append(float(r["delivered_at_ms"]) / 1000)
        st["delivered"] = len(lat); st["intended"] = intended; st["lat"] = lat
        st["stall"] = stall(rt, start, start + (n - 1) * period + drain, len(lat) >= intended)
    st["loss_ab"], st["loss_ba"] = sim_loss(d)
    return st


def fmt(x, nd=1):
    if x is None:
        return "–"
    if isinstance(x, int):
        return str(x)
    return f"{x:.{nd}f}"


def rng(v, nd=1):
    v = [x for x in v if x is not None]
    if not v:
        return "–"
    return f"{fmt(statistics.median(v), nd)} [{fmt(min(v), nd)}–{fmt(max(v), nd)}]"


def pct(x):
    return "–" if x is None else f"{100 * x:.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True); ap.add_argument("--mode", required=True)
    ap.add_argument("--n", type=int, required=True); ap.add_argument("--period", type=float, required=True)
    ap.add_argument("--start", type=float, required=True); ap.add_argument("--seeds", type=int, required=True)
    ap.add_argument("--losses", required=True); ap.add_argument("--cc", default="cubic")
    ap.add_argument("--doc", default="docs/fidelity.md"); ap.add_argument("--command", default="")
    ap.add_argument("--drain", type=float, default=60.0)
    ap.add_argument("--calibration", default="",
                    help="this host's calibration (scripts/calibrate-processing.sh --json); absent: shipped times")
    a = ap.parse_args()
    losses = [int(x) for x in a.losses.split()]
    cells = ["mqtt-qos0", "mqtt-qos1", "mqtt-qos2", "coap-con", "coap-non"]
    results = {}
    for l in losses:
        for c in cells:
            proto = c.split("-")[0]
            rd = f"{a.out}/real/{c}-loss{l}"
            if not os.path.exists(f"{rd}/meta"):
                continue
            real = real_mqtt(rd, a.n, a.period, a.start, a.drain) if proto == "mqtt" else real_coap(rd)
            dirs = [sd for sd in sorted(glob.glob(f"{a.out}/sim/{c}-loss{l}/seed*"))
                    if os.path.exists(f"{sd}/links.csv")]
            with multiprocessing.Pool(max(1, min(4, os.cpu_count() or 1))) as pool:
                sims = pool.starmap(sim_run, [(sd, proto, a.start, a.period, a.n, a.drain) for sd in dirs])
            results[(c, l)] = (real, sims)
            print(f"analysed {c} at {l} %: {len(sims)} seeds", file=sys.stderr)

    lines = []
    P = lines.append
    vers = versions()
    P(f"Run {datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')} on Linux {platform.release()}, "
      f"TCP congestion control `{a.cc}` in both namespaces; {vers}.")
    P(f"Command: `{a.command}` ({a.mode}: {a.n} messages every {int(a.period * 1000)} ms from {a.start:g} s, "
      f"loss {', '.join(map(str, losses))} % each way, {a.seeds} simulated seeds per cell, one real run per cell).")
    P("")
    if a.calibration and os.path.exists(a.calibration):
        here = os.path.dirname(os.path.abspath(__file__))
        P(subprocess.run([sys.executable, os.path.join(here, "fidelity_twin_times.py"), a.calibration, "--describe"],
                         capture_output=True, text=True, check=True).stdout.strip())
    else:
        P("Twins' processing times: the shipped ones (scenarios/fidelity/, \"Calibration\"); no calibration of this host.")
    P("")
    P("Simulated columns: median [min–max] over the seeds. Latency in ms; `retx` = retransmitted frames; "
      "`gap` = median first transmission → first retransmission of a segment (ms); loss achieved = "
      "A→B / B→A in %.")
    P("")
    P("| cell | loss real (target) | delivered real | delivered sim | p50 real | p50 sim | p90 real | p90 sim | p99 real | p99 sim | retx real | retx sim | gap real | gap sim | bounds |")
    P("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    checks_all = []
    for (c, l), (real, sims) in results.items():
        sp = lambda k, p: [q(s["lat"], p) for s in sims]
        checks = []
        # IP bytes per packet type exact (modal size of each type seen on both sides)
        rt = real["types"]; simtypes = collections.defaultdict(list)
        for s in sims:
            for k, v in s["types"].items():
                simtypes[k].append(v)
        bad = []
        for k, v in rt.items():
            if k in simtypes:
                mode_sim = collections.Counter(x[2] for x in simtypes[k]).most_common(1)[0][0]
                if mode_sim != v[2]:
                    bad.append(f"{k} {v[2]}≠{mode_sim}")
        checks.append(("bytes", not bad, "; ".join(bad)))
        if l == 0 and c.startswith("mqtt"):
            badf = []
            for k in set(rt) | set(simtypes):
                if k.startswith("tcp_") or k in ("PINGREQ", "PINGRESP"):
                    continue
                r = rt.get(k, (0,))[0]; s = statistics.median([x[0] for x in simtypes.get(k, [])] or [0])
                if abs(s - r) > 0.1 * r or (r == 0 and s > 0):
                    badf.append(f"{k} {r}/{s:g}")
            checks.append(("frames", not badf, "; ".join(badf)))
        if l == 0:
            rp = q(real["lat"], 50); spm = statistics.median([x for x in sp("lat", 50) if x is not None] or [0])
            ok = rp is not None and (abs(spm - rp) <= 0.5 or (spm > 0 and 0.5 <= spm / rp <= 2))
            checks.append(("p50", ok, f"{fmt(rp, 3)} vs {fmt(spm, 3)}"))
        if l == 10:
            v = [x for x in sp("lat", 90) if x is not None]
            rp = q(real["lat"], 90)
            ok = bool(v) and rp is not None and q(v, 2.5) <= rp <= q(v, 97.5)
            checks.append(("p90", ok, f"{fmt(rp)} in [{fmt(q(v, 2.5))}, {fmt(q(v, 97.5))}]" if v else "",
                           {"real": rp, "lo": q(v, 2.5), "hi": q(v, 97.5)} if v and rp is not None else {}))
        if c == "coap-con":
            v = [s["retx"] for s in sims]
            ok = q(v, 2.5) <= real["retx"] <= q(v, 97.5)
            checks.append(("con-retx", ok, f"{real['retx']} in [{q(v, 2.5)}, {q(v, 97.5)}]"))
        checks_all.append(((c, l), checks))
        verdict = ", ".join(f"{n} {'OK' if ok else 'MISS'}" for n, ok, *_ in checks)
        dsim = [s["delivered"] / s["intended"] for s in sims if s["intended"]]
        P(f"| {c} {l} % | {pct(real['loss_ab'])}/{pct(real['loss_ba'])} | "
          f"{fmt(100 * real['delivered'] / real['intended'] if real['intended'] else None)} % ({real['delivered']}/{real['intended']}) | {rng([100 * x for x in dsim])} % | "
          f"{fmt(q(real['lat'], 50), 2)} | {rng(sp('lat', 50), 2)} | {fmt(q(real['lat'], 90), 2)} | {rng(sp('lat', 90), 2)} | "
          f"{fmt(q(real['lat'], 99), 1)} | {rng(sp('lat', 99), 1)} | {real['retx']} | {rng([s['retx'] for s in sims], 0)} | "
          f"{fmt(real['gap'], 0)} | {rng([s['gap'] for s in sims], 0)} | {verdict} |")
    P("")
    P("Simulated loss achieved (median over seeds, A→B / B→A %): " + "; ".join(
        f"{c} {l} %: {fmt(statistics.median([100 * s['loss_ab'] for s in sims if s['loss_ab'] is not None] or [0]))}/"
        f"{fmt(statistics.median([100 * s['loss_ba'] for s in sims if s['loss_ba'] is not None] or [0]))}"
        for (c, l), (_, sims) in results.items() if l > 0) + ".")
    P("")
    P("Why a bound missed:")
    P("")
    for (c, l), checks in checks_all:
        miss = [f"{n}: {why}" for n, ok, why, *_ in checks if not ok]
        if miss:
            P(f"- {c} {l} %: " + " | ".join(miss))
    P("")
    P("Frames and IP bytes per packet type (real | simulated median over seeds); "
      "`size` = the most common IP length of the type:")
    P("")
    P("| cell | type | frames real | frames sim | IP bytes real | IP bytes sim | size real | size sim |")
    P("|---|---|---|---|---|---|---|---|")
    for (c, l), (real, sims) in results.items():
        kinds = sorted(set(real["types"]) | {k for s in sims for k in s["types"]})
        for k in kinds:
            r = real["types"].get(k)
            sv = [s["types"][k] for s in sims if k in s["types"]]
            fs = statistics.median([s["types"].get(k, (0, 0, 0))[0] for s in sims]) if sims else None
            bs = statistics.median([s["types"].get(k, (0, 0, 0))[1] for s in sims]) if sims else None
            ms = collections.Counter(x[2] for x in sv).most_common(1)[0][0] if sv else None
            P(f"| {c} {l} % | {k} | {r[0] if r else 0} | {fmt(fs, 0) if fs is not None else '–'} | "
              f"{r[1] if r else 0} | {fmt(bs, 0) if bs is not None else '–'} | {r[2] if r else '–'} | {ms if ms else '–'} |")
    # stall repetitions
    reps = sorted(glob.glob(f"{a.out}/real/stall/rep*"))
    if reps:
        st = [real_mqtt(d, a.n, a.period, a.start, a.drain)["stall"] for d in reps if os.path.exists(f"{d}/meta")]
        sims = results.get(("mqtt-qos0", 20), (None, []))[1]
        ss = [s["stall"] for s in sims]
        P("")
        P(f"MQTT QoS 0 at 20 %, stall (longest gap between successive deliveries at the subscriber, "
          f"or from the last delivery to the end for an undelivered tail): real {sum(x > 20 for x in st)}/{len(st)} "
          f"repetitions > 20 s (stalls s: {', '.join(f'{x:.1f}' for x in sorted(st))}); simulated "
          f"{sum(x > 20 for x in ss)}/{len(ss)} seeds > 20 s (median {fmt(statistics.median(ss) if ss else None)} s, "
          f"max {fmt(max(ss) if ss else None)} s).")
    text = "\n".join(lines)
    print(text)
    # the loss the real run achieved per direction rides along, so a miss in
    # CI's log says whether that run's loss draw was unusual
    json.dump({f"{c}:{l}": {"checks": [list(x) for x in ch],
                            "loss_real": [results[(c, l)][0]["loss_ab"], results[(c, l)][0]["loss_ba"]]}
               for (c, l), ch in checks_all},
              open(f"{a.out}/checks.json", "w"), indent=1)
    if a.doc and a.doc != "-":
        begin, end = f"<!-- fidelity:{a.mode}:begin -->", f"<!-- fidelity:{a.mode}:end -->"
        doc = open(a.doc).read() if os.path.exists(a.doc) else ""
        block = f"{begin}\n{text}\n{end}"
        if begin in doc and end in doc:
            doc = doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]
        else:
            doc += f"\n{block}\n"
        open(a.doc, "w").write(doc)


def versions():
    out = []
    try:
        m = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
        out.append("mosquitto " + re.search(r"version (\S+)", m).group(1))
    except Exception:
        pass
    try:
        c = subprocess.run(["coap-client-notls", "-h"], capture_output=True, text=True)
        out.append("libcoap " + re.search(r"v(\d[\d.]*)", c.stdout + c.stderr).group(1))
    except Exception:
        pass
    try:
        import paho.mqtt
        out.append("paho-mqtt " + paho.mqtt.__version__)
    except Exception:
        pass
    try:
        t = subprocess.run(["tshark", "--version"], capture_output=True, text=True).stdout
        out.append("tshark " + re.search(r"Wireshark\) (\S+)", t).group(1))
    except Exception:
        pass
    return ", ".join(out)


if __name__ == "__main__":
    main()
