#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script) and as a new
# machine runs it: installs what the tests need, then lint, build, test.
# Prints the wall time of every stage. Exits non-zero on the first failure.
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
# mosquitto installs into /usr/sbin, which may not be on a non-root PATH.
{ command -v mosquitto || command -v /usr/sbin/mosquitto; } >/dev/null 2>&1 || need_apt+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
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
tshark --version | head -n 1
command -v coap-server-notls
{ command -v mosquitto || command -v /usr/sbin/mosquitto; }
command -v mosquitto_sub
{ command -v chromium || command -v chromium-browser; }
python3 -c 'import paho.mqtt; print("paho-mqtt", paho.mqtt.__version__)'

stage "format"
cargo fmt --all -- --check

stage "clippy"
cargo clippy --all-targets --quiet -- -D warnings

stage "build (release)"
cargo build --release --all-targets --quiet

stage "tests (release)"
# statistical tests need release speed; every test target runs here
cargo test --release --quiet 2>&1 | tee target/test-output.txt

stage "notebooks"
# notebooks/*.ipynb run headless (nbclient) against the release binary; a
# doctored CSV must make the teaching notebook fail (scripts/test_notebooks.py)
nb_import='import nbclient, nbformat, ipykernel, pandas, matplotlib'
if ! python3 -c "$nb_import" >/dev/null 2>&1; then
  python3 -m pip install --quiet nbclient nbformat ipykernel pandas matplotlib \
    || python3 -m pip install --quiet --break-system-packages nbclient nbformat ipykernel pandas matplotlib
fi
python3 -c "$nb_import"
nb_out=$(mktemp -d)
QOSSIM_BIN="$PWD/target/release/qossim" QOSSIM_NB_OUT="$nb_out" \
  QOSSIM_COMPARE_REPLICATIONS=2 QOSSIM_COMPARE_DURATION="4 min" \
  python3 scripts/test_notebooks.py
rm -rf "$nb_out"

stage "quickstart (cargo run --release)"
out=$(mktemp -d)
cargo run --release --quiet -- run --out "$out" --packets --pcap
for f in runs.csv summary.csv messages.csv packets.csv manifest.json; do
  test -s "$out/$f" || { echo "missing $out/$f"; exit 1; }
done
rm -rf "$out"

stage "done"
passed=$(grep -Eo '[0-9]+ passed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
echo "total wall time $(( $(date +%s) - T0 )) s"
echo "$passed passed, $failed failed"
