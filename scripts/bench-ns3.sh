#!/usr/bin/env bash
# Hold-model benchmark: qossim's EventQueue vs std BinaryHeap vs ns-3's
# schedulers, measured in the same run (interleaved repetitions), with the
# min and median of each figure.
#
# Usage: scripts/bench-ns3.sh [PENDING] [EVENTS] [RUNS] [LIST_EVENTS]
#   defaults: 10000 10000000 5 100000
# Needs libns3-dev (Debian: apt-get install libns3-dev) and g++; without them
# only the Rust figures are measured.
set -euo pipefail

PENDING=${1:-10000}
EVENTS=${2:-10000000}
RUNS=${3:-5}
LIST_EVENTS=${4:-100000}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${BENCH_OUT:-$ROOT/target/bench-ns3}
mkdir -p "$OUT"
RAW="$OUT/raw-$PENDING.txt"
: >"$RAW"

echo "nproc=$(nproc)"
echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "pending=$PENDING events=$EVENTS runs=$RUNS list_events=$LIST_EVENTS"

(cd "$ROOT" && cargo build --release --example hold_model >&2)
RUST_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/hold_model"

NS3_BIN=""
if [ -f /usr/include/ns3/core-module.h ] && command -v g++ >/dev/null; then
    # Debian's ns3-core.pc has a malformed Cflags ("-I/usr;") and lists GSL
    # libraries that only libgsl-dev provides; the headers live in
    # /usr/include/ns3 and libns3-core.so carries its own dependencies.
    NS3_BIN="$OUT/hold-ns3"
    g++ -O2 -std=c++17 -I/usr/include "$ROOT/benches/ns3/hold.cc" -o "$NS3_BIN" -lns3-core
    echo "ns3=$(dpkg-query -W -f='${Version}' libns3-dev 2>/dev/null || echo unknown)"
else
    echo "ns3=not installed (libns3-dev missing): ns-3 figures skipped"
fi

# ns-3's ListScheduler fills its queue in O(pending²): above 20,000
# pending the prefill alone runs for minutes, so it is left out there
# (LIST=1 keeps it).
NS3_ONLY=("")
if [ -n "$NS3_BIN" ] && [ "$PENDING" -gt 20000 ] && [ "${LIST:-0}" != 1 ]; then
    NS3_ONLY=(MapScheduler HeapScheduler CalendarScheduler PriorityQueueScheduler)
    echo "ns3 ListScheduler skipped above 20,000 pending (LIST=1 runs it)"
fi

for i in $(seq 1 "$RUNS"); do
    "$RUST_BIN" --pending "$PENDING" --events "$EVENTS" --seed "$i" |
        grep -E '^(events_per_s|binaryheap_events_per_s|allocs_per_event)=' |
        sed 's/^events_per_s/qossim_events_per_s/; s/^allocs_per_event/qossim_allocs_per_event/' >>"$RAW"
    if [ -n "$NS3_BIN" ]; then
        for only in "${NS3_ONLY[@]}"; do
            "$NS3_BIN" --pending "$PENDING" --events "$EVENTS" --list-events "$LIST_EVENTS" \
                --seed "$i" ${only:+--only "$only"} | grep '_events_per_s=' >>"$RAW"
        done
    fi
done

# min / median / max per figure (allocations: max is the one that matters).
awk -F= '
    { v[$1] = v[$1] " " $2; n[$1]++ }
    END {
        for (k in v) {
            m = split(substr(v[k], 2), a, " ")
            for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
            med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
            fmt = (med + 0 >= 1000) ? "%s min=%s median=%.0f max=%s runs=%d\n" : "%s min=%s median=%g max=%s runs=%d\n"
            printf fmt, k, a[1], med, a[m], m
        }
    }' "$RAW" | sort
