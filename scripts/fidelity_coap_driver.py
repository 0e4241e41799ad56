#!/usr/bin/env python3
"""The real side of scripts/fidelity.sh's CoAP cells: starts one
`coap-client-notls -m get [-N] -B WAIT coap://SERVER/time` every PERIOD
seconds (absolute schedule from T0 + START), N times, without waiting for the
previous one (each is its own process, own UDP port, own exchange: so the
simulated twin sets a large NSTART), then waits for all of them. Latency,
delivery and retransmissions are taken from the capture
(scripts/fidelity_analyze.py); the clients' outputs go to LOG."""
import argparse, subprocess, time
ap = argparse.ArgumentParser()
ap.add_argument("--server", required=True)
ap.add_argument("--non", action="store_true")
ap.add_argument("--n", type=int, required=True)
ap.add_argument("--period", type=float, default=0.1)
ap.add_argument("--t0", type=float, required=True)
ap.add_argument("--start", type=float, default=5.0)
ap.add_argument("--wait", type=int, default=100)
ap.add_argument("--log", required=True)
a = ap.parse_args()
log = open(a.log, "w")
procs = []
for k in range(a.n):
    at = a.t0 + a.start + k * a.period
    d = at - time.time()
    if d > 0:
        time.sleep(d)
    cmd = ["coap-client-notls", "-m", "get", "-B", str(a.wait)]
    if a.non:
        cmd.append("-N")
    cmd.append(f"coap://{a.server}/time")
    procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.DEVNULL))
for p in procs:
    p.wait()
log.close()
