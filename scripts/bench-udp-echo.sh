#!/usr/bin/env bash
# CoAP NON echo benchmark (issue #3): qossim's examples/udp_echo.rs against
# ns-3's UdpEcho over the same 250 kbit/s, 50 ms link with the same loss in
# each direction, measured in the same run (alternating repetitions).
#
# Usage: scripts/bench-udp-echo.sh [LOSS] [PACKETS] [RUNS]   (defaults 0.1 200000 5)
# Needs libns3-dev and g++ for the ns-3 side; without them only qossim runs.
set -euo pipefail
LOSS=${1:-0.1}
PACKETS=${2:-200000}
RUNS=${3:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${BENCH_OUT:-$ROOT/target/bench-ns3}
mkdir -p "$OUT"
echo "nproc=$(nproc) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
(cd "$ROOT" && cargo build --release --example udp_echo >&2)
NS3=""
if [ -f /usr/include/ns3/core-module.h ] && command -v g++ >/dev/null; then
    NS3="$OUT/udp_echo-ns3"
    g++ -O2 -std=c++17 -I/usr/include "$ROOT/benches/ns3/udp_echo.cc" -o "$NS3" \
        -lns3-core -lns3-network -lns3-internet -lns3-point-to-point -lns3-applications
    echo "ns3=$(dpkg-query -W -f='${Version}' libns3-dev 2>/dev/null || echo unknown)"
else
    echo "ns3=not installed: ns-3 figures skipped"
fi
for i in $(seq 1 "$RUNS"); do
    "${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/udp_echo" --loss "$LOSS" --packets "$PACKETS" |
        grep -E '^(round_trip_success|packets_per_s|transmissions)' | tr '\n' ' '
    echo
    if [ -n "$NS3" ]; then
        "$NS3" --loss "$LOSS" --packets "$PACKETS" | grep -E 'round_trip|packets_per_s' | tr '\n' ' '
        echo
    fi
done
