#!/usr/bin/env python3
"""One paho-mqtt client of scripts/fidelity.sh (the real side of the MQTT cells).

  --role sub: connect (client id `sub`, CleanSession 0, keep-alive 60 s),
              subscribe to TOPIC at QOS, log every receipt as
              `seq,t_send_ns,t_recv_ns` (the publisher's time.time_ns() is in
              the payload; both processes share the machine clock), and stop
              when N distinct messages arrived or at DEADLINE (epoch s);
              writes LOG.done last.
  --role pub: connect (client id `pub`), publish N messages of exactly
              PAYLOAD bytes at T0 + START + k·PERIOD (k = 0 … N−1, absolute
              schedule), then wait until every QoS 1/2 flow is complete or
              DEADLINE; writes LOG.done last.
Both then sleep until the harness stops the capture and kills them, so no
DISCONNECT or FIN enters the capture (the simulated twin has none either).
"""
import argparse, os, sys, time, threading
import paho.mqtt.client as mqtt

ap = argparse.ArgumentParser()
ap.add_argument("--role", choices=["pub", "sub"], required=True)
ap.add_argument("--broker", required=True)
ap.add_argument("--qos", type=int, required=True)
ap.add_argument("--n", type=int, required=True)
ap.add_argument("--period", type=float, default=0.1)
ap.add_argument("--t0", type=float, required=True)
ap.add_argument("--start", type=float, default=5.0)
ap.add_argument("--deadline", type=float, required=True)
ap.add_argument("--payload", type=int, default=32)
ap.add_argument("--topic", default="fidelity/test")
ap.add_argument("--log", required=True)
a = ap.parse_args()

while time.time() < a.t0:
    time.sleep(0.001)

c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=a.role,
                clean_session=False, protocol=mqtt.MQTTv311)
c.reconnect_delay_set(1, 60)
log = open(a.log, "w")

if a.role == "sub":
    got = set()
    done = threading.Event()
    lock = threading.Lock()

    def on_connect(cl, ud, flags, rc, props=None):
        cl.subscribe(a.topic, qos=a.qos)

    def on_message(cl, ud, msg):
        t = time.time_ns()
        p = msg.payload
        seq = int(p[:8]); ts = int(p[8:27])
        with lock:
            log.write(f"{seq},{ts},{t}\n")
            got.add(seq)
            if len(got) >= a.n:
                done.set()

    c.on_connect = on_connect
    c.on_message = on_message
    c.connect_async(a.broker, 1883, keepalive=60)
    c.loop_start()
    while not done.is_set() and time.time() < a.deadline:
        done.wait(0.05)
    with lock:
        log.flush()
else:
    c.connect_async(a.broker, 1883, keepalive=60)
    c.loop_start()
    infos = []
    for k in range(a.n):
        at = a.t0 + a.start + k * a.period
        while True:
            d = at - time.time()
            if d <= 0:
                break
            time.sleep(min(d, 0.002) if d < 0.01 else d - 0.008)
        t = time.time_ns()
        body = f"{k:08d}{t:019d}".encode()
        body += b" " * (a.payload - len(body))
        infos.append(c.publish(a.topic, body, qos=a.qos))
        log.write(f"{k},{t}\n")
    log.flush()
    if a.qos > 0:
        while time.time() < a.deadline and not all(i.is_published() for i in infos):
            time.sleep(0.05)
log.close()
open(a.log + ".done", "w").close()
while True:
    time.sleep(3600)
