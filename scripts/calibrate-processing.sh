#!/usr/bin/env bash
# Processing-time calibration for qossim's [processing.*] role defaults
# (docs/fidelity.md "Calibration"): measures on this machine, over loopback
# and over a veth pair between two network namespaces (no loss):
#   (a) mosquitto: PUBLISH in → PUBACK out and PUBLISH in → the copy's
#       PUBLISH out, at the broker's interface (QoS 1, 50 messages/s), and
#       publish call → subscriber receipt;
#       the clients' own path: publish call → PUBLISH on the wire (the
#       send timestamp is in the payload) and PUBLISH on the wire →
#       subscriber receipt (paho-mqtt in Python, the fidelity clients);
#   (b) coap-server-notls: CON GET /time in → 2.05 out at its interface;
#   (c) the host stack: ping RTT over the veth, and TCP SYN → SYN-ACK seen
#       at the client's interface (the peer kernel's receive + send, no
#       application).
# Each as median and p90 over ≥ SAMPLES samples, printed with the command
# that produced it. Root; installs nftables-free needs (mosquitto,
# libcoap3-bin, tshark, iproute2, iputils-ping, paho-mqtt) when missing.
# Usage: sudo scripts/calibrate-processing.sh [--veth-only] [--period S] [--json FILE]
#             [SAMPLES=250] [OUT=results/calibrate-processing]
#   --veth-only  skip the loopback measurements (what scripts/fidelity.sh
#                needs: the twins model the veth)
#   --period S   seconds between messages and GETs (default 0.02); the
#                fidelity cells send every 0.1 s, and a host is slower to
#                wake for a message every 100 ms than every 20 ms
#   --json FILE  also write the veth numbers as JSON (key → n, p50, p90 in
#                ms), which scripts/fidelity_twin_times.py turns into the
#                twins' [processing.*] times
set -euo pipefail
cd "$(dirname "$0")/.."
VETH_ONLY=0
PERIOD=0.02
JSON=
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --veth-only) VETH_ONLY=1 ;;
    --period) PERIOD=$2; shift ;;
    --json) JSON=$2; shift ;;
    -h|--help) sed -n 2,30p "$0"; exit 0 ;;
    -*) echo "calibrate-processing: unknown option $1" >&2; exit 2 ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done
SAMPLES=${ARGS[0]:-250}
OUT=${ARGS[1]:-results/calibrate-processing}
[ "$(id -u)" = 0 ] || { echo "calibrate-processing: needs root (network namespaces, capture)" >&2; exit 2; }
need=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v coap-client-notls >/dev/null || need+=(libcoap3-bin)
command -v tshark >/dev/null || need+=(tshark)
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -c 'import paho.mqtt' 2>/dev/null || python3 -m pip install -q paho-mqtt 2>/dev/null \
  || python3 -m pip install -q --break-system-packages paho-mqtt
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
rm -rf "$OUT"/veth "$OUT"/lo; mkdir -p "$OUT/veth" "$OUT/lo"

A=qcal-a-$$; B=qcal-b-$$; L=qcal-lo-$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for ns in "$A" "$B" "$L"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM
ip netns add "$A"; ip netns add "$B"; ip netns add "$L"
ip link add va netns "$A" type veth peer name vb netns "$B"
ip -n "$A" addr add 10.78.0.1/24 dev va
ip -n "$B" addr add 10.78.0.2/24 dev vb
for ns in "$A" "$B" "$L"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set va up; ip -n "$B" link set vb up
sleep 1

cap() {  # ns iface filter file
  ip netns exec "$1" tshark -q -i "$2" -f "$3" -w "$4" >/dev/null 2>&1 &
  CAP+=($!); PIDS+=($!)
  for _ in $(seq 50); do [ -s "$4" ] && break; sleep 0.1; done
}
stopcap() { sleep 0.5; for c in "${CAP[@]}"; do kill -INT "$c" 2>/dev/null || true; wait "$c" 2>/dev/null || true; done; CAP=(); }
CAP=()

mqtt_run() {  # dir broker_ns client_ns broker_ip broker_if client_if
  local d=$1 bns=$2 cns=$3 ip=$4 bif=$5 cif=$6
  printf 'listener 1883 %s\nallow_anonymous true\npersistence false\n' "$ip" > "$d/mosquitto.conf"
  ip netns exec "$bns" "$MOSQ" -c "$d/mosquitto.conf" >/dev/null 2>&1 &
  local m=$!; PIDS+=("$m"); sleep 0.5
  cap "$bns" "$bif" "tcp port 1883" "$d/broker.pcap"
  if [ "$cns" != "$bns" ]; then cap "$cns" "$cif" "tcp port 1883" "$d/client.pcap"; fi
  sleep 0.5
  local t0 dl
  t0=$(python3 -c 'import time; print(f"{time.time()+0.3:.3f}")')
  dl=$(python3 -c "print($t0 + 2 + $SAMPLES * $PERIOD + 20)")
  for role in sub pub; do
    ip netns exec "$cns" python3 scripts/fidelity_mqtt_client.py --role $role --broker "$ip" --qos 1 \
      --n "$SAMPLES" --period "$PERIOD" --t0 "$t0" --start 2 --deadline "$dl" --log "$d/$role.log" &
    PIDS+=($!); eval "${role}_pid=$!"
  done
  while [ ! -e "$d/sub.log.done" ] || [ ! -e "$d/pub.log.done" ]; do sleep 0.2; done
  stopcap
  kill "$sub_pid" "$pub_pid" "$m" 2>/dev/null || true
  wait "$sub_pid" "$pub_pid" "$m" 2>/dev/null || true
}

coap_run() {  # dir server_ns client_ns ip server_if
  local d=$1 sns=$2 cns=$3 ip=$4 sif=$5
  ip netns exec "$sns" coap-server-notls -A "$ip" -p 5683 >/dev/null 2>&1 &
  local s=$!; PIDS+=("$s"); sleep 0.5
  cap "$sns" "$sif" "udp port 5683" "$d/server.pcap"
  sleep 0.5
  ip netns exec "$cns" python3 scripts/fidelity_coap_driver.py --server "$ip" --n "$SAMPLES" \
    --period "$PERIOD" --t0 "$(python3 -c 'import time; print(time.time())')" --start 0.2 --wait 5 --log "$d/coap.log"
  stopcap
  kill "$s" 2>/dev/null || true; wait "$s" 2>/dev/null || true
}

syn_run() {  # dir server_ns client_ns ip client_if
  local d=$1 sns=$2 cns=$3 ip=$4 cif=$5
  ip netns exec "$sns" python3 -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$ip', 5999)); s.listen(1024)
while True:
    c, _ = s.accept(); c.close()
" &
  local s=$!; PIDS+=("$s"); sleep 0.5
  cap "$cns" "$cif" "tcp port 5999" "$d/syn.pcap"
  sleep 0.5
  ip netns exec "$cns" python3 -c "
import socket, time
for _ in range($SAMPLES):
    c = socket.create_connection(('$ip', 5999)); c.close(); time.sleep(0.01)
"
  stopcap
  kill "$s" 2>/dev/null || true; wait "$s" 2>/dev/null || true
}

echo "=== veth ($A ↔ $B), ping"
ip netns exec "$A" ping -n -c "$SAMPLES" -i 0.01 10.78.0.2 | awk -F'time=' '/time=/{split($2,a," "); print a[1]}' > "$OUT/veth/ping.ms"
echo "=== veth: TCP SYN → SYN-ACK"; syn_run "$OUT/veth" "$B" "$A" 10.78.0.2 va
echo "=== veth: mosquitto QoS 1"; mqtt_run "$OUT/veth" "$B" "$A" 10.78.0.2 vb va
echo "=== veth: coap-server-notls"; coap_run "$OUT/veth" "$B" "$A" 10.78.0.2 vb
WHERE="veth"
if [ "$VETH_ONLY" = 0 ]; then
  WHERE="veth lo"
  ip netns exec "$L" ping -n -c "$SAMPLES" -i 0.01 127.0.0.1 | awk -F'time=' '/time=/{split($2,a," "); print a[1]}' > "$OUT/lo/ping.ms"
  echo "=== loopback: TCP SYN → SYN-ACK"; syn_run "$OUT/lo" "$L" "$L" 127.0.0.1 lo
  echo "=== loopback: mosquitto QoS 1"; mqtt_run "$OUT/lo" "$L" "$L" 127.0.0.1 lo lo
  echo "=== loopback: coap-server-notls"; coap_run "$OUT/lo" "$L" "$L" 127.0.0.1 lo
fi

python3 - "$OUT" "$SAMPLES" "$PERIOD" "$WHERE" "$JSON" <<'PY'
import json, math, subprocess, sys, os
out, n, period, wheres, json_out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4].split(), sys.argv[5]

def q(v, p):
    v = sorted(v); return v[max(0, min(len(v) - 1, math.ceil(p / 100 * len(v)) - 1))] if v else float("nan")

def rows(pcap, fields):
    if not os.path.exists(pcap):
        return []
    o = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-E", "separator=\t"] + sum((["-e", f] for f in fields), []),
                       capture_output=True, text=True).stdout
    return [l.split("\t") for l in o.splitlines()]

res = []
def add(name, where, v, how, key):
    res.append((name, where, len(v), q(v, 50), q(v, 90), how, key))

for where in wheres:
    d = f"{out}/{where}"
    add("ping RTT (ms)", where, [float(x) for x in open(f"{d}/ping.ms") if x.strip()],
        f"ping -c {n} -i 0.01 (peer {'namespace' if where == 'veth' else '127.0.0.1'})", "ping")
    syn = {}; v = []
    for t, sp, dp, s, a in rows(f"{d}/syn.pcap", ["frame.time_epoch", "tcp.srcport", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack"]):
        if s in ("1", "True"):
            if a in ("1", "True"):
                if dp in syn: v.append((float(t) - syn.pop(dp)) * 1000)
            else:
                syn[sp] = float(t)
    add("TCP SYN → SYN-ACK at the client (ms)", where, v, "python connect()+close() every 10 ms, tshark on the client's interface", "syn")
    # broker side: PUBLISH in (from pub) → PUBACK out, → PUBLISH copy out (to sub)
    f = ["frame.time_epoch", "tcp.srcport", "tcp.dstport", "tcp.payload"]
    br = rows(f"{d}/broker.pcap", f)
    pin = {}; puback = []; fwd = []; copy_at = {}
    # the publisher's connection = the one whose PUBLISHes go to 1883
    for t, sp, dp, pl in br:
        if not pl: continue
        b = bytes.fromhex(pl); typ = b[0] >> 4
        if typ == 3:
            tl = int.from_bytes(b[2:4], "big"); body = b[2 + 2 + tl + 2:]  # QoS 1: packet id
            seq = int(body[:8])
            if dp == "1883": pin.setdefault(seq, float(t))
            else: copy_at.setdefault(seq, float(t))
        elif typ == 4 and sp == "1883":
            pid = int.from_bytes(b[2:4], "big")
            puback.append((pid, float(t)))
    # packet ids of the publisher: paho numbers from 1 in order
    v1 = [(t - pin[pid - 1]) * 1000 for pid, t in puback if (pid - 1) in pin and t >= pin[pid - 1]]
    v2 = [(copy_at[s] - pin[s]) * 1000 for s in pin if s in copy_at]
    add("mosquitto PUBLISH in → PUBACK out (ms)", where, v1, f"QoS 1, {n} × 32 B every {period * 1000:g} ms, tshark on the broker's interface", "broker_puback")
    add("mosquitto PUBLISH in → copy out (ms)", where, v2, "same capture: the subscriber's PUBLISH", "broker_copy")
    # clients: publish call → PUBLISH on the client's wire; wire → subscriber receipt
    cl = rows(f"{d}/client.pcap" if where == "veth" else f"{d}/broker.pcap", f)
    out_at = {}; in_at = {}
    for t, sp, dp, pl in cl:
        if not pl: continue
        b = bytes.fromhex(pl)
        if b[0] >> 4 != 3: continue
        tl = int.from_bytes(b[2:4], "big"); body = b[2 + 2 + tl + 2:]
        seq, ts = int(body[:8]), int(body[8:27])
        if dp == "1883": out_at.setdefault(seq, (float(t), ts))
        else: in_at.setdefault(seq, float(t))
    recv = {}
    for line in open(f"{d}/sub.log"):
        s, ts, tr = line.strip().split(","); recv.setdefault(int(s), (int(ts), int(tr)))
    add("paho publish() → PUBLISH on the wire (ms)", where, [(t - ts / 1e9) * 1000 for t, ts in out_at.values()],
        "payload send timestamp vs capture time (client side)", "paho_tx")
    add("PUBLISH on the wire → paho on_message (ms)", where, [(recv[s][1] / 1e9 - t) * 1000 for s, t in in_at.items() if s in recv],
        "capture time vs subscriber's receipt time", "paho_rx")
    add("publish() → subscriber receipt (ms)", where, [(tr - ts) / 1e6 for ts, tr in recv.values()], "end to end, payload timestamps", "paho_e2e")
    req = {}; v = []
    for t, sp, dp, pl in rows(f"{d}/server.pcap", ["frame.time_epoch", "udp.srcport", "udp.dstport", "udp.payload"]):
        if not pl: continue
        b = bytes.fromhex(pl); mid = int.from_bytes(b[2:4], "big")
        if dp == "5683": req.setdefault((sp, mid), float(t))
        elif (dp, mid) in req: v.append((float(t) - req.pop((dp, mid))) * 1000)
    add("coap-server-notls GET /time in → 2.05 out (ms)", where, v, f"{n} coap-client-notls CON GETs every {period * 1000:g} ms, tshark on the server's interface", "coap_server")

print(f"{'measurement':48} {'path':5} {'n':>5} {'median':>9} {'p90':>9}  how")
for name, where, k, p50, p90, how, _ in res:
    print(f"{name:48} {where:5} {k:5d} {p50:9.4f} {p90:9.4f}  {how}")
if json_out:
    doc = {"samples": n, "period_s": period,
           "measurements": {key: {"name": name, "n": k, "p50": None if k == 0 else p50, "p90": None if k == 0 else p90}
                            for name, where, k, p50, p90, how, key in res if where == "veth"}}
    tmp = json_out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, json_out)
PY
