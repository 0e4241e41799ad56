"""websockify (Debian/PyPI, 0.10) as a WebSocket-to-TCP proxy for MQTT:
LISTEN_PORT -> 127.0.0.1:TARGET_PORT. websockify selects only the
"binary" subprotocol and refuses others; MQTT over WebSocket needs "mqtt"
([MQTT-6.0.0-4]), so its subprotocol choice is widened to select "mqtt"
when the client offers it. Nothing else of websockify changes.
Run with the interpreter websockify is installed for."""
import sys

import websockify.websockifyserver as server


def select_subprotocol(self, protocols):
    # accept() checks the answer is one of the offered list's elements,
    # so return the element itself (it may carry spaces after a comma).
    for want in ("mqtt", "binary"):
        for p in protocols:
            if p.strip() == want:
                return p
    return ""


server.CompatibleWebSocket.select_subprotocol = select_subprotocol

from websockify.websocketproxy import websockify_init  # noqa: E402

listen, target = sys.argv[1], sys.argv[2]
sys.argv = ["websockify", f"127.0.0.1:{listen}", f"127.0.0.1:{target}"]
websockify_init()
