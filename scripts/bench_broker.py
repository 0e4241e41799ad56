#!/usr/bin/env python3
"""Load one MQTT broker with paho-mqtt clients and print one result line.

N publisher clients (MQTT 3.1.1) each publish M QoS 1 messages to their own
topic bench/<i>, as fast as paho's in-flight window (20) lets them
(--rate 0: the brokers' saturation throughput; latency is then mostly
queueing) or R messages/s each (--rate R: latency below saturation); one
subscriber (QoS 1 on bench/#) receives them. Every payload carries its send
time (CLOCK_MONOTONIC, one process), so latency = receive - send.

    python3 scripts/bench_broker.py --port 1883 --label qossim [--clients 100 --messages 200 --rate 0]

Prints: label, messages received / expected, messages/s (received over the
time from the first send to the last receive), p50/p99/max latency in ms.
Used by scripts/bench-broker.sh, which starts the brokers.
"""
import argparse
import struct
import sys
import threading
import time

import paho.mqtt.client as mqtt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--payload", type=int, default=64)
    ap.add_argument("--rate", type=float, default=0.0, help="messages/s per client, 0: unpaced")
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()
    expected = a.clients * a.messages
    lat = []
    lock = threading.Lock()
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(_c, _u, m):
        now = time.perf_counter_ns()
        (sent,) = struct.unpack_from("!Q", m.payload)
        with lock:
            lat.append(now - sent)
            if len(lat) >= expected:
                done.set()

    v2 = mqtt.CallbackAPIVersion.VERSION2
    sub = mqtt.Client(v2, client_id="bench-sub", protocol=mqtt.MQTTv311)
    sub.on_message = on_message
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.connect("127.0.0.1", a.port, keepalive=60)
    sub.loop_start()
    sub.subscribe("bench/#", qos=1)
    if not subscribed.wait(10):
        sys.exit(f"{a.label}: no SUBACK")

    pubs = []
    connected = threading.Semaphore(0)
    for i in range(a.clients):
        c = mqtt.Client(v2, client_id=f"bench-pub-{i}", protocol=mqtt.MQTTv311)
        c.on_connect = lambda *_: connected.release()
        c.connect("127.0.0.1", a.port, keepalive=60)
        c.loop_start()
        pubs.append(c)
    for _ in pubs:
        if not connected.acquire(timeout=20):
            sys.exit(f"{a.label}: publishers did not connect")

    pad = b"x" * max(0, a.payload - 8)
    start = time.perf_counter_ns()

    def publish_all(i, c):
        infos = []
        t0 = time.perf_counter()
        for k in range(a.messages):
            if a.rate > 0:
                # spread the clients over one interval, then keep the pace
                due = t0 + (k + i / a.clients) / a.rate
                time.sleep(max(0.0, due - time.perf_counter()))
            infos.append(c.publish(f"bench/{i}", struct.pack("!Q", time.perf_counter_ns()) + pad, qos=1))
        for info in infos:
            info.wait_for_publish(a.timeout)

    threads = [threading.Thread(target=publish_all, args=(i, c)) for i, c in enumerate(pubs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.wait(a.timeout)
    end = time.perf_counter_ns()
    with lock:
        got = sorted(lat)
    for c in pubs + [sub]:
        c.disconnect()
        c.loop_stop()
    if not got:
        sys.exit(f"{a.label}: nothing received")

    def pct(p):
        return got[min(len(got) - 1, int(len(got) * p))] / 1e6

    rate = len(got) / ((end - start) / 1e9)
    print(
        f"{a.label}: {len(got)}/{expected} received, {rate:.0f} msg/s, "
        f"latency p50 {pct(0.50):.1f} ms, p99 {pct(0.99):.1f} ms, max {got[-1] / 1e6:.1f} ms"
    )
    if len(got) < expected:
        sys.exit(1)


if __name__ == "__main__":
    main()
