"""paho-mqtt 2.x over WebSocket (transport="websockets", path /mqtt):
connect to HOST PORT, publish one QoS 0 message on ws/t, disconnect.
Prints CONNECTED rc=<reason code> once the CONNACK arrived, then DONE."""
import sys
import threading

import paho.mqtt.client as mqtt

host, port = sys.argv[1], int(sys.argv[2])
connected = threading.Event()


def on_connect(client, userdata, flags, reason_code, properties):
    print(f"CONNECTED rc={reason_code}", flush=True)
    connected.set()


c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ws-probe",
                transport="websockets")
c.ws_set_options(path="/mqtt")
c.on_connect = on_connect
c.connect(host, port, keepalive=60)
c.loop_start()
if not connected.wait(10):
    print("NO CONNACK", flush=True)
    sys.exit(1)
c.publish("ws/t", b"hello", qos=0).wait_for_publish(5)
c.disconnect()
c.loop_stop()
print("DONE", flush=True)
