#!/usr/bin/env bash
# Regenerate tests/golden/<case>.sha256 for every case of
# tests/golden/cases.txt (the golden-output test, tests/golden.rs, only
# compares). Run it when a change of outputs is intended and commit the
# reviewed diff of tests/golden/ with the change, saying why.
#
#   scripts/golden-update.sh            # every case
#   scripts/golden-update.sh quickstart # only the named cases
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin qossim
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/qossim"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
only=("$@")
while read -r name cmd rest; do
  case "$name" in ''|'#'*) continue ;; esac
  if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " == *" $name "* ]]; then continue; fi
  out="$tmp/$name"
  # word splitting of $rest is intended: cases.txt holds no quoted words
  # shellcheck disable=SC2086
  "$bin" "$cmd" $rest --out "$out" --quiet < /dev/null
  (cd "$out" && find . -type f \( -name '*.csv' -o -name '*.pcap' -o -path './report.html' \) \
      | sed 's|^\./||' | LC_ALL=C sort | while read -r f; do sha256sum "$f"; done) \
    > "tests/golden/$name.sha256"
  echo "$name: $(wc -l < "tests/golden/$name.sha256") files"
done < tests/golden/cases.txt
