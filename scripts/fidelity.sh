#!/usr/bin/env bash
# Fidelity harness: real paho-mqtt → mosquitto → paho-mqtt and libcoap
# against qossim's simulated twins (scenarios/fidelity/), cell by cell
# (protocol/QoS × loss). Writes docs/fidelity.md ("Measured") and OUT/.
#
# Real side (root): two network namespaces A and B joined by a veth pair
# (va in A, vb in B; 10.77.0.1 and 10.77.0.2); loss with nftables on each
# namespace's input hook, on packets arriving from the veth, so each
# direction loses independently (`numgen random mod 100 < N drop`; no
# netem); the achieved loss per direction (nft counters) is reported beside
# the target. TCP congestion control inside both namespaces is set
# explicitly to cubic (net.ipv4.tcp_congestion_control=cubic).
#   MQTT: mosquitto (Debian) in B; the paho-mqtt publisher and subscriber
#   (scripts/fidelity_mqtt_client.py) both in A, so both TCP connections
#   cross the lossy veth; N messages of 32 bytes every PERIOD to
#   `fidelity/test` at QoS 0/1/2.
#   CoAP: coap-server-notls in B; in A one coap-client-notls GET of /time
#   every PERIOD (scripts/fidelity_coap_driver.py), CON and NON.
#   tshark captures va in A (every transmission of both directions: the
#   input-hook drops happen after the capture point).
# Calibration: before the cells, scripts/calibrate-processing.sh
# --veth-only measures this host's per-stage times (kernel, mosquitto,
# coap-server-notls, paho-mqtt's send and receive paths) at the cells'
# rate, and scripts/fidelity_twin_times.py turns them into the twins'
# [processing.*] times (--set); host speed is most of the latency at 0 %
# loss and differs from machine to machine. FIDELITY_CALIBRATE=0 keeps the
# twins' shipped times (measured on the machine docs/fidelity.md names).
# Simulated side: scenarios/fidelity/*.toml run with --pcap over SEEDS
# seeds per cell, the loss and message count set with --set.
# Analysis: scripts/fidelity_analyze.py (same tshark extraction of both
# sides' pcaps).
#
# Usage: sudo scripts/fidelity.sh [--reduced] [--out DIR]
#   full:    loss 0/5/10/20 %, 200 messages every 100 ms, 20 seeds, plus
#            20 real repetitions of MQTT QoS 0 at 20 % (stall > 20 s)
#   reduced: loss 0/10 %, 50 messages every 100 ms, 40 seeds
# Env: QOSSIM_BIN (default: cargo build --release, target/release/qossim),
#      FIDELITY_DOC (default docs/fidelity.md; "-" writes none); for smoke
#      tests FIDELITY_N, FIDELITY_SEEDS, FIDELITY_LOSSES, FIDELITY_STALL_REPS;
#      FIDELITY_REUSE_REAL=1 keeps the real captures already in OUT/real and
#      reruns only the simulated side and the analysis (after a twin changed);
#      FIDELITY_CALIBRATE=0 runs the twins with their shipped processing
#      times; FIDELITY_CAL_SAMPLES (default 100 reduced, 250 full).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODE=full
OUT=
while [ $# -gt 0 ]; do
  case "$1" in
    --reduced) MODE=reduced ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n 2,40p "$0"; exit 0 ;;
    *) echo "fidelity: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$MODE" = full ]; then
  LOSSES="0 5 10 20"; N=200; SEEDS=20; STALL_REPS=20; CAL_SAMPLES=250
else
  LOSSES="0 10"; N=50; SEEDS=40; STALL_REPS=0; CAL_SAMPLES=100
fi
CAL_SAMPLES=${FIDELITY_CAL_SAMPLES:-$CAL_SAMPLES}
CALIBRATE=${FIDELITY_CALIBRATE:-1}
N=${FIDELITY_N:-$N}
SEEDS=${FIDELITY_SEEDS:-$SEEDS}
LOSSES=${FIDELITY_LOSSES:-$LOSSES}
STALL_REPS=${FIDELITY_STALL_REPS:-$STALL_REPS}
PERIOD=0.1
START=5
DRAIN=60
OUT=${OUT:-results/fidelity-$MODE}
DOC=${FIDELITY_DOC:-docs/fidelity.md}

[ "$(id -u)" = 0 ] || { echo "fidelity: needs root (network namespaces, nftables, capture)" >&2; exit 2; }

# --- what the harness needs, installed if missing -------------------------
need_apt=()
command -v nft >/dev/null || need_apt+=(nftables)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v coap-client-notls >/dev/null || need_apt+=(libcoap3-bin)
command -v tshark >/dev/null || need_apt+=(tshark)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v ping >/dev/null || need_apt+=(iputils-ping)  # the calibration
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "fidelity: installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
python3 -c 'import paho.mqtt' 2>/dev/null || {
  echo "fidelity: installing paho-mqtt (PyPI)"
  python3 -m pip install -q paho-mqtt 2>/dev/null || python3 -m pip install -q --break-system-packages paho-mqtt
}
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)

if [ -n "${QOSSIM_BIN:-}" ]; then
  QOSSIM=$QOSSIM_BIN
else
  cargo build --release --quiet
  QOSSIM=$ROOT/target/release/qossim
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ "${FIDELITY_REUSE_REAL:-0}" = 1 ]; then
  # keep the captures; refuse to go on without them
  [ -d "$OUT/real" ] || { echo "fidelity: FIDELITY_REUSE_REAL=1 but no $OUT/real" >&2; exit 2; }
  rm -rf "$OUT/sim"
else
  rm -rf "$OUT/real" "$OUT/sim"
fi
mkdir -p "$OUT/real" "$OUT/sim"

# --- namespaces ------------------------------------------------------------
A=qfid-a-$$
B=qfid-b-$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  ip netns pids "$A" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns pids "$B" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  [ -n "${ALLOWED:-}" ] && sysctl -qw net.ipv4.tcp_allowed_congestion_control="$ALLOWED" || true
}
trap cleanup EXIT INT TERM
ip netns add "$A"
ip netns add "$B"
ip link add va netns "$A" type veth peer name vb netns "$B"
ip -n "$A" addr add 10.77.0.1/24 dev va
ip -n "$B" addr add 10.77.0.2/24 dev vb
# A namespace may only pick an algorithm on the (global) allowed list; add
# cubic for the run when it is missing (restored on exit).
ALLOWED=$(sysctl -n net.ipv4.tcp_allowed_congestion_control)
case " $ALLOWED " in
  *" cubic "*) ALLOWED= ;;
  *) modprobe tcp_cubic 2>/dev/null || true
     sysctl -qw net.ipv4.tcp_allowed_congestion_control="$ALLOWED cubic" ;;
esac
for ns in "$A" "$B"; do
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv4.tcp_congestion_control=cubic
done
ip -n "$A" link set va up
ip -n "$B" link set vb up
CC=$(ip netns exec "$A" sysctl -n net.ipv4.tcp_congestion_control)
# no ARP on the lossy path: static neighbours
ip -n "$A" neigh replace 10.77.0.2 lladdr "$(ip -n "$B" -br link show vb | awk '{print $3}')" dev va nud permanent
ip -n "$B" neigh replace 10.77.0.1 lladdr "$(ip -n "$A" -br link show va | awk '{print $3}')" dev vb nud permanent

set_loss() {  # $1 = percent: fresh table (counters at 0) in both namespaces
  for pair in "$A va" "$B vb"; do
    set -- "$1" $pair
    ip netns exec "$2" nft delete table inet qfid 2>/dev/null || true
    ip netns exec "$2" nft -f - <<NFT
table inet qfid {
  counter seen {}
  counter dropped {}
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "$3" meta l4proto { tcp, udp } counter name "seen"
    iifname "$3" meta l4proto { tcp, udp } numgen random mod 100 < $1 counter name "dropped" drop
  }
}
NFT
  done
}
loss_counts() {  # prints "seen_AtoB dropped_AtoB seen_BtoA dropped_BtoA"
  local sb db sa da
  sb=$(ip netns exec "$B" nft list counter inet qfid seen | awk '/packets/{print $2}')
  db=$(ip netns exec "$B" nft list counter inet qfid dropped | awk '/packets/{print $2}')
  sa=$(ip netns exec "$A" nft list counter inet qfid seen | awk '/packets/{print $2}')
  da=$(ip netns exec "$A" nft list counter inet qfid dropped | awk '/packets/{print $2}')
  echo "$sb $db $sa $da"
}

start_capture() {  # $1 = pcap, $2 = filter
  ip netns exec "$A" tshark -q -i va -f "$2" -w "$1" >/dev/null 2>&1 &
  CAP=$!
  PIDS+=("$CAP")
  for _ in $(seq 50); do [ -s "$1" ] && break; sleep 0.1; done
  sleep 0.5
}
stop_capture() { sleep 0.3; kill -INT "$CAP" 2>/dev/null || true; wait "$CAP" 2>/dev/null || true; }

run_mqtt_cell() {  # $1 = qos, $2 = loss, $3 = dir
  local q=$1 l=$2 d=$3
  mkdir -p "$d"
  set_loss "$l"
  printf 'listener 1883 10.77.0.2\nallow_anonymous true\npersistence false\n' > "$d/mosquitto.conf"
  ip netns exec "$B" "$MOSQ" -c "$d/mosquitto.conf" >"$d/mosquitto.log" 2>&1 &
  local mpid=$!; PIDS+=("$mpid")
  sleep 0.5
  start_capture "$d/real.pcap" "tcp port 1883"
  local t0 deadline
  t0=$(python3 -c 'import time; print(f"{time.time()+0.5:.3f}")')
  deadline=$(python3 -c "print($t0 + $START + $N * $PERIOD + $DRAIN)")
  ip netns exec "$A" python3 scripts/fidelity_mqtt_client.py --role sub --broker 10.77.0.2 \
    --qos "$q" --n "$N" --period "$PERIOD" --t0 "$t0" --start "$START" --deadline "$deadline" --log "$d/sub.log" &
  local spid=$!; PIDS+=("$spid")
  ip netns exec "$A" python3 scripts/fidelity_mqtt_client.py --role pub --broker 10.77.0.2 \
    --qos "$q" --n "$N" --period "$PERIOD" --t0 "$t0" --start "$START" --deadline "$deadline" --log "$d/pub.log" &
  local ppid=$!; PIDS+=("$ppid")
  while [ ! -e "$d/sub.log.done" ] || [ ! -e "$d/pub.log.done" ]; do sleep 0.2; done
  sleep 1   # last ACKs
  stop_capture
  echo "$t0 $(loss_counts)" > "$d/meta"
  kill "$spid" "$ppid" 2>/dev/null || true; wait "$spid" "$ppid" 2>/dev/null || true
  kill "$mpid" 2>/dev/null || true; wait "$mpid" 2>/dev/null || true
}

run_coap_cell() {  # $1 = con|non, $2 = loss, $3 = dir
  local m=$1 l=$2 d=$3
  mkdir -p "$d"
  set_loss "$l"
  ip netns exec "$B" coap-server-notls -A 10.77.0.2 -p 5683 >"$d/server.log" 2>&1 &
  local spid=$!; PIDS+=("$spid")
  sleep 0.5
  start_capture "$d/real.pcap" "udp port 5683"
  local t0 extra wait
  t0=$(python3 -c 'import time; print(f"{time.time()+0.5:.3f}")')
  if [ "$m" = non ]; then extra=--non; wait=3; else extra=; wait=100; fi
  ip netns exec "$A" python3 scripts/fidelity_coap_driver.py --server 10.77.0.2 $extra \
    --n "$N" --period "$PERIOD" --t0 "$t0" --start "$START" --wait "$wait" --log "$d/client.log"
  sleep 1
  stop_capture
  echo "$t0 $(loss_counts)" > "$d/meta"
  kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true
}

CELLS=()
for l in $LOSSES; do
  for c in mqtt-qos0 mqtt-qos1 mqtt-qos2 coap-con coap-non; do CELLS+=("$c:$l"); done
done

CAL=$OUT/real/calibration.json
if [ "${FIDELITY_REUSE_REAL:-0}" = 1 ]; then
  echo "=== real: reusing the captures in $OUT/real (FIDELITY_REUSE_REAL=1)"
else
if [ "$CALIBRATE" = 1 ]; then
  echo "=== calibration: this host's processing times, $CAL_SAMPLES samples every ${PERIOD}s ($(date +%T))"
  scripts/calibrate-processing.sh --veth-only --period "$PERIOD" --json "$CAL" \
    "$CAL_SAMPLES" "$OUT/real/calibration" > "$OUT/real/calibration.log" 2>&1 \
    || { cat "$OUT/real/calibration.log" >&2; echo "fidelity: the calibration failed" >&2; exit 1; }
  sed -n '/^measurement/,$p' "$OUT/real/calibration.log"
fi
echo "=== real: Linux $(uname -r), congestion control $CC, $N messages every ${PERIOD}s, loss $LOSSES %"
for cell in "${CELLS[@]}"; do
  c=${cell%%:*}; l=${cell##*:}
  d="$OUT/real/$c-loss$l"
  echo "--- $c at $l % ($(date +%T))"
  case $c in
    mqtt-qos*) run_mqtt_cell "${c#mqtt-qos}" "$l" "$d" ;;
    coap-*) run_coap_cell "${c#coap-}" "$l" "$d" ;;
  esac
done
if [ "$STALL_REPS" -gt 0 ]; then
  echo "=== real: $STALL_REPS repetitions of mqtt-qos0 at 20 % (stall > 20 s)"
  for r in $(seq 1 "$STALL_REPS"); do
    echo "--- repetition $r ($(date +%T))"
    run_mqtt_cell 0 20 "$OUT/real/stall/rep$r"
  done
fi
fi

echo "=== simulated: $SEEDS seeds per cell ($QOSSIM)"
DUR=$(python3 -c "print(f'{$START + $N * $PERIOD:.1f} s')")
# the twins' processing times: this host's (calibration) or the shipped ones
rm -f "$OUT/sim/times-mqtt" "$OUT/sim/times-coap"
touch "$OUT/sim/times-mqtt" "$OUT/sim/times-coap"
if [ -s "$CAL" ]; then
  for kind in mqtt coap; do
    python3 scripts/fidelity_twin_times.py "$CAL" "$kind" > "$OUT/sim/times-$kind" || exit 1
  done
  echo "twins' processing times (this host):"; sed 's/^/  /' "$OUT/sim/times-mqtt" "$OUT/sim/times-coap"
else
  echo "twins' processing times: the shipped ones (no calibration in $OUT/real)"
fi
sim_cell() {  # $1 = cell, $2 = loss, $3 = seed
  local c=$1 l=$2 s=$3 p link d kind sets=() line
  p=$(python3 -c "print($l/100)")
  d="$OUT/sim/$c-loss$l/seed$s"
  case $c in
    mqtt-*) kind=mqtt; link="--set links.pub--broker.loss.p=$p --set links.sub--broker.loss.p=$p --set flows.fid.count=$N" ;;
    coap-*) kind=coap; link="--set links.client--server.loss.p=$p --set flows.fid.count=$N" ;;
  esac
  while IFS= read -r line; do [ -n "$line" ] && sets+=(--set "$line"); done < "$OUT/sim/times-$kind"
  # shellcheck disable=SC2086
  "$QOSSIM" run "scenarios/fidelity/$c.toml" --quiet --pcap --seed "$s" --out "$d" \
    --set "duration=$DUR" $link "${sets[@]}"
}
export -f sim_cell
export OUT QOSSIM DUR N
for cell in "${CELLS[@]}"; do
  c=${cell%%:*}; l=${cell##*:}
  for s in $(seq 1 "$SEEDS"); do echo "$c $l $s"; done
done | xargs -P 2 -n 3 bash -c 'sim_cell "$0" "$1" "$2"'
if [ "$STALL_REPS" -gt 0 ]; then :; fi

echo "=== analysis"
python3 scripts/fidelity_analyze.py --out "$OUT" --mode "$MODE" --n "$N" --period "$PERIOD" \
  --start "$START" --seeds "$SEEDS" --losses "$LOSSES" --cc "$CC" --doc "$DOC" --calibration "$CAL" \
  --command "scripts/fidelity.sh$([ "$MODE" = reduced ] && echo " --reduced") --out $OUT"
