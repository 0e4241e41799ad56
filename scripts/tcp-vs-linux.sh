#!/usr/bin/env bash
# Retransmission timing of the simulated `linux-like` TCP against this
# machine's Linux kernel (docs/tcp.md, "Compared with Linux").
#
# Linux side: two network namespaces joined by a veth pair; loss injected
# with nftables on both namespaces' input hooks (`numgen random mod 100 < N
# drop` on TCP port 5001; netem is not available here); a Python client
# writes 100 bytes every 50 ms to a Python server for DURATION seconds while
# tshark captures the client's side of the veth.
# Simulated side: the same workload (`protocol = "tcp"`, 100-byte messages
# every 50 ms, Bernoulli loss N % both ways, a 10 Gbit/s link with 25 µs
# one-way delay) run by qossim with --pcap.
# Both captures go through the same extraction: for every client data
# segment (and the SYN), the gaps between successive transmissions of the
# same sequence number, labelled by retransmission number k = 1, 2, …; the
# script prints count, p10, median and p90 of the gap per k for both, and
# writes every gap to OUT/gaps.csv (source, k, gap_ms).
#
# Usage: sudo scripts/tcp-vs-linux.sh [LOSS_PERCENT=10] [DURATION_S=60] [OUT=results/tcp-vs-linux]
# Needs: root (network namespaces), ip, nft, tshark, python3, cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
LOSS=${1:-10}
DURATION=${2:-60}
OUT=${3:-results/tcp-vs-linux}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

for c in ip nft tshark python3 cargo; do
  command -v "$c" >/dev/null || { echo "tcp-vs-linux: $c is required" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "tcp-vs-linux: needs root for network namespaces" >&2; exit 2; }

A=qossim-tcp-a
B=qossim-tcp-b
cleanup() {
  [ -n "${CAP:-}" ] && kill "$CAP" 2>/dev/null || true
  [ -n "${SRV:-}" ] && kill "$SRV" 2>/dev/null || true
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

echo "=== Linux $(uname -r): veth, ${LOSS}% loss each way, ${DURATION} s"
ip netns add "$A"
ip netns add "$B"
ip link add va netns "$A" type veth peer name vb netns "$B"
ip -n "$A" addr add 10.77.0.1/24 dev va
ip -n "$B" addr add 10.77.0.2/24 dev vb
ip -n "$A" link set va up
ip -n "$B" link set vb up
ip -n "$A" link set lo up
ip -n "$B" link set lo up
for ns in "$A" "$B"; do
  ip netns exec "$ns" nft -f - <<EOF
table inet qossim_loss {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 5001 numgen random mod 100 < $LOSS drop
    tcp sport 5001 numgen random mod 100 < $LOSS drop
  }
}
EOF
done

ip netns exec "$B" python3 -c '
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.77.0.2", 5001)); s.listen(1)
c, _ = s.accept()
while c.recv(65536):
    pass
' &
SRV=$!
ip netns exec "$A" tshark -q -i va -f "tcp port 5001" -w "$OUT/linux.pcap" 2>/dev/null &
CAP=$!
sleep 2
ip netns exec "$A" python3 -c "
import socket, time
s = socket.create_connection(('10.77.0.2', 5001), timeout=120)
end = time.time() + $DURATION
while time.time() < end:
    s.sendall(b'x' * 100)
    time.sleep(0.05)
time.sleep(20)   # let the last retransmissions finish
s.close()
"
sleep 1
kill "$CAP" 2>/dev/null || true
wait "$CAP" 2>/dev/null || true
CAP=

echo "=== qossim linux-like: the same workload"
cat > "$OUT/scenario.toml" <<EOF
# Written by scripts/tcp-vs-linux.sh: the simulated twin of the veth test.
name = "tcp-vs-linux"
seed = 1
duration = "${DURATION} s"
drain = "30 s"

[[nodes]]
name = "client"
role = "client"

[[nodes]]
name = "server"
role = "server"

[[links]]
name = "veth"
a = "client"
b = "server"
rate = "10 Gbit/s"
delay = "25 us"
loss = { model = "bernoulli", p = $(python3 -c "print($LOSS/100)") }

[[flows]]
name = "writes"
pattern = "point_to_point"
protocol = "tcp"
publishers = ["client"]
receivers = ["server"]
topic = "x"
payload_bytes = 100
interval = "50 ms"

[protocols.tcp]
profile = "linux-like"
EOF
cargo run --release --quiet -- run "$OUT/scenario.toml" --out "$OUT/sim" --pcap >/dev/null

python3 - "$OUT" <<'PY'
import subprocess, sys, collections, csv
out = sys.argv[1]

def gaps(pcap, client):
    f = subprocess.run(
        ["tshark", "-r", pcap, "-T", "fields", "-E", "separator=,",
         "-e", "frame.time_relative", "-e", "ip.src", "-e", "tcp.seq_raw",
         "-e", "tcp.len", "-e", "tcp.flags.syn"],
        capture_output=True, text=True, check=True).stdout
    seen = collections.defaultdict(list)
    for line in f.splitlines():
        t, src, seq, ln, syn = line.split(",")
        if src != client or (int(ln) == 0 and syn not in ("1", "True")):
            continue
        seen[int(seq)].append(float(t))
    res = []
    for times in seen.values():
        for k in range(1, len(times)):
            res.append((k, (times[k] - times[k - 1]) * 1000))
    return res

linux = gaps(f"{out}/linux.pcap", "10.77.0.1")
sim = gaps(f"{out}/sim/pcap/veth.pcap", "10.0.0.1")
with open(f"{out}/gaps.csv", "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["source", "k", "gap_ms"])
    for src, rows in (("linux", linux), ("qossim", sim)):
        for k, g in rows:
            w.writerow([src, k, f"{g:.3f}"])

def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(p * len(v) + 0.5)) - 1))]

print(f"{'k':>2} | {'linux n':>7} {'p10':>8} {'median':>8} {'p90':>8} | {'qossim n':>8} {'p10':>8} {'median':>8} {'p90':>8}   (gap to previous transmission, ms)")
for k in range(1, 8):
    a = [g for kk, g in linux if kk == k]
    b = [g for kk, g in sim if kk == k]
    if not a and not b:
        continue
    fa = f"{len(a):>7} {q(a,.1):8.1f} {q(a,.5):8.1f} {q(a,.9):8.1f}" if a else f"{0:>7} {'':>8} {'':>8} {'':>8}"
    fb = f"{len(b):>8} {q(b,.1):8.1f} {q(b,.5):8.1f} {q(b,.9):8.1f}" if b else f"{0:>8}"
    print(f"{k:>2} | {fa} | {fb}")
print(f"every gap: {out}/gaps.csv")
PY
