#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script) and as a new
# machine runs it: installs what the tests need, then lint, build, test.
# Prints the wall time of every stage. A failing stage after the install does
# not stop the script: every stage and every test binary runs
# (--no-fail-fast), the last line is always "N passed, N failed", and the
# exit status is non-zero when anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

T0=$(date +%s)
stage_start=$T0
stage() {
  local now; now=$(date +%s)
  if [ -n "${STAGE:-}" ]; then
    echo "=== stage '$STAGE' took $((now - stage_start)) s"
  fi
  STAGE="$1"; stage_start=$now
  echo "=== stage '$STAGE' (t = $((now - T0)) s)"
}

stage "install test peers"
need_apt=()
command -v tshark >/dev/null 2>&1 || need_apt+=(tshark)
command -v coap-server-notls >/dev/null 2>&1 || need_apt+=(libcoap3-bin)
command -v parallel >/dev/null 2>&1 || need_apt+=(parallel)
# tests/interop_http.rs: curl talks to our HTTP server
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# tests/security_calibration.rs (scripts/security-calibrate.py): openssl
# makes the certificates, websockify puts WebSocket in front of mosquitto
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v websockify >/dev/null 2>&1 || need_apt+=(websockify)
# mosquitto installs into /usr/sbin, which may not be on a non-root PATH.
{ command -v mosquitto || command -v /usr/sbin/mosquitto; } >/dev/null 2>&1 || need_apt+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
# tests/cluster_slurm.rs: docs/cluster.md's Slurm recipe on a private
# single-node cluster (slurmctld, slurmd and munged live in /usr/sbin)
{ command -v slurmctld || command -v /usr/sbin/slurmctld; } >/dev/null 2>&1 || need_apt+=(slurm-wlm)
{ command -v munged || command -v /usr/sbin/munged; } >/dev/null 2>&1 || need_apt+=(munge)
# tests/wasm_parity.rs runs the browser build under Node.js; the build
# needs the wasm32-unknown-unknown target of the machine's toolchain
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown
# tests/report_html.rs renders report.html in headless chromium
{ command -v chromium || command -v chromium-browser; } >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections || true
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# The Debian package may start its own mosquitto service on port 1883; the
# interop tests start private instances on free ports, so it is harmless,
# but stop it where systemd runs (containers usually have no service).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
  ${SUDO:-} systemctl stop mosquitto || true
fi
if ! python3 -c 'import paho.mqtt' >/dev/null 2>&1; then
  python3 -m pip install --quiet 'paho-mqtt>=2,<3' \
    || python3 -m pip install --quiet --break-system-packages 'paho-mqtt>=2,<3'
fi
# tests/interop_mqttsn.rs: the real MQTT-SN client (mqtt_sn_pub, mqtt_sn_sub)
# talks to `qossim gateway`; its checks are for this exact version.
mqttsn12_version='import importlib.metadata as m; assert m.version("mqtt-sn-12") == "1.0.9"'
if ! python3 -c "$mqttsn12_version" >/dev/null 2>&1; then
  python3 -m pip install --quiet 'mqtt-sn-12==1.0.9' \
    || python3 -m pip install --quiet --break-system-packages 'mqtt-sn-12==1.0.9'
fi
# tests/interop_coap.rs: aiocoap-client GETs, PUTs, observes and fetches
# block-wise from our server. 0.4.11 is the last release whose
# `aiocoap-client --observe` keeps observing: from 0.4.12 on its `finally`
# cancels the observation as soon as the first response arrives, so no
# notification is ever shown.
aiocoap_version='import importlib.metadata as m; assert m.version("aiocoap") == "0.4.11"'
if ! python3 -c "$aiocoap_version" >/dev/null 2>&1; then
  python3 -m pip install --quiet 'aiocoap==0.4.11' \
    || python3 -m pip install --quiet --break-system-packages 'aiocoap==0.4.11'
fi
tshark --version | head -n 1
command -v coap-server-notls
{ command -v mosquitto || command -v /usr/sbin/mosquitto; }
command -v mosquitto_sub
command -v curl
command -v openssl websockify
# (slurmctld -V, not sbatch --version: Slurm's clients need a slurm.conf)
"$(command -v slurmctld || command -v /usr/sbin/slurmctld)" -V
{ command -v munged || command -v /usr/sbin/munged; }
{ command -v chromium || command -v chromium-browser; }
python3 -c 'import paho.mqtt; print("paho-mqtt", paho.mqtt.__version__)'
python3 -c 'import importlib.metadata as m; print("mqtt-sn-12", m.version("mqtt-sn-12"))'
python3 -c "$aiocoap_version" && echo "aiocoap 0.4.11"
# pip's console scripts (mqtt_sn_pub, mqtt_sn_sub): the test also looks in
# python3's scripts directory when it is not on PATH.
python3 -c 'import sysconfig, os; d = sysconfig.get_path("scripts"); assert os.path.isfile(os.path.join(d, "mqtt_sn_pub")), d'

# From here on a failure is recorded, not fatal: the rest still runs.
failed_stages=()
check() {
  local name="$1"; shift
  if ! "$@"; then
    echo "=== FAILED: $name"
    failed_stages+=("$name")
  fi
}

stage "format"
check format cargo fmt --all -- --check

stage "clippy"
check clippy cargo clippy --all-targets --quiet -- -D warnings
# the browser build's core, without the `native` feature (src/browser.rs)
check clippy-wasm env CARGO_TARGET_DIR=target/wasm cargo clippy --lib --quiet \
  --target wasm32-unknown-unknown --no-default-features -- -D warnings

stage "build (release)"
check build cargo build --release --all-targets --quiet

stage "build (wasm)"
# the browser build (src/browser.rs, issue 23): the library without its
# `native` feature, for wasm32-unknown-unknown; tests/wasm_parity.rs runs it
check wasm env CARGO_TARGET_DIR=target/wasm cargo rustc --profile wasm --lib \
  --target wasm32-unknown-unknown --no-default-features --crate-type cdylib --quiet
[ -f target/wasm/wasm32-unknown-unknown/wasm/qossim.wasm ] \
  && echo "qossim.wasm: $(stat -c %s target/wasm/wasm32-unknown-unknown/wasm/qossim.wasm) bytes"

stage "tests (release)"
# statistical tests need release speed; every test target runs, even after
# one fails. tests/fuzz_bounded.rs (bounded mutation fuzzing of every decoder,
# ≈ 6 s) runs here; cargo-fuzz runs are by hand (fuzz/README.md)
mkdir -p target
set +e
cargo test --release --quiet --no-fail-fast 2>&1 | tee target/test-output.txt
test_status=${PIPESTATUS[0]}
set -e
[ "$test_status" = 0 ] || { echo "=== FAILED: tests"; failed_stages+=(tests); }

notebooks() {
# notebooks/*.ipynb run headless (nbclient) against the release binary; a
# doctored CSV must make the teaching notebook fail (scripts/test_notebooks.py)
nb_import='import nbclient, nbformat, ipykernel, pandas, matplotlib'
if ! python3 -c "$nb_import" >/dev/null 2>&1; then
  python3 -m pip install --quiet nbclient nbformat ipykernel pandas matplotlib \
    || python3 -m pip install --quiet --break-system-packages nbclient nbformat ipykernel pandas matplotlib
fi
python3 -c "$nb_import" || return 1
local nb_out; nb_out=$(mktemp -d)
QOSSIM_BIN="$PWD/target/release/qossim" QOSSIM_NB_OUT="$nb_out" \
  QOSSIM_COMPARE_REPLICATIONS=2 QOSSIM_COMPARE_DURATION="4 min" \
  python3 scripts/test_notebooks.py || { rm -rf "$nb_out"; return 1; }
rm -rf "$nb_out"
}
stage "notebooks"
check notebooks notebooks

quickstart() {
local out; out=$(mktemp -d)
cargo run --release --quiet -- run --out "$out" --packets --pcap || return 1
for f in runs.csv summary.csv messages.csv packets.csv manifest.json; do
  test -s "$out/$f" || { echo "missing $out/$f"; return 1; }
done
rm -rf "$out"
}
stage "quickstart (cargo run --release)"
check quickstart quickstart

fidelity() {
# The reduced fidelity harness (docs/fidelity.md, issue 14 item 5): real
# paho-mqtt → mosquitto and libcoap across a veth pair between two network
# namespaces with nftables loss, against the simulated twins in
# scenarios/fidelity/ over 40 seeds, at 0 and 10 % loss, 50 messages per
# cell; scripts/fidelity.sh installs what it needs (nftables, iproute2,
# mosquitto, libcoap3-bin, tshark, paho-mqtt). The bounds are
# scripts/fidelity_check.py's; a bound that misses is given up to two more
# independent runs (why: that script's doc string). Each harness run first
# calibrates the twins' processing times to this machine (about 40 s;
# scripts/fidelity_twin_times.py says why).
if [ "$(id -u)" != 0 ] || ! ip netns add qossim-probe-$$ >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then
    echo "fidelity: needs root and network namespaces (CI=true: this is a failure)"
    return 1
  fi
  echo "fidelity: SKIPPED, needs root and network namespaces (sudo scripts/fidelity.sh --reduced)"
  return 0
fi
ip netns del qossim-probe-$$
local out=target/fidelity-ci runs=() k
rm -rf "$out"; mkdir -p "$out"
for k in 1 2 3; do
  if ! QOSSIM_BIN="$PWD/target/release/qossim" FIDELITY_DOC=- \
      scripts/fidelity.sh --reduced --out "$out/run$k" >"$out/run$k.log" 2>&1; then
    tail -n 40 "$out/run$k.log"
    return 1
  fi
  runs+=("$out/run$k/checks.json")
  if python3 scripts/fidelity_check.py "${runs[@]}"; then return 0; fi
  [ "$k" = 3 ] || echo "fidelity: a bound missed in every run so far; one more independent run of the reduced harness"
done
return 1
}
stage "fidelity (reduced harness)"
check fidelity fidelity

regression() {
# Every [[expect]] of scenarios/regression/ must hold (qossim test exits 1
# naming the one that failed, 2 on a broken scenario, 3 on an internal
# error); the JUnit report is for CI to render.
local out; out=$(mktemp -d)
target/release/qossim test scenarios/regression/ --out "$out" --junit target/regression-junit.xml || return 1
rm -rf "$out"
}
stage "regression scenarios (qossim test)"
check regression regression

stage "done"
count() { { grep -Eo "[0-9]+ $1" target/test-output.txt || true; } | awk '{s+=$1} END {print s+0}'; }
passed=$(count passed)
failed=$(count failed)
# cargo test failing with no failed test (a build error, a crashed binary)
# is one failure; so is every other failed stage (format, clippy, ...)
if [ "$test_status" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
for s in "${failed_stages[@]}"; do [ "$s" = tests ] || failed=$((failed + 1)); done
echo "total wall time $(( $(date +%s) - T0 )) s"
[ ${#failed_stages[@]} -eq 0 ] || echo "failed stages: ${failed_stages[*]}"
echo "$passed passed, $failed failed"
[ ${#failed_stages[@]} -eq 0 ]
