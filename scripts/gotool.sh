#!/usr/bin/env bash
# gotool.sh NAME MODULE PACKAGE VERSION: makes sure the program NAME on PATH was built
# from MODULE at exactly VERSION, and installs PACKAGE@VERSION with `go install`
# otherwise (from the Go module proxy; nothing else is downloaded).
set -euo pipefail
name=$1 module=$2 pkg=$3 version=$4
go=${GO:-go}
if bin=$(command -v "$name") && "$go" version -m "$bin" 2>/dev/null | grep -q "mod[[:space:]]*$module[[:space:]]*$version[[:space:]]"; then
  exit 0
fi
echo "test-tools: installing $name $version" >&2
if ! "$go" install "$pkg@$version"; then
  echo "test-tools: could not install $pkg@$version from the Go module proxy; install it and run 'make test' again." >&2
  exit 1
fi
command -v "$name" >/dev/null || { echo "test-tools: $name installed but not on PATH ($("$go" env GOPATH)/bin)" >&2; exit 1; }
