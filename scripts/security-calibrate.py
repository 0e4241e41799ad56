#!/usr/bin/env python3
"""Calibration of the security overlays against real stacks on loopback
(issue 21 item 5; docs/security.md, section "Calibration").

What it does: makes a certificate hierarchy with `openssl` (root CA →
intermediate CA → leaves: ECDSA P-256 and RSA-2048 servers, an ECDSA P-256
client), starts one private `mosquitto` with TLS 1.2 and TLS 1.3 listeners
(one of each with `require_certificate true`) and a plain listener,
two `websockify` in front of the plain listener (one plain, one with TLS),
and libcoap's `coap-server-openssl` with a PSK; captures loopback with
`dumpcap`, filtered to the ports it chose (free ones, never
1883/8883/5683/5684); runs paho-mqtt clients (CONNECT, one QoS 1 PUBLISH of
--payload bytes, PUBACK, DISCONNECT) and `coap-client-openssl` (one PSK
DTLS GET, and the same GET in the clear); then reads the capture with
tshark (TLS decrypted with the clients' key log; DTLS's ECDHE-PSK suites
cannot be, so the plaintext sizes come from the clear GET) and writes what
each handshake and each record cost.

Usage:
  security-calibrate.py --quick --out FILE.json    one connection per case (CI)
  security-calibrate.py --reps 5 --out FILE.json   full mode (default 5 reps)
  --keep DIR keeps the certificates, key log and pcap in DIR.

Every process it starts is killed on exit, on failure and on SIGINT/SIGTERM;
every wait is bounded. Needs: openssl, mosquitto (/usr/sbin), dumpcap and
tshark, websockify, coap-server-openssl / coap-client-openssl (or the gnutls
builds), python3 with paho-mqtt 2.x. Capturing on `lo` needs root (or
dumpcap's capabilities).

Output schema (JSON, version 1)
-------------------------------
{
  "schema": "qossim-security-calibration/1",
  "mode": "quick" | "full", "reps": N, "payload_bytes": P,
  "versions": {"mosquitto": str, "openssl": str, "python_ssl": str,
               "paho_mqtt": str, "libcoap": str, "websockify": str,
               "tshark": str, "python": str},
  "certificates": {NAME: {"der_bytes": int, "key": "ecdsa-p256"|"rsa-2048"}},
        NAME in root_ca, intermediate_ca, server_ecdsa, server_rsa, client_ecdsa
  "inputs": {"sni": str, "psk_identity": str, "psk_hint": str}
        what the clients and servers were told to send: the server name the
        TLS clients send (SNI), the DTLS PSK identity and the server's hint
  "cases": {CASE: {
      "kind": "tls" | "websocket" | "wss" | "dtls",
      "description": str,
      "reps": [REP, ...],         one per connection, in order
      "summary": {FIELD: {"min": x, "median": x, "max": x}, ...}
                  over the reps, for every numeric field of REP named in
                  SUMMARY_FIELDS below (flight byte lists compared position by
                  position: "flights_record_bytes": [{"min","median","max"}, ...])
  }},
  "facts": {FACT: value}          the headline numbers (medians), see FACTS
}

REP for kind "tls" (one TCP connection; "c" = client→server, "s" = server→client):
  client_port            the client's TCP port (the connection's key in the pcap)
  version                "TLSv1.2" | "TLSv1.3" (negotiated, from the ServerHello)
  cipher_suite           IANA name (from `openssl ciphers -stdname`), e.g.
                         "TLS_AES_256_GCM_SHA384"; cipher_suite_id its number
  resumed                TLS 1.3: the ServerHello accepts a pre_shared_key;
                         TLS 1.2: the server went straight to its Finished
  client_python_reused   ssl.SSLSocket.session_reused as paho's socket saw it
  round_trips            server flights before the client's first record that
                         carries application data (decrypted content type 23),
                         a flight of NewSessionTickets alone not counted: the
                         round trips the handshake adds after TCP's
  flights                [FLIGHT, ...]: the handshake and ChangeCipherSpec
                         records grouped into runs in one direction (the
                         application records between them do not end a run;
                         TLS 1.3's NewSessionTickets form the last flight)
     FLIGHT = {"dir": "c"|"s", "records": int, "record_bytes": int (5-byte
               headers included), "payload_bytes": int (the TCP payload of the
               segments carrying them), "content": ["handshake:client_hello",
               "change_cipher_spec", "handshake:certificate", ...] (inner
               types, decrypted with the clients' key log)}
  flights_record_bytes   [int, ...] record_bytes per flight, in order
  handshake_bytes_c / _s total record bytes of the flights per direction
  certificates_s / _c    DER sizes of the certificates each side sent
  app_records            [{"dir", "mqtt": "CONNECT"|..., "mqtt_bytes": int,
                           "record_length": int (tls.record.length),
                           "record_bytes": int (header included),
                           "overhead": record_bytes - mqtt_bytes}]
  overhead               the per-record overhead when every app record has the
                         same, else null (CBC: padding depends on the length;
                         see app_records)

REP for kind "websocket" (one TCP connection through websockify):
  client_port, request_host (the request's Host value), upgrade_request_bytes,
  upgrade_response_bytes (the HTTP
  request / response, blank line included), request_subprotocol,
  response_subprotocol (Sec-WebSocket-Protocol), response_status,
  frames: [{"dir", "opcode", "masked", "header_bytes" (mask key included),
            "payload_bytes", "mqtt": packet type of the payload}],
  frame_header_c / frame_header_s (header bytes when all equal, else null),
  client_frames_masked (all), server_frames_masked (any)

REP for kind "websocket" also has round_trips_to_mqtt: 1 when the client
  sent its first frame only after the upgrade response (it waited for it).

REP for kind "wss" (MQTT over WebSocket over TLS 1.3, websockify's TLS):
  the TLS fields (client_port, version, cipher_suite, resumed, round_trips,
  flights, handshake_bytes_c/_s, certificates_s/_c), and
  app_records: [{"dir", "carries": "upgrade_request" | "upgrade_response" |
                 "websocket_frame", "record_bytes", for frames also "masked",
                 "mqtt_bytes" (the frame's payload: one MQTT packet),
                 "overhead" (record_bytes - mqtt_bytes: TLS + WebSocket)}],
  upgrade_request_record_bytes, upgrade_response_record_bytes,
  overhead_c / overhead_s (when all equal), round_trips_to_mqtt (TLS's
  round trips + the upgrade's)

REP for kind "dtls" (one UDP association coap-client ↔ coap-server):
  client_port, version ("DTLSv1.2"), cipher_suite, cipher_suite_id, resumed,
  round_trips, cookie (a HelloVerifyRequest was sent), datagrams (all of the
  association), flights (as for TLS; record_bytes with 13-byte headers,
  payload_bytes = UDP payload), flights_record_bytes, handshake_bytes_c / _s,
  app_records: [{"dir", "coap": "GET"|"2.05"|..., "coap_bytes" (the same
  message sent in the clear), "record_length", "record_bytes", "overhead"}],
  overhead

FACTS (medians over the reps where numeric):
  tls13_overhead, tls12_overhead, tls13_suite, tls12_suite, tls12_cbc_suite,
  tls12_cbc_overheads {mqtt bytes: overhead}, dtls_overhead, dtls_suite,
  dtls_cookie, round_trips {case: n}, resumed {case: bool},
  handshake_bytes {case: {"c": n, "s": n}}, ws_upgrade_request_bytes,
  ws_upgrade_response_bytes, ws_request_subprotocol, ws_response_subprotocol,
  ws_frame_header_c, ws_frame_header_s, ws_client_frames_masked,
  ws_server_frames_masked, ws_round_trips_to_mqtt, wss_round_trips_to_mqtt,
  wss_overhead_c, wss_overhead_s, wss_suite, paho_resumes_by_itself (a second paho connection
  with a fresh context resumed), malformed (frames tshark marks malformed or
  with expert warnings, with the decode-as options the analysis used)
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

RESERVED_PORTS = {1883, 8883, 5683, 5684, 80, 443}
TIMEOUT = 20  # seconds: bound on every single wait
PSK_IDENTITY = "calib-device"
PSK_KEY = "calib-secret-key"
PSK_HINT = "CoAP"  # coap-server's default hint, given explicitly
SNI = "broker.calib.test"
TOPIC = "calib/t"


class Failure(Exception):
    """A step failed; the message says which and why."""


# ---------------------------------------------------------------- processes

CHILDREN = []


def spawn(argv, log_path, **kw):
    """Start argv with stdout+stderr to log_path; killed by kill_all()."""
    log = open(log_path, "wb")
    try:
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, **kw)
    except OSError as e:
        raise Failure(f"cannot start {argv[0]}: {e}") from e
    finally:
        log.close()
    CHILDREN.append(p)
    return p


def stop(p, sig=signal.SIGTERM):
    """Stop one child (its process group), bounded."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=5)


def kill_all():
    while CHILDREN:
        stop(CHILDREN.pop())


def on_signal(signum, _frame):
    kill_all()
    sys.exit(128 + signum)


def run(argv, timeout=TIMEOUT, **kw):
    """Run argv to completion (bounded); its stdout; Failure on error."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    except FileNotFoundError as e:
        raise Failure(f"{argv[0]} not found: {e}") from e
    except subprocess.TimeoutExpired as e:
        raise Failure(f"{' '.join(argv)} did not finish within {timeout} s") from e
    if r.returncode != 0:
        raise Failure(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.strip()[-2000:]}")
    return r.stdout


def find(*names):
    """The first of names found on PATH or in /usr/sbin."""
    for n in names:
        p = shutil.which(n) or shutil.which(n, path="/usr/sbin:/usr/local/sbin")
        if p:
            return p
    raise Failure(f"none of {', '.join(names)} found on PATH or in /usr/sbin")


def free_port(taken, span=1):
    """A loopback port (and the span-1 after it) free for TCP and UDP now and
    not yet handed out, below Linux's ephemeral range (32768–60999) so no
    outgoing connection takes it before the peer binds it."""
    for _ in range(500):
        base = random.randrange(20000, 32000)
        ports = list(range(base, base + span))
        if any(p in RESERVED_PORTS or p in taken or p > 65535 for p in ports):
            continue
        ok = True
        for p in ports:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    try:
                        s.bind(("127.0.0.1", p))
                    except OSError:
                        ok = False
        if ok:
            taken.update(ports)
            return base
    raise Failure("no free loopback port found")


def wait_listening(port, proc, what):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure(f"{what} exited ({proc.returncode}) before listening on {port}")
        with socket.socket() as s:
            s.settimeout(0.2)
            try:
                s.connect(("127.0.0.1", port))
                if s.getsockname() != s.getpeername():
                    return
            except OSError:
                pass
        time.sleep(0.05)
    raise Failure(f"{what} did not listen on port {port} within {TIMEOUT} s")


# ---------------------------------------------------------------- certificates

def make_certs(d):
    """Root CA → intermediate → leaves; returns {name: paths and sizes}."""
    ossl = find("openssl")

    def key(name, kind):
        path = os.path.join(d, name + ".key")
        if kind == "ecdsa-p256":
            run([ossl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", path])
        else:
            run([ossl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                 "-out", path])
        return path

    def ext(name, text):
        path = os.path.join(d, name + ".ext")
        with open(path, "w") as f:
            f.write(text)
        return path

    ca_ext = ext("ca", "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                 "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n")
    srv_ext = ext("srv", "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,"
                  "keyEncipherment\nextendedKeyUsage=serverAuth\n"
                  f"subjectAltName=DNS:{SNI},IP:127.0.0.1\n"
                  "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n")
    cli_ext = ext("cli", "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                  "extendedKeyUsage=clientAuth\n"
                  "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n")
    certs = {}

    def cert(name, kind, subject, issuer, ext_file):
        k = key(name, kind)
        crt = os.path.join(d, name + ".crt")
        if issuer is None:
            run([ossl, "req", "-x509", "-new", "-key", k, "-subj", subject, "-days", "30",
                 "-sha256", "-extensions", "v3_ca", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", crt])
        else:
            csr = os.path.join(d, name + ".csr")
            run([ossl, "req", "-new", "-key", k, "-subj", subject, "-out", csr])
            run([ossl, "x509", "-req", "-in", csr, "-CA", certs[issuer]["crt"],
                 "-CAkey", certs[issuer]["key"], "-CAcreateserial", "-days", "30", "-sha256",
                 "-extfile", ext_file, "-out", crt])
        der_path = os.path.join(d, name + ".der")
        run([ossl, "x509", "-in", crt, "-outform", "DER", "-out", der_path])
        certs[name] = {"key": k, "crt": crt, "kind": kind, "der_bytes": os.path.getsize(der_path)}

    cert("root_ca", "ecdsa-p256", "/O=qossim calibration/CN=Calibration Root CA", None, None)
    cert("intermediate_ca", "ecdsa-p256", "/O=qossim calibration/CN=Calibration Intermediate CA",
         "root_ca", ca_ext)
    cert("server_ecdsa", "ecdsa-p256", f"/O=qossim calibration/CN={SNI}", "intermediate_ca", srv_ext)
    cert("server_rsa", "rsa-2048", f"/O=qossim calibration/CN={SNI}", "intermediate_ca", srv_ext)
    cert("client_ecdsa", "ecdsa-p256", "/O=qossim calibration/CN=sensor-1", "intermediate_ca",
         cli_ext)
    # chains as a peer sends them: leaf + intermediate
    for leaf in ("server_ecdsa", "server_rsa", "client_ecdsa"):
        chain = os.path.join(d, leaf + ".chain.pem")
        with open(chain, "w") as out:
            for part in (certs[leaf]["crt"], certs["intermediate_ca"]["crt"]):
                with open(part) as f:
                    out.write(f.read())
        certs[leaf]["chain"] = chain
    return certs


# ---------------------------------------------------------------- peers

def start_mosquitto(d, certs, taken):
    """One mosquitto with a listener per TLS case and a plain one; {name: port}."""
    ports = {}
    conf = ["allow_anonymous true", "persistence false", "per_listener_settings false",
            f"log_dest file {os.path.join(d, 'mosquitto.log')}", "log_type all"]
    listeners = [
        # name, tls_version, server certificate, require a client certificate
        ("tls12_ecdsa", "tlsv1.2", "server_ecdsa", False),
        ("tls13_ecdsa", "tlsv1.3", "server_ecdsa", False),
        ("tls12_rsa", "tlsv1.2", "server_rsa", False),
        ("tls13_rsa", "tlsv1.3", "server_rsa", False),
        ("tls12_mtls", "tlsv1.2", "server_ecdsa", True),
        ("tls13_mtls", "tlsv1.3", "server_ecdsa", True),
    ]
    for name, version, srv, mutual in listeners:
        port = free_port(taken)
        ports[name] = port
        conf += [f"listener {port} 127.0.0.1", f"cafile {certs['root_ca']['crt']}",
                 f"certfile {certs[srv]['chain']}", f"keyfile {certs[srv]['key']}",
                 f"tls_version {version}"]
        if mutual:
            conf += ["require_certificate true"]
    ports["plain"] = free_port(taken)
    conf += [f"listener {ports['plain']} 127.0.0.1"]
    path = os.path.join(d, "mosquitto.conf")
    with open(path, "w") as f:
        f.write("\n".join(conf) + "\n")
    # started as root, mosquitto drops to user mosquitto: let it read and log
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    os.chmod(d, 0o777)
    p = spawn([find("mosquitto"), "-c", path], os.path.join(d, "mosquitto.out"))
    for port in ports.values():
        wait_listening(port, p, "mosquitto")
    return ports


WEBSOCKIFY_MQTT = r"""
import sys
import websockify.websockifyserver as w
from websockify.websocketproxy import websockify_init
base = w.CompatibleWebSocket.select_subprotocol
def select_subprotocol(self, protocols):
    # websockify answers only its own "binary" subprotocol and rejects any
    # other; an MQTT broker answers "mqtt" [MQTT-6.0.0-3/4]
    offered = [p.strip() for p in protocols]
    return "mqtt" if "mqtt" in offered else base(self, protocols)
w.CompatibleWebSocket.select_subprotocol = select_subprotocol
sys.argv[0] = "websockify"
sys.exit(websockify_init())
"""


def start_websockify(d, target, taken, certs=None):
    """websockify on a free port, forwarding to mosquitto's plain listener;
    with certs, TLS only (its Python ssl defaults), the ECDSA chain."""
    # the Debian/PyPI package's console script; its interpreter has the module
    with open(find("websockify")) as f:
        first = f.readline()
    python = first[2:].strip().split()[0] if first.startswith("#!") else sys.executable
    port = free_port(taken)
    tls = ["--cert", certs["server_ecdsa"]["chain"], "--key", certs["server_ecdsa"]["key"],
           "--ssl-only"] if certs else []
    p = spawn([python, "-c", WEBSOCKIFY_MQTT, *tls, f"127.0.0.1:{port}", f"127.0.0.1:{target}"],
              os.path.join(d, "websockify-tls.log" if certs else "websockify.log"))
    wait_listening(port, p, "websockify")
    return port


def coap_tools():
    """(server, client) binaries of one libcoap DTLS build: OpenSSL's, else GnuTLS's."""
    for flavour in ("openssl", "gnutls"):
        srv = shutil.which(f"coap-server-{flavour}")
        cli = shutil.which(f"coap-client-{flavour}")
        if srv and cli:
            return srv, cli
    raise Failure("coap-server-openssl/coap-client-openssl (or -gnutls) not found "
                  "(Debian package libcoap3-bin)")


def start_coap_server(d, taken):
    """libcoap's server with a PSK; it listens for DTLS on port+1; returns that."""
    srv, _ = coap_tools()
    port = free_port(taken, span=2)
    p = spawn([srv, "-A", "127.0.0.1", "-p", str(port), "-k", PSK_KEY, "-h", PSK_HINT,
               "-v", "4"],
              os.path.join(d, "coap-server.log"))
    wait_listening(port, p, "coap-server")  # its plain TCP listener: it is up
    return port + 1


def start_capture(d, tcp_ports, udp_ports):
    pcap = os.path.join(d, "calib.pcapng")
    flt = " or ".join([f"tcp port {p}" for p in tcp_ports] + [f"udp port {p}" for p in udp_ports])
    log = os.path.join(d, "dumpcap.log")
    p = spawn([find("dumpcap"), "-i", "lo", "-f", flt, "-w", pcap], log)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if p.poll() is not None:
            with open(log) as f:
                raise Failure(f"dumpcap exited ({p.returncode}): {f.read().strip()}")
        with open(log) as f:
            if "Capturing on" in f.read():
                time.sleep(0.3)
                return p, pcap
        time.sleep(0.05)
    raise Failure(f"dumpcap did not start capturing within {TIMEOUT} s")


def stop_capture(p):
    time.sleep(0.5)  # the last FINs and ACKs
    stop(p, signal.SIGINT)
    CHILDREN.remove(p)


# ---------------------------------------------------------------- clients

def tls_context(certs, keylog, version, client_cert=False, ciphers=None):
    """paho's TLS context for one case (key log on, version pinned)."""

    class CalibContext(ssl.SSLContext):
        """A client context that names the broker (SNI, as a device that
        connects by name does; paho passes the host it dials, here an IP
        address, which sends none) and offers a saved session when given."""
        session = None

        def wrap_socket(self, sock, server_hostname=None, **kw):
            return super().wrap_socket(sock, server_hostname=SNI, session=self.session, **kw)

    ctx = CalibContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs["root_ca"]["crt"])
    ctx.keylog_filename = keylog
    if version == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if client_cert:
        ctx.load_cert_chain(certs["client_ecdsa"]["chain"], certs["client_ecdsa"]["key"])
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def mqtt_session(client_id, port, payload, ctx=None, websocket=False):
    """CONNECT, one QoS 1 PUBLISH, PUBACK, DISCONNECT; facts about the socket."""
    import threading
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                    protocol=mqtt.MQTTv311, transport="websockets" if websocket else "tcp")
    if websocket:
        c.ws_set_options(path="/mqtt")
    if ctx is not None:
        c.tls_set_context(ctx)
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    try:
        c.connect("127.0.0.1", port, keepalive=60)
    except Exception as e:  # noqa: BLE001 (paho raises many kinds)
        raise Failure(f"paho could not connect to port {port} ({client_id}): {e!r}") from e
    c.loop_start()
    try:
        if not connected.wait(TIMEOUT):
            raise Failure(f"no CONNACK on port {port} ({client_id}) within {TIMEOUT} s")
        info = c.publish(TOPIC, b"x" * payload, qos=1)
        info.wait_for_publish(TIMEOUT)
        if not info.is_published():
            raise Failure(f"no PUBACK on port {port} ({client_id}) within {TIMEOUT} s")
        sock = c.socket()
        raw = getattr(sock, "_socket", sock)  # the WebSocket wrapper keeps the TCP socket inside
        facts = {"client_port": raw.getsockname()[1], "server_port": port}
        if isinstance(raw, ssl.SSLSocket):
            facts.update(client_python_reused=raw.session_reused, session=raw.session,
                         python_cipher=raw.cipher()[0], python_version=raw.version())
        c.disconnect()
    finally:
        c.loop_stop()
    time.sleep(0.2)  # let the FINs pass before the next connection
    return facts


def coap_get(port, taken, tag):
    """One GET of the server's "/" over DTLS (PSK) to port, and the same GET
    in the clear to port-1 (the plaintext the DTLS records carry)."""
    _, cli = coap_tools()
    facts = {}
    for key, scheme, p in (("client_port", "coaps", port), ("plain_client_port", "coap", port - 1)):
        lport = free_port(taken)
        out = run([cli, "-u", PSK_IDENTITY, "-k", PSK_KEY, "-p", str(lport),
                   "-B", str(TIMEOUT // 2), "-m", "get", f"{scheme}://127.0.0.1:{p}/"],
                  timeout=TIMEOUT)
        if not out.strip():
            raise Failure(f"coap-client ({tag}) got no response from {scheme} port {p}")
        facts[key] = lport
    return facts


# ---------------------------------------------------------------- the cases

TLS_CASES = {
    # case: (listener, TLS version, client certificate, TLS 1.2 cipher list, what)
    "tls12_ecdsa": ("tls12_ecdsa", "1.2", False, None,
                    "TLS 1.2 full handshake, ECDSA P-256 chain of 2"),
    "tls12_ecdsa_resumed": ("tls12_ecdsa", "1.2", False, None,
                            "TLS 1.2 abbreviated handshake (session of the previous connection)"),
    "tls13_ecdsa": ("tls13_ecdsa", "1.3", False, None,
                    "TLS 1.3 full handshake, ECDSA P-256 chain of 2"),
    "tls13_ecdsa_resumed": ("tls13_ecdsa", "1.3", False, None,
                            "TLS 1.3 PSK resumption (ticket of the previous connection)"),
    "tls12_rsa": ("tls12_rsa", "1.2", False, None, "TLS 1.2 full handshake, RSA-2048 leaf"),
    "tls13_rsa": ("tls13_rsa", "1.3", False, None, "TLS 1.3 full handshake, RSA-2048 leaf"),
    "tls12_mtls": ("tls12_mtls", "1.2", True, None,
                   "TLS 1.2 full handshake with a client certificate (ECDSA, chain of 2)"),
    "tls13_mtls": ("tls13_mtls", "1.3", True, None,
                   "TLS 1.3 full handshake with a client certificate (ECDSA, chain of 2)"),
    "tls12_cbc": ("tls12_ecdsa", "1.2", False, "ECDHE-ECDSA-AES128-SHA256",
                  "TLS 1.2 full handshake, AES-128-CBC-SHA256 forced by the client"),
}


def collect(d, reps, payload, certs):
    """Start the peers, capture, run every case reps times; (pcap, runs, ports)."""
    taken = set()
    keylog = os.path.join(d, "keylog.txt")
    ports = start_mosquitto(d, certs, taken)
    ws_port = start_websockify(d, ports["plain"], taken)
    wss_port = start_websockify(d, ports["plain"], taken, certs)
    coap_port = start_coap_server(d, taken)
    tls_ports = [p for n, p in ports.items() if n != "plain"]
    cap, pcap = start_capture(d, tls_ports + [ws_port, wss_port], [coap_port, coap_port - 1])
    runs = {case: [] for case in list(TLS_CASES) + ["websocket", "wss", "dtls_psk"]}
    paho_resumes = []
    for rep in range(reps):
        for case, (listener, version, mutual, ciphers, _) in TLS_CASES.items():
            if case.endswith("_resumed"):
                continue
            ctx = tls_context(certs, keylog, version, mutual, ciphers)
            facts = mqtt_session(f"calib-{case}-{rep}", ports[listener], payload, ctx)
            runs[case].append(facts)
            if case + "_resumed" in TLS_CASES:
                # paho by itself: a second connection with a fresh context
                plain = mqtt_session(f"calib-{case}-again-{rep}", ports[listener], payload,
                                     tls_context(certs, keylog, version))
                paho_resumes.append(plain["client_python_reused"])
                runs.setdefault("_ignored", []).append(plain)
                # the same context offering the saved session
                ctx.session = facts["session"]
                runs[case + "_resumed"].append(
                    mqtt_session(f"calib-{case}-resumed-{rep}", ports[listener], payload, ctx))
        runs["websocket"].append(mqtt_session(f"calib-ws-{rep}", ws_port, payload, websocket=True))
        runs["wss"].append(mqtt_session(f"calib-wss-{rep}", wss_port, payload,
                                        tls_context(certs, keylog, "1.3"), websocket=True))
        runs["dtls_psk"].append(coap_get(coap_port, taken, f"rep {rep}"))
    stop_capture(cap)
    for facts in [f for v in runs.values() for f in v]:
        facts.pop("session", None)
    runs.pop("_ignored", None)
    info = {"tls_ports": tls_ports, "ws_port": ws_port, "wss_port": wss_port,
            "coap_port": coap_port,
            "coap_plain_port": coap_port - 1, "keylog": keylog,
            "paho_resumes_by_itself": any(paho_resumes)}
    return pcap, runs, info


# ---------------------------------------------------------------- reading the capture

HANDSHAKE_NAMES = {
    0: "hello_request", 1: "client_hello", 2: "server_hello", 3: "hello_verify_request",
    4: "new_session_ticket", 8: "encrypted_extensions", 11: "certificate",
    12: "server_key_exchange", 13: "certificate_request", 14: "server_hello_done",
    15: "certificate_verify", 16: "client_key_exchange", 20: "finished",
}
CONTENT_NAMES = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data"}
MQTT_NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 12: "PINGREQ",
              13: "PINGRESP", 14: "DISCONNECT"}


def aslist(x):
    return [] if x is None else x if isinstance(x, list) else [x]


def values(obj, key):
    """Every value of key anywhere inside obj (tshark JSON), in order."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                out.extend(aslist(v))
            else:
                out.extend(values(v, key))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(values(v, key))
    return out


def tshark_json(pcap, opts, display_filter, layers):
    out = run(["tshark", "-r", pcap, *opts, "-Y", display_filter, "-T", "json",
               "--no-duplicate-keys", "-J", " ".join(layers)], timeout=120)
    return [p["_source"]["layers"] for p in json.loads(out or "[]")]


def suite_names():
    """{suite id: (IANA name, OpenSSL name)} from this OpenSSL."""
    names = {}
    text = run(["openssl", "ciphers", "-V", "-stdname", "ALL:COMPLEMENTOFALL:PSK:@SECLEVEL=0"])
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0].startswith("0x"):
            hi, lo = parts[0].split(",")
            names[int(hi, 16) << 8 | int(lo, 16)] = (parts[2], parts[4])
    return names


def mqtt_bytes(layer):
    """Bytes of one MQTT packet from tshark's mqtt layer: fixed header + remaining."""
    n = int(values(layer, "mqtt.len")[0])
    varint = 1 if n < 128 else 2 if n < 16384 else 3 if n < 2097152 else 4
    return 1 + varint + n


def record_view(rec, proto):
    """(inner content type, outer length, [handshake types])."""
    p = proto
    ctype = int(aslist(rec.get(f"{p}.record.content_type"))[0])
    length = int(aslist(rec.get(f"{p}.record.length"))[0])
    hs = [int(t) for t in values(rec.get(f"{p}.handshake"), f"{p}.handshake.type")]
    if ctype == 22 and not hs:
        hs = [-1]  # encrypted handshake message (DTLS Finished): type unknown
    return ctype, length, hs


def label(ctype, hs):
    if ctype == 22:
        return ["handshake:" + (HANDSHAKE_NAMES.get(t, str(t)) if t >= 0 else "encrypted")
                for t in hs]
    return [CONTENT_NAMES.get(ctype, str(ctype))]


def flights_of(records, handshake_header):
    """Group handshake/CCS records into flights: runs in one direction
    (application records in between do not end a flight)."""
    flights = []
    for r in records:
        if r["ctype"] not in (20, 22):
            continue
        if not flights or flights[-1]["dir"] != r["dir"]:
            flights.append({"dir": r["dir"], "records": 0, "record_bytes": 0,
                            "packets": set(), "content": [], "first": r["seq"]})
        f = flights[-1]
        f["records"] += 1
        f["record_bytes"] += r["length"] + handshake_header
        f["packets"].add(r["frame"])
        f["content"] += label(r["ctype"], r["hs"])
    return flights


def round_trips(records, flights):
    """Server flights completed before the client's first application record;
    a flight of NewSessionTickets alone (TLS 1.3, after the handshake) is
    not one the client waits for."""
    first_app = next((r["seq"] for r in records if r["dir"] == "c" and r["ctype"] == 23), None)
    if first_app is None:
        return None
    return sum(1 for f in flights if f["dir"] == "s" and f["first"] < first_app
               and set(f["content"]) != {"handshake:new_session_ticket"})


def secure_connection(frames, port_key, proto, client_port, suites, header):
    """One TLS connection (TCP) or DTLS association (UDP) from tshark's frames."""
    records, payloads, seq = [], {}, 0
    for fr in frames:
        t = fr[port_key[0]]
        src = int(aslist(t[f"{port_key[0]}.srcport"])[0])
        d = "c" if src == client_port else "s"
        payloads[fr["frame"]["frame.number"]] = (d, int(aslist(t.get(port_key[1], "0"))[0]))
        if not aslist(fr.get(proto)):
            continue
        app_layers = (port_key[2](fr) if callable(port_key[2])
                      else aslist(fr.get(port_key[2])) if port_key[2] else [])
        app_recs = []
        for layer in aslist(fr.get(proto)):
            for rec in aslist(layer.get(f"{proto}.record")):
                if not isinstance(rec, dict) or f"{proto}.record.length" not in rec:
                    continue
                ctype, length, hs = record_view(rec, proto)
                r = {"dir": d, "ctype": ctype, "length": length, "hs": hs, "seq": seq,
                     "frame": fr["frame"]["frame.number"], "raw": rec}
                seq += 1
                records.append(r)
                if ctype == 23:
                    app_recs.append(r)
        if app_layers and len(app_layers) == len(app_recs):
            for r, layer in zip(app_recs, app_layers):
                r["app"] = layer
    flights = flights_of(records, header)
    out_flights = []
    for f in flights:
        tcp = sum(payloads[n][1] for n in sorted(f.pop("packets")))
        out_flights.append({"dir": f["dir"], "records": f["records"],
                            "record_bytes": f["record_bytes"],
                            "payload_bytes": tcp, "content": f["content"]})
    hs_msgs = [(r, m) for r in records for m in aslist(r["raw"].get(f"{proto}.handshake"))]
    server_hello = next((m for r, m in hs_msgs
                         if isinstance(m, dict) and m.get(f"{proto}.handshake.type") == "2"), None)
    suite_id = int(server_hello[f"{proto}.handshake.ciphersuite"], 16) if server_hello else None
    sv = values(server_hello, f"{proto}.handshake.extensions.supported_version")
    version = {"0x0304": "TLSv1.3", "0x0303": "TLSv1.2", "0xfefd": "DTLSv1.2"}.get(
        sv[0] if sv else server_hello and server_hello.get(f"{proto}.handshake.version"), "?")

    def certs(d):
        return [int(x) for r, m in hs_msgs if r["dir"] == d and isinstance(m, dict)
                and m.get(f"{proto}.handshake.type") == "11"
                for x in values(m, f"{proto}.handshake.certificate_length")]

    return {
        "client_port": client_port,
        "version": version,
        "cipher_suite": suites.get(suite_id, (str(suite_id),))[0],
        "cipher_suite_id": suite_id,
        "resumed": resumed(version, server_hello, hs_msgs, proto),
        "round_trips": round_trips(records, flights),
        "flights": out_flights,
        "flights_record_bytes": [f["record_bytes"] for f in out_flights],
        "handshake_bytes_c": sum(f["record_bytes"] for f in out_flights if f["dir"] == "c"),
        "handshake_bytes_s": sum(f["record_bytes"] for f in out_flights if f["dir"] == "s"),
        "certificates_s": certs("s"),
        "certificates_c": certs("c"),
        "_records": records,
    }


def resumed(version, server_hello, hs_msgs, proto):
    """TLS 1.3: the ServerHello accepts a pre_shared_key (extension 41);
    (D)TLS 1.2: the server skipped to its Finished (no ServerHelloDone)."""
    if server_hello is None:
        return False
    if version == "TLSv1.3":
        return "41" in values(server_hello, f"{proto}.handshake.extension.type")
    return not any(isinstance(m, dict) and m.get(f"{proto}.handshake.type") == "14"
                   for _, m in hs_msgs)


def uniform(xs):
    xs = [x for x in xs if x is not None]
    return xs[0] if xs and all(x == xs[0] for x in xs) else None


def tls_opts(info):
    opts = ["-o", f"tls.keylog_file:{info['keylog']}"]
    for p in info["tls_ports"]:
        opts += ["-d", f"tcp.port=={p},tls", "-d", f"tls.port=={p},mqtt"]
    return opts


def malformed(pcap, info):
    """Frames tshark finds malformed or warns about, with every decode-as
    the analysis uses: [(frame number, the protocols in it)]. TCP's own
    warnings in frames that carry none of the protocols measured are not
    counted: paho closes its TLS socket with the server's close_notify
    unread, so the kernel sends a RST, and loopback ACKs carry D-SACKs."""
    opts = tls_opts(info) + ["-d", f"tcp.port=={info['ws_port']},http",
                             "-d", f"tcp.port=={info['wss_port']},tls",
                             "-d", f"tls.port=={info['wss_port']},http",
                             "-d", f"udp.port=={info['coap_port']},dtls",
                             "-d", f"udp.port=={info['coap_plain_port']},coap"]
    out = run(["tshark", "-r", pcap, *opts, "-Y",
               "_ws.malformed || (_ws.expert.severity >= warning && "
               "(tls || dtls || http || websocket || mqtt || coap))",
               "-T", "fields", "-e", "frame.number", "-e", "frame.protocols"], timeout=120)
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def analyse_tls(pcap, info, runs, suites):
    opts = tls_opts(info)
    frames = tshark_json(pcap, opts, "tcp.len > 0", ["frame", "tcp", "tls", "mqtt"])
    by_pair = {}  # the kernel may give one client port to connections to two listeners
    for fr in frames:
        pair = tuple(sorted((int(fr["tcp"]["tcp.srcport"]), int(fr["tcp"]["tcp.dstport"]))))
        by_pair.setdefault(pair, []).append(fr)
    for case in TLS_CASES:
        for i, facts in enumerate(runs[case]):
            pair = tuple(sorted((facts["client_port"], facts["server_port"])))
            conn = secure_connection(by_pair.get(pair, []),
                                     ("tcp", "tcp.len", "mqtt"), "tls",
                                     facts["client_port"], suites, 5)
            apps = []
            mqtt_total = 0
            for r in conn.pop("_records"):
                if r["ctype"] != 23:
                    continue
                mqtt_total += 1 if "app" in r else 0
                if "app" not in r:
                    continue
                kind = int(values(r["app"], "mqtt.msgtype")[0])
                mb = mqtt_bytes(r["app"])
                apps.append({"dir": r["dir"], "mqtt": MQTT_NAMES.get(kind, str(kind)),
                             "mqtt_bytes": mb, "record_length": r["length"],
                             "record_bytes": r["length"] + 5, "overhead": r["length"] + 5 - mb})
            if not conn["flights"]:
                raise Failure(f"{case} rep {i}: no TLS records for client port "
                              f"{facts['client_port']} in the capture")
            conn["app_records"] = apps
            conn["overhead"] = uniform([a["overhead"] for a in apps])
            conn["client_python_reused"] = facts.get("client_python_reused")
            conn["server_port"] = facts["server_port"]
            if facts.get("python_version") != conn["version"]:
                raise Failure(f"{case}: tshark saw {conn['version']}, "
                              f"python negotiated {facts.get('python_version')}")
            runs[case][i] = conn


def ws_frames(payload):
    """Split a TCP payload into WebSocket frames (RFC 6455 §5.2):
    [(header bytes, masked, opcode, unmasked payload)]; None if it doesn't parse."""
    out, i = [], 0
    while i < len(payload):
        if i + 2 > len(payload):
            return None
        b0, b1 = payload[i], payload[i + 1]
        n, h = b1 & 0x7F, 2
        if n == 126:
            n, h = int.from_bytes(payload[i + 2:i + 4], "big"), 4
        elif n == 127:
            n, h = int.from_bytes(payload[i + 2:i + 10], "big"), 10
        masked = bool(b1 & 0x80)
        key = payload[i + h:i + h + 4] if masked else b""
        h += 4 if masked else 0
        body = payload[i + h:i + h + n]
        if len(body) != n:
            return None
        if masked:
            body = bytes(c ^ key[j % 4] for j, c in enumerate(body))
        out.append((h, masked, b0 & 0x0F, body))
        i += h + n
    return out


def analyse_websocket(pcap, info, runs):
    port = info["ws_port"]
    frames = tshark_json(pcap, ["-d", f"tcp.port=={port},http"], "tcp.len > 0",
                         ["frame", "tcp", "http", "websocket"])
    payload_rows = run(["tshark", "-r", pcap, "-Y", f"tcp.port=={port} && tcp.len > 0",
                        "-T", "fields", "-e", "frame.number", "-e", "tcp.payload"], timeout=120)
    raw = {}
    for line in payload_rows.splitlines():
        num, _, hexdata = line.partition("\t")
        raw[num.strip()] = bytes.fromhex(hexdata.strip().replace(":", ""))
    for i, facts in enumerate(runs["websocket"]):
        cp = facts["client_port"]
        rep = {"client_port": cp, "frames": []}
        order = []
        for fr in frames:
            t = fr["tcp"]
            if {cp, port} != {int(t["tcp.srcport"]), int(t["tcp.dstport"])}:
                continue
            d = "c" if int(t["tcp.srcport"]) == cp else "s"
            data = raw[fr["frame"]["frame.number"]]
            http = fr.get("http")
            if http is not None and "upgrade_request_bytes" not in rep and d == "c":
                order.append("upgrade_request")
                rep["upgrade_request_bytes"] = len(data)
                rep["request_host"] = header(data, b"host")
                rep["request_subprotocol"] = header(data, b"sec-websocket-protocol")
                continue
            if http is not None and "upgrade_response_bytes" not in rep and d == "s":
                order.append("upgrade_response")
                rep["upgrade_response_bytes"] = len(data)
                rep["response_subprotocol"] = header(data, b"sec-websocket-protocol")
                rep["response_status"] = data.split(b"\r\n", 1)[0].decode("latin-1")
                continue
            parsed = ws_frames(data)
            if parsed is None or "websocket" not in fr:
                raise Failure(f"websocket rep {i}: frame {fr['frame']['frame.number']} "
                              "is not whole WebSocket frames")
            for h, masked, opcode, body in parsed:
                order.append(d)
                kind = body[0] >> 4 if opcode == 2 and body else None
                rep["frames"].append({"dir": d, "opcode": opcode, "masked": masked,
                                      "header_bytes": h, "payload_bytes": len(body),
                                      "mqtt": MQTT_NAMES.get(kind, str(kind)) if kind else None})
        if "upgrade_response_bytes" not in rep or not rep["frames"]:
            raise Failure(f"websocket rep {i}: no upgrade or no frames for port {cp}")
        rep["round_trips_to_mqtt"] = upgrade_wait(order)
        rep["frame_header_c"] = uniform([f["header_bytes"] for f in rep["frames"] if f["dir"] == "c" and f["opcode"] == 2])
        rep["frame_header_s"] = uniform([f["header_bytes"] for f in rep["frames"] if f["dir"] == "s" and f["opcode"] == 2])
        rep["client_frames_masked"] = all(f["masked"] for f in rep["frames"] if f["dir"] == "c")
        rep["server_frames_masked"] = any(f["masked"] for f in rep["frames"] if f["dir"] == "s")
        runs["websocket"][i] = rep


def analyse_wss(pcap, info, runs, suites):
    """MQTT over WebSocket over TLS 1.3 (websockify's TLS): the TLS flights
    as for the TLS cases, then per application record what it carries (the
    upgrade, or a WebSocket frame and the MQTT packet in it) and what the
    record costs beyond the MQTT packet (TLS record + WebSocket header)."""
    port = info["wss_port"]
    opts = ["-o", f"tls.keylog_file:{info['keylog']}", "-d", f"tcp.port=={port},tls",
            "-d", f"tls.port=={port},http"]
    frames = tshark_json(pcap, opts, f"tcp.port=={port} && tcp.len > 0",
                         ["frame", "tcp", "tls", "http", "websocket"])

    def units(fr):
        out = [{"http": h} for h in aslist(fr.get("http"))]
        return out + [{"ws": w} for w in aslist(fr.get("websocket"))]

    for i, facts in enumerate(runs["wss"]):
        cp = facts["client_port"]
        mine = [fr for fr in frames
                if {cp, port} == {int(fr["tcp"]["tcp.srcport"]), int(fr["tcp"]["tcp.dstport"])}]
        conn = secure_connection(mine, ("tcp", "tcp.len", units), "tls", cp, suites, 5)
        apps = []
        for r in conn.pop("_records"):
            if r["ctype"] != 23:
                continue
            unit = r.get("app", {})
            if "http" in unit:
                what = "upgrade_request" if r["dir"] == "c" else "upgrade_response"
                apps.append({"dir": r["dir"], "carries": what, "record_bytes": r["length"] + 5})
            elif "ws" in unit:
                w = unit["ws"]
                n = int(values(w, "websocket.payload_length")[0])
                if values(w, "websocket.opcode")[:1] == ["8"]:
                    # websockify's Close, when its teardown falls inside
                    # the capture window (timing): not an MQTT packet
                    apps.append({"dir": r["dir"], "carries": "websocket_close",
                                 "record_bytes": r["length"] + 5})
                    continue
                apps.append({"dir": r["dir"], "carries": "websocket_frame",
                             "masked": values(w, "websocket.mask")[:1] == ["1"],
                             "mqtt_bytes": n, "record_bytes": r["length"] + 5,
                             "overhead": r["length"] + 5 - n})
        if not conn["flights"] or len(apps) < 4:
            raise Failure(f"wss rep {i}: no TLS handshake or WebSocket records for port {cp}")
        conn["app_records"] = apps
        conn["upgrade_request_record_bytes"] = next(
            (a["record_bytes"] for a in apps if a["carries"] == "upgrade_request"), None)
        conn["upgrade_response_record_bytes"] = next(
            (a["record_bytes"] for a in apps if a["carries"] == "upgrade_response"), None)
        conn["round_trips_to_mqtt"] = conn["round_trips"] + upgrade_wait(
            [a["carries"] if a["carries"] != "websocket_frame" else a["dir"] for a in apps
             if a["carries"] != "websocket_close"])
        frames_only = [a for a in apps if a["carries"] == "websocket_frame"]
        conn["overhead_c"] = uniform([a["overhead"] for a in frames_only if a["dir"] == "c"])
        conn["overhead_s"] = uniform([a["overhead"] for a in frames_only if a["dir"] == "s"])
        runs["wss"][i] = conn


def upgrade_wait(seq):
    """1 when the client's first WebSocket frame ("c") follows the upgrade
    response in seq (the client waited a round trip for it), else 0."""
    first = seq.index("c") if "c" in seq else len(seq)
    return 1 if "upgrade_response" in seq[:first] else 0


def header(data, name):
    """An HTTP header's value (case-insensitive name) in a request/response."""
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name:
            return v.strip().decode("latin-1")
    return None


def analyse_dtls(pcap, info, runs, suites):
    """DTLS records per datagram; the application records' plaintext is the
    same CoAP exchange sent in the clear (libcoap's PSK suites use ECDHE, so
    the PSK alone does not let tshark decrypt them)."""
    port, plain_port = info["coap_port"], info["coap_plain_port"]
    frames = tshark_json(pcap, ["-d", f"udp.port=={port},dtls"], f"udp.port=={port}",
                         ["frame", "udp", "dtls"])
    for fr in frames:  # a datagram's payload, as TCP's is given
        fr["udp"]["udp.payload_len"] = str(int(fr["udp"]["udp.length"]) - 8)
    plain = run(["tshark", "-r", pcap, "-d", f"udp.port=={plain_port},coap",
                 "-Y", f"udp.port=={plain_port} && coap", "-T", "fields", "-e", "udp.srcport",
                 "-e", "udp.dstport", "-e", "udp.length", "-e", "coap.code"], timeout=120)
    plain_rows = [line.split("\t") for line in plain.splitlines() if line.strip()]
    for i, facts in enumerate(runs["dtls_psk"]):
        cp = facts["client_port"]
        mine = [fr for fr in frames
                if cp in (int(fr["udp"]["udp.srcport"]), int(fr["udp"]["udp.dstport"]))]
        conn = secure_connection(mine, ("udp", "udp.payload_len", None), "dtls", cp, suites, 13)
        pp = facts["plain_client_port"]
        msgs = {"c": [], "s": []}
        for src, dst, length, code in plain_rows:
            if pp in (int(src), int(dst)):
                msgs["c" if int(src) == pp else "s"].append((int(length) - 8, coap_code(code)))
        apps = []
        for r in conn.pop("_records"):
            if r["ctype"] != 23:
                continue
            if not msgs[r["dir"]]:
                raise Failure(f"dtls rep {i}: more application records than plain CoAP messages")
            size, code = msgs[r["dir"]].pop(0)
            apps.append({"dir": r["dir"], "coap": code, "coap_bytes": size,
                         "record_length": r["length"], "record_bytes": r["length"] + 13,
                         "overhead": r["length"] + 13 - size})
        if not conn["flights"] or not apps:
            raise Failure(f"dtls rep {i}: no DTLS handshake or records for client port {cp}")
        conn["datagrams"] = len(mine)
        conn["cookie"] = any("handshake:hello_verify_request" in f["content"]
                             for f in conn["flights"])
        conn["app_records"] = apps
        conn["overhead"] = uniform([a["overhead"] for a in apps])
        runs["dtls_psk"][i] = conn


def coap_code(code):
    n = int(code)
    names = {1: "GET", 2: "POST", 3: "PUT", 4: "DELETE"}
    return names.get(n, f"{n >> 5}.{n & 31:02d}")


# ---------------------------------------------------------------- summary and output

SUMMARY_FIELDS = ["round_trips", "handshake_bytes_c", "handshake_bytes_s", "overhead",
                  "overhead_c", "overhead_s", "upgrade_request_record_bytes",
                  "upgrade_response_record_bytes", "round_trips_to_mqtt",
                  "upgrade_request_bytes", "upgrade_response_bytes", "frame_header_c",
                  "frame_header_s", "datagrams"]


def spread(xs):
    xs = [x for x in xs if isinstance(x, (int, float)) and not isinstance(x, bool)]
    if not xs:
        return None
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs)}


def summarise(reps):
    out = {}
    for f in SUMMARY_FIELDS:
        s = spread([r.get(f) for r in reps])
        if s is not None:
            out[f] = s
    lists = [r.get("flights_record_bytes") for r in reps if r.get("flights_record_bytes")]
    if lists and all(len(x) == len(lists[0]) for x in lists):
        out["flights_record_bytes"] = [spread(col) for col in zip(*lists)]
    return out


def versions():
    def first_line(argv, pick=None):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            return None
        lines = [x for x in (r.stdout + r.stderr).splitlines() if x.strip()]
        hit = [x for x in lines if pick is None or pick in x]
        return hit[0].strip() if hit else None

    import paho.mqtt
    srv, _ = coap_tools()
    return {
        "mosquitto": first_line([find("mosquitto"), "-h"], "version"),
        "openssl": first_line(["openssl", "version"]),
        "python_ssl": ssl.OPENSSL_VERSION,
        "paho_mqtt": paho.mqtt.__version__,
        "libcoap": first_line([srv, "-?"], "v4") or first_line([srv, "-?"]),
        "websockify": first_line(["dpkg-query", "-W", "-f", "${Version}", "websockify"])
        or first_line([find("websockify"), "--help"], "version"),
        "tshark": first_line(["tshark", "-v"], "TShark"),
        "python": sys.version.split()[0],
    }


def facts_of(cases):
    def med(case, field):
        s = cases[case]["summary"].get(field)
        return s["median"] if s else None

    def first(case, field):
        return cases[case]["reps"][0].get(field)

    cbc = {}
    for a in first("tls12_cbc", "app_records"):
        cbc[str(a["mqtt_bytes"])] = a["overhead"]
    tls = [c for c in cases if cases[c]["kind"] in ("tls", "wss")]
    return {
        "tls13_overhead": med("tls13_ecdsa", "overhead"),
        "tls12_overhead": med("tls12_ecdsa", "overhead"),
        "tls13_suite": first("tls13_ecdsa", "cipher_suite"),
        "tls12_suite": first("tls12_ecdsa", "cipher_suite"),
        "tls12_cbc_suite": first("tls12_cbc", "cipher_suite"),
        "tls12_cbc_overheads": cbc,
        "dtls_overhead": med("dtls_psk", "overhead"),
        "dtls_suite": first("dtls_psk", "cipher_suite"),
        "dtls_cookie": first("dtls_psk", "cookie"),
        "round_trips": {c: med(c, "round_trips") for c in tls + ["dtls_psk"]},
        "resumed": {c: all(r["resumed"] for r in cases[c]["reps"]) for c in tls + ["dtls_psk"]},
        "handshake_bytes": {c: {"c": med(c, "handshake_bytes_c"), "s": med(c, "handshake_bytes_s")}
                            for c in tls + ["dtls_psk"]},
        "ws_upgrade_request_bytes": med("websocket", "upgrade_request_bytes"),
        "ws_upgrade_response_bytes": med("websocket", "upgrade_response_bytes"),
        "ws_request_subprotocol": first("websocket", "request_subprotocol"),
        "ws_response_subprotocol": first("websocket", "response_subprotocol"),
        "ws_frame_header_c": med("websocket", "frame_header_c"),
        "ws_frame_header_s": med("websocket", "frame_header_s"),
        "ws_round_trips_to_mqtt": med("websocket", "round_trips_to_mqtt"),
        "wss_round_trips_to_mqtt": med("wss", "round_trips_to_mqtt"),
        "wss_overhead_c": med("wss", "overhead_c"),
        "wss_overhead_s": med("wss", "overhead_s"),
        "wss_suite": first("wss", "cipher_suite"),
        "ws_client_frames_masked": all(r["client_frames_masked"] for r in cases["websocket"]["reps"]),
        "ws_server_frames_masked": any(r["server_frames_masked"] for r in cases["websocket"]["reps"]),
    }


def fmt_spread(s):
    if s is None:
        return "-"
    lo, m, hi = s["min"], s["median"], s["max"]
    m = int(m) if float(m).is_integer() else m
    return f"{m}" if lo == hi else f"{m} ({lo}–{hi})"


def table(result):
    """The readable table (also the one docs/security.md shows)."""
    lines = []
    cases = result["cases"]
    lines.append(f"# {result['mode']} mode, {result['reps']} connection(s) per case, "
                 f"PUBLISH payload {result['payload_bytes']} bytes; median (min–max) where they differ")
    lines.append("")
    lines.append("| case | version | cipher suite | RTTs | flights: record bytes (c/s alternating, "
                 "from ClientHello) | handshake bytes c→s / s→c | record overhead |")
    lines.append("|---|---|---|---|---|---|---|")
    for name, c in cases.items():
        if c["kind"] == "websocket":
            continue
        r0 = c["reps"][0]
        sm = c["summary"]
        flights = " / ".join(f"{f['dir']} {fmt_spread(s)}" for f, s in
                             zip(r0["flights"], sm.get("flights_record_bytes", [])))
        if c["kind"] == "wss":
            over = (f"c {fmt_spread(sm.get('overhead_c'))} / s {fmt_spread(sm.get('overhead_s'))}"
                    " (TLS + WebSocket header)")
        elif "overhead" in sm:
            over = fmt_spread(sm.get("overhead"))
        else:
            over = "varies: " + ", ".join(f"{a['mqtt']} {a['mqtt_bytes']}→{a['overhead']}"
                                          for a in r0["app_records"])
        lines.append(f"| {name} | {r0['version']} | {r0['cipher_suite']} | "
                     f"{fmt_spread(sm.get('round_trips'))} | {flights} | "
                     f"{fmt_spread(sm.get('handshake_bytes_c'))} / "
                     f"{fmt_spread(sm.get('handshake_bytes_s'))} | {over} |")
    lines.append("")
    lines.append("| case | flight contents |")
    lines.append("|---|---|")
    for name, c in cases.items():
        if c["kind"] == "websocket":
            continue
        lines.append(f"| {name} | " + " ‖ ".join(
            f"{f['dir']}: " + ", ".join(x.replace("handshake:", "") for x in f["content"])
            for f in c["reps"][0]["flights"]) + " |")
    lines.append("")
    ws = cases["websocket"]
    r0, sm = ws["reps"][0], ws["summary"]
    lines.append("| WebSocket (websockify) | value |")
    lines.append("|---|---|")
    lines.append("| round trips before CONNECT: WS / WSS | "
                 f"{fmt_spread(sm.get('round_trips_to_mqtt'))} / "
                 f"{fmt_spread(cases['wss']['summary'].get('round_trips_to_mqtt'))} |")
    lines.append(f"| upgrade request bytes (c→s) | {fmt_spread(sm.get('upgrade_request_bytes'))} |")
    lines.append(f"| upgrade response bytes (s→c) | {fmt_spread(sm.get('upgrade_response_bytes'))} |")
    lines.append(f"| Sec-WebSocket-Protocol request / response | {r0.get('request_subprotocol')} / "
                 f"{r0.get('response_subprotocol')} |")
    wss = cases["wss"]["summary"]
    lines.append("| WSS: upgrade request / response in TLS 1.3 records (bytes) | "
                 f"{fmt_spread(wss.get('upgrade_request_record_bytes'))} / "
                 f"{fmt_spread(wss.get('upgrade_response_record_bytes'))} |")
    lines.append("| frame header bytes per MQTT packet | " + ", ".join(
        f"{f['dir']} {f['mqtt']} ({f['payload_bytes']} B): {f['header_bytes']}"
        + (" masked" if f["masked"] else "") for f in r0["frames"]) + " |")
    lines.append("")
    lines.append("| certificate | key | DER bytes |")
    lines.append("|---|---|---|")
    for n, c in result["certificates"].items():
        lines.append(f"| {n} | {c['key']} | {c['der_bytes']} |")
    lines.append("")
    lines.append("Versions: " + "; ".join(f"{k} {v}" for k, v in result["versions"].items()))
    lines.append(f"paho-mqtt resumes a TLS session by itself: {result['facts']['paho_resumes_by_itself']}")
    lines.append(f"frames tshark finds malformed or warns about: {len(result['facts']['malformed'])}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one connection per case (the CI form)")
    ap.add_argument("--reps", type=int, default=5, help="connections per case in full mode")
    ap.add_argument("--payload", type=int, default=100, help="PUBLISH payload bytes")
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--keep", help="keep certificates, key log, pcap and logs in this directory")
    a = ap.parse_args()
    reps = 1 if a.quick else a.reps
    if not 1 <= reps <= 50 or not 0 <= a.payload <= 60000:
        ap.error("--reps must be 1..50 and --payload 0..60000")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    d = a.keep or tempfile.mkdtemp(prefix="qossim-calib-")
    os.makedirs(d, exist_ok=True)
    try:
        result = measure(d, reps, a.payload, quick=a.quick)
    except Failure as e:
        print(f"security-calibrate: {e}", file=sys.stderr)
        for log in ("mosquitto.log", "websockify.log", "coap-server.log", "dumpcap.log"):
            p = os.path.join(d, log)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    tail = f.read()[-1500:]
                print(f"--- {log}:\n{tail}", file=sys.stderr)
        return 1
    finally:
        kill_all()
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(table(result))
    return 0


def measure(d, reps, payload, quick):
    """Run everything in directory d; the result (the JSON's content)."""
    find("tshark")
    try:
        import paho.mqtt
    except ImportError as e:
        raise Failure(f"{sys.executable} cannot import paho.mqtt "
                      "(pip install 'paho-mqtt>=2,<3')") from e
    if not paho.mqtt.__version__.startswith("2."):
        raise Failure(f"paho-mqtt {paho.mqtt.__version__} found; this script needs 2.x")
    certs = make_certs(d)
    try:
        pcap, runs, info = collect(d, reps, payload, certs)
    finally:
        kill_all()
    suites = suite_names()
    try:
        analyse_tls(pcap, info, runs, suites)
        analyse_websocket(pcap, info, runs)
        analyse_wss(pcap, info, runs, suites)
        analyse_dtls(pcap, info, runs, suites)
    except Failure as e:
        raise Failure(f"reading the capture {pcap}: {e}") from e
    descriptions = {c: v[4] for c, v in TLS_CASES.items()}
    descriptions["websocket"] = ("MQTT over WebSocket through websockify to mosquitto's "
                                 "plain listener (no TLS)")
    descriptions["wss"] = ("MQTT over WebSocket over TLS 1.3 (websockify's TLS, the ECDSA "
                           "chain) to mosquitto's plain listener")
    descriptions["dtls_psk"] = "CoAP GET over DTLS 1.2 with a PSK (libcoap client and server)"
    cases = {}
    for c, reps_of in runs.items():
        kind = {"websocket": "websocket", "wss": "wss", "dtls_psk": "dtls"}.get(c, "tls")
        cases[c] = {"kind": kind, "description": descriptions[c], "reps": reps_of,
                    "summary": summarise(reps_of)}
    result = {
        "schema": "qossim-security-calibration/1",
        "mode": "quick" if quick else "full",
        "reps": reps,
        "payload_bytes": payload,
        "versions": versions(),
        "certificates": {n: {"der_bytes": c["der_bytes"], "key": c["kind"]}
                         for n, c in certs.items()},
        "inputs": {"sni": SNI, "psk_identity": PSK_IDENTITY, "psk_hint": PSK_HINT},
        "cases": cases,
    }
    result["facts"] = facts_of(cases)
    result["facts"]["paho_resumes_by_itself"] = info["paho_resumes_by_itself"]
    result["facts"]["malformed"] = malformed(pcap, info)
    return result


if __name__ == "__main__":
    sys.exit(main())
