#!/usr/bin/env python3
"""QoS 2 through a broker across a forced reconnection, with paho-mqtt 2.x.

Usage: paho_qos2_reconnect.py HOST PORT COUNT

A subscriber (clean_session=False) subscribes to paho/q2 at QoS 2; a
publisher (clean_session=False) publishes COUNT numbered QoS 2 messages.
Halfway it prints "HALF" and flushes stdout: the test harness then drops
every connection at the broker (a network failure). Both clients reconnect
by themselves and resume their sessions. At the end the script prints
"RESULT received=N duplicates=D missing=M" and exits 0 only when D == M == 0.
Every wait is bounded.
"""
import sys
import threading
import time

import paho.mqtt.client as mqtt

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
TOPIC = "paho/q2"

received = []
lock = threading.Lock()
subscribed = threading.Event()
pub_connected = threading.Event()
reconnects = {"pub": 0, "sub": 0}


def on_message(client, userdata, msg):
    with lock:
        received.append(int(msg.payload.decode()))


def on_subscribe(client, userdata, mid, reason_codes, properties):
    subscribed.set()


def make(name, **callbacks):
    c = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=name,
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )
    c.reconnect_delay_set(min_delay=1, max_delay=2)

    def on_connect(client, userdata, flags, reason_code, properties):
        reconnects[name.split("-")[1]] += 1
        if name == "paho-sub":
            client.subscribe(TOPIC, qos=2)
        else:
            pub_connected.set()

    c.on_connect = on_connect
    for k, v in callbacks.items():
        setattr(c, k, v)
    return c


sub = make("paho-sub", on_message=on_message, on_subscribe=on_subscribe)
sub.connect(host, port, keepalive=30)
sub.loop_start()
if not subscribed.wait(10):
    print("subscriber did not get SUBACK within 10 s", flush=True)
    sys.exit(2)

pub = make("paho-pub")
pub.connect(host, port, keepalive=30)
pub.loop_start()
if not pub_connected.wait(10):
    print("publisher did not connect within 10 s", flush=True)
    sys.exit(2)

infos = []
for i in range(count):
    infos.append(pub.publish(TOPIC, str(i), qos=2))
    if i == count // 2:
        print("HALF", flush=True)
        time.sleep(0.3)  # the harness drops the connections now
    time.sleep(0.005)

deadline = time.time() + 30
for info in infos:
    left = max(0.0, deadline - time.time())
    try:
        info.wait_for_publish(timeout=left)
    except (RuntimeError, ValueError):
        pass
while time.time() < deadline:
    with lock:
        if len(set(received)) >= count:
            break
    time.sleep(0.05)
time.sleep(0.5)  # would-be duplicates get a chance to arrive

pub.loop_stop()
sub.loop_stop()
pub.disconnect()
sub.disconnect()

with lock:
    dups = len(received) - len(set(received))
    missing = count - len(set(received) & set(range(count)))
    n = len(received)
print(
    f"RESULT received={n} duplicates={dups} missing={missing} "
    f"connects_pub={reconnects['pub']} connects_sub={reconnects['sub']}",
    flush=True,
)
sys.exit(0 if dups == 0 and missing == 0 else 1)
