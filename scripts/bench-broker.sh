#!/usr/bin/env bash
# `qossim broker` and mosquitto under the same paho-mqtt load, in one run:
# 100 MQTT 3.1.1 clients each publishing QoS 1 messages to one subscriber on
# loopback (scripts/bench_broker.py), first unpaced (saturation: messages/s;
# latency is mostly queueing), then paced at RATE messages/s per client
# (latency below saturation); prints messages/s and p50/p99 latency per
# broker, ROUNDS times alternating. BENCHMARKS.md "`qossim broker`" records
# the figures.
#
#   scripts/bench-broker.sh                      # 100 clients; 200 unpaced, 100 at 10/s each; 3 rounds
#   CLIENTS=100 MESSAGES=500 RATE=20 ROUNDS=5 scripts/bench-broker.sh
#
# Needs: a release build (CARGO_TARGET_DIR honoured), mosquitto, python3
# with paho-mqtt 2.x (scripts/test.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-100}
MESSAGES=${MESSAGES:-200}
PACED=${PACED:-100}
RATE=${RATE:-10}
ROUNDS=${ROUNDS:-3}
QOSSIM="${CARGO_TARGET_DIR:-target}/release/qossim"
[ -x "$QOSSIM" ] || cargo build --release
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$MOSQUITTO" ] || { echo "mosquitto not found (apt-get install mosquitto)" >&2; exit 2; }
python3 -c 'import paho.mqtt' || { echo "pip install 'paho-mqtt>=2,<3'" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

# Both brokers: QoS 1 in-flight window 20, a queue deep enough that no
# message is dropped while the one subscriber catches up, no persistence.
QPORT=$(free_port)
"$QOSSIM" broker --listen "127.0.0.1:$QPORT" --scenario scenarios/quickstart.toml \
  --set protocols.mqtt.max_queued=1000000 --set protocols.mqtt.max_inflight=20 \
  --max-backlog 67108864 > "$tmp/qossim.out" &
pids+=($!)
MPORT=$(free_port)
cat > "$tmp/mosquitto.conf" <<CONF
listener $MPORT 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 20
max_queued_messages 1000000
CONF
"$MOSQUITTO" -c "$tmp/mosquitto.conf" > "$tmp/mosquitto.out" 2>&1 &
pids+=($!)
sleep 1

echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $CLIENTS publishers, QoS 1, 64 B payloads, 1 subscriber; $("$MOSQUITTO" -h | head -1)"
echo "# unpaced: $MESSAGES messages per publisher"
for r in $(seq "$ROUNDS"); do
  python3 scripts/bench_broker.py --port "$QPORT" --label "round $r qossim broker" \
    --clients "$CLIENTS" --messages "$MESSAGES"
  python3 scripts/bench_broker.py --port "$MPORT" --label "round $r mosquitto    " \
    --clients "$CLIENTS" --messages "$MESSAGES"
done
echo "# paced: $PACED messages per publisher at $RATE/s each ($((CLIENTS * ${RATE%.*})) msg/s offered)"
for r in $(seq "$ROUNDS"); do
  python3 scripts/bench_broker.py --port "$QPORT" --label "round $r qossim broker" \
    --clients "$CLIENTS" --messages "$PACED" --rate "$RATE"
  python3 scripts/bench_broker.py --port "$MPORT" --label "round $r mosquitto    " \
    --clients "$CLIENTS" --messages "$PACED" --rate "$RATE"
done
