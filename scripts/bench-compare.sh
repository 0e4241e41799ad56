#!/usr/bin/env bash
# Compare two builds of qossim side by side, interleaved (A, B, A, B, …), on
# the benchmarks of BENCHMARKS.md: the hold model, udp_echo, the 10,000-client
# MQTT fan-in and the 1,000-node wireless scenario. Prints, per benchmark and
# build, the median and range of wall time (s) and peak RSS (MB), and the
# throughput the examples report.
#
#   scripts/bench-compare.sh A_DIR B_DIR [RUNS]
#
# Each DIR is a checkout whose release build exists (target/release/qossim,
# target/release/examples/{hold_model,udp_echo}); build one with
#   git worktree add /tmp/a <commit> && (cd /tmp/a && cargo build --release \
#     --bin qossim --example hold_model --example udp_echo)
# The scenarios are taken from B_DIR for both builds.
set -euo pipefail
A=$(cd "$1" && pwd)
B=$(cd "$2" && pwd)
RUNS=${3:-5}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "nproc=$(nproc) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "A=$A ($(git -C "$A" rev-parse --short HEAD))  B=$B ($(git -C "$B" rev-parse --short HEAD))"

# run LABEL BUILD CMD...: appends "wall rss_kb extra" to $TMP/LABEL.BUILD
run() {
  local label=$1 build=$2; shift 2
  local out; out=$( { /usr/bin/time -f "TIME %e %M" "$@" > "$TMP/stdout" ; } 2>&1 | grep '^TIME' )
  local extra; extra=$(grep -E '^(events_per_s|packets_per_s)=' "$TMP/stdout" | head -1 | cut -d= -f2 || true)
  echo "${out#TIME } ${extra:-}" >> "$TMP/$label.$build"
}

bench() {
  local label=$1; shift
  for i in $(seq 1 "$RUNS"); do
    for build in A B; do
      local dir; if [ $build = A ]; then dir=$A; else dir=$B; fi
      rm -rf "$TMP/out"
      # shellcheck disable=SC2046
      run "$label" "$build" $(eval echo "$@" | sed "s#@DIR#$dir#g; s#@OUT#$TMP/out#g; s#@SC#$B/scenarios#g")
    done
  done
}

bench hold "@DIR/target/release/examples/hold_model --pending 10000 --events 10000000"
bench udp_echo "@DIR/target/release/examples/udp_echo --loss 0.1 --packets 200000"
bench mqtt-fanin-10k "@DIR/target/release/qossim run @SC/bench/mqtt-fanin-10k.toml --out @OUT --quiet"
bench wireless-1000 "@DIR/target/release/qossim run @SC/bench/wireless-1000.toml --out @OUT --quiet"

python3 - "$TMP" <<'EOF'
import sys, os, statistics
tmp = sys.argv[1]
rows = {}
for f in sorted(os.listdir(tmp)):
    if '.' not in f or f.startswith('stdout'):
        continue
    label, build = f.rsplit('.', 1)
    vals = [l.split() for l in open(os.path.join(tmp, f)) if l.strip()]
    wall = [float(v[0]) for v in vals]
    rss = [float(v[1]) / 1024 for v in vals]
    extra = [float(v[2]) for v in vals if len(v) > 2]
    rows.setdefault(label, {})[build] = (wall, rss, extra)
print(f"{'benchmark':16} {'build':5} {'wall s median [min-max]':28} {'peak RSS MB median':20} {'throughput median':18}")
for label, builds in rows.items():
    for b in sorted(builds):
        wall, rss, extra = builds[b]
        ex = f"{statistics.median(extra):.4g}" if extra else ""
        print(f"{label:16} {b:5} {statistics.median(wall):7.3f} [{min(wall):.3f}-{max(wall):.3f}]{'':8} {statistics.median(rss):8.1f}{'':12} {ex}")
    if 'A' in builds and 'B' in builds:
        wa, ra, _ = builds['A']; wb, rb, _ = builds['B']
        print(f"{'':16} B/A   wall {statistics.median(wb)/statistics.median(wa):.3f}   RSS {statistics.median(rb)/statistics.median(ra):.3f}")
EOF
