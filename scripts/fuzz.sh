#!/usr/bin/env bash
# Runs every Fuzz target in the module for FUZZTIME each (default 5s). The targets are
# found with 'go test -list', so a new fuzz target is picked up without editing this.
set -euo pipefail
fuzztime=${FUZZTIME:-5s}
fail=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $target ($fuzztime)"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/fuzz.$$.log 2>&1; then
      cat /tmp/fuzz.$$.log
      fail=1
    fi
  done
done
rm -f /tmp/fuzz.$$.log
exit $fail
