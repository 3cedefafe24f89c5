#!/usr/bin/env bash
# Makes sure the programs the tests start are present: openssl (the independent CMS,
# OCSP and TSA peer) and SoftHSM2 (the real HSM). As root it installs the missing
# Debian packages; otherwise it stops and names what is missing. It never lets the
# tests skip silently.
set -euo pipefail

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
{ command -v softhsm2-util >/dev/null 2>&1 && [ -e /usr/lib/softhsm/libsofthsm2.so ]; } || need+=(softhsm2)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "deps: installing ${need[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  exit 0
fi
echo "deps: missing Debian packages: ${need[*]}" >&2
echo "deps: install them (sudo apt-get install ${need[*]}) and run 'make test' again." >&2
exit 1
