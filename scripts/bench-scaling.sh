#!/usr/bin/env bash
# Scaling curve (issue 22 item 6): the MQTT fan-in benchmark
# (scenarios/bench/mqtt-fanin-10k.toml) at each client count, one run each,
# under /usr/bin/time for wall time and peak RSS; events from the run's
# manifest.json. Writes target/bench-scaling/scaling.csv
# (clients,wall_s,peak_rss_kb,rss_per_client_kb,events,events_per_s,cpu_s;
# cpu_s is user + system time, steadier than wall time on a shared machine),
# the log-log chart docs/img/scaling.png, and the block between
# <!-- scaling:begin --> and <!-- scaling:end --> in BENCHMARKS.md.
#
# Usage: scripts/bench-scaling.sh [SIZES...]   (default 1000 10000 100000 1000000)
# DURATION (default 3min) is the simulated publishing window of every size
# (the scenario's own 10 min makes the 10^6 point impractical).
# QOSSIM=path measures that qossim binary instead of building this checkout's
# (the chart program is still built here). The block names the git hash the
# runs' manifest.json report. Sizes run in the order given, one at a time;
# run it on an otherwise idle machine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TGT=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$ROOT/target/bench-scaling
DURATION=${DURATION:-3min}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000 10000 100000 1000000)
for n in "${SIZES[@]}"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench-scaling: size '$n' is not a whole number > 0" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "bench-scaling: /usr/bin/time (GNU time) is needed for peak RSS" >&2; exit 2; }
if [ -n "${QOSSIM:-}" ]; then
    (cd "$ROOT" && cargo build --release --example scaling_chart >&2)
else
    (cd "$ROOT" && cargo build --release --bin qossim --example scaling_chart >&2)
    QOSSIM=$TGT/release/qossim
fi
mkdir -p "$OUT"
LOAD=$(uptime | sed 's/.*load average: //')
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
CSV=$OUT/scaling.csv
echo "clients,wall_s,peak_rss_kb,rss_per_client_kb,events,events_per_s,cpu_s" >"$CSV"
for n in "${SIZES[@]}"; do
    run=$OUT/run-$n
    rm -rf "$run"
    /usr/bin/time -f '%e %M %U %S' -o "$OUT/time-$n.txt" \
        "$QOSSIM" run "$ROOT/scenarios/bench/mqtt-fanin-10k.toml" \
        --set "groups.dev-{i}.count=$n" --set "duration=$DURATION" \
        --out "$run" >"$OUT/stdout-$n.txt" 2>"$OUT/stderr-$n.txt" ||
        { echo "bench-scaling: run at $n clients failed (see $OUT/stderr-$n.txt)" >&2; exit 1; }
    read -r wall rss user sys <"$OUT/time-$n.txt"
    events=$(sed -n 's/^ *"events": *\([0-9]*\),*$/\1/p' "$run/manifest.json")
    [ -n "$events" ] || { echo "bench-scaling: no event count in $run/manifest.json" >&2; exit 1; }
    HASH=$(sed -n 's/^ *"git_hash": *"\([^"]*\)",*$/\1/p' "$run/manifest.json")
    awk -v n="$n" -v w="$wall" -v r="$rss" -v e="$events" -v u="$user" -v s="$sys" \
        'BEGIN { printf "%d,%.2f,%d,%.3f,%d,%.0f,%.2f\n", n, w, r, r / n, e, e / (w > 0 ? w : 1), u + s }' >>"$CSV"
    tail -n 1 "$CSV"
done
"$TGT/release/examples/scaling_chart" --csv "$CSV" \
    --png "$ROOT/docs/img/scaling.png" --image docs/img/scaling.png \
    --markdown "$ROOT/BENCHMARKS.md" \
    --command "DURATION=$DURATION scripts/bench-scaling.sh ${SIZES[*]}" \
    --date "$DATE" --load "$LOAD" --version "qossim ${HASH:-unknown}"
echo "wrote $CSV, docs/img/scaling.png and the scaling block of BENCHMARKS.md"
