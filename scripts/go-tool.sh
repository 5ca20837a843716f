#!/usr/bin/env bash
# Builds (once, cached by version) a pinned Go tool from its module and prints the binary's path:
#
#   scripts/go-tool.sh kind        # the kind CLI
#   scripts/go-tool.sh actionlint  # the GitHub Actions workflow linter
#   scripts/go-tool.sh buildx      # docker buildx (a docker CLI plugin), where no package has it
#
# The pins live here, in one place; the workflows and the other scripts call this. Binaries go to
# $KUBE_ALIVE_CACHE_DIR/bin/tools/<name>-<version>/ (default /var/cache/kube-alive, or
# ~/.cache/kube-alive when that is not writable). Needs Go on PATH; only the Go module proxy is used.
set -euo pipefail

declare -A MODULES=(
  # v0.30.0's default node image is kindest/node:v1.34.0, the one suite/providers/kind.py pins:
  # node images are built for one kind release, so the two move together.
  [kind]="sigs.k8s.io/kind@v0.30.0"
  [actionlint]="github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"
  [buildx]="github.com/docker/buildx/cmd/buildx@v0.38.2"
)

name="${1:-}"
if [ -z "$name" ] || [ -z "${MODULES[$name]:-}" ]; then
  names="${!MODULES[*]}"
  echo "usage: $0 {${names// /|}}" >&2
  exit 2
fi
module="${MODULES[$name]}"
version="${module##*@}"

cache="${KUBE_ALIVE_CACHE_DIR:-/var/cache/kube-alive}"
if ! mkdir -p "$cache/bin/tools" 2>/dev/null || [ ! -w "$cache/bin/tools" ]; then
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/kube-alive"
fi
dir="$cache/bin/tools/$name-$version"
if [ ! -x "$dir/$name" ]; then
  if ! command -v go >/dev/null 2>&1; then
    echo "$0: Go is needed on PATH to build $module" >&2
    exit 1
  fi
  echo "$0: building $module into $dir" >&2
  mkdir -p "$dir.partial"
  # A static binary, built from the module proxy; -trimpath keeps the build reproducible.
  GOBIN="$dir.partial" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath" go install "$module" >&2
  rm -rf "$dir"
  mv "$dir.partial" "$dir"
fi
echo "$dir/$name"
