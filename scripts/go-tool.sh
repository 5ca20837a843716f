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
#
# KUBE_ALIVE_TOOLS=release (GitHub's runners, see scripts/ci/env) downloads the tool's release
# binary for this machine's architecture instead, and refuses it unless its sha256 is the one
# pinned below (as published with the release); a tool without a release download is still built.
set -euo pipefail

declare -A MODULES=(
  # v0.30.0's default node image is kindest/node:v1.34.0, the one suite/providers/kind.py pins:
  # node images are built for one kind release, so the two move together.
  [kind]="sigs.k8s.io/kind@v0.30.0"
  [actionlint]="github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"
  [buildx]="github.com/docker/buildx/cmd/buildx@v0.38.2"
)
# "URL SHA256" per tool and architecture, for the versions above (checked below); the sums are the
# ones each release publishes (kind-linux-*.sha256sum, actionlint_*_checksums.txt).
declare -A RELEASES=(
  [kind/amd64]="https://github.com/kubernetes-sigs/kind/releases/download/v0.30.0/kind-linux-amd64 517ab7fc89ddeed5fa65abf71530d90648d9638ef0c4cde22c2c11f8097b8889"
  [kind/arm64]="https://github.com/kubernetes-sigs/kind/releases/download/v0.30.0/kind-linux-arm64 7ea2de9d2d190022ed4a8a4e3ac0636c8a455e460b9a13ccf19f15d07f4f00eb"
  [actionlint/amd64]="https://github.com/rhysd/actionlint/releases/download/v1.7.12/actionlint_1.7.12_linux_amd64.tar.gz 8aca8db96f1b94770f1b0d72b6dddcb1ebb8123cb3712530b08cc387b349a3d8"
  [actionlint/arm64]="https://github.com/rhysd/actionlint/releases/download/v1.7.12/actionlint_1.7.12_linux_arm64.tar.gz 325e971b6ba9bfa504672e29be93c24981eeb1c07576d730e9f7c8805afff0c6"
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

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch="$(uname -m)" ;;
esac
release="${RELEASES[$name/$arch]:-}"
if [ "${KUBE_ALIVE_TOOLS:-source}" = release ] && [ -n "$release" ] && [ ! -x "$dir/$name" ]; then
  url="${release% *}"
  sum="${release#* }"
  if [[ "$url" != */"$version"/* ]]; then
    echo "$0: the release URL of $name ($url) is not for the pinned $version: fix RELEASES" >&2
    exit 1
  fi
  echo "$0: downloading $url into $dir" >&2
  rm -rf "$dir.partial" && mkdir -p "$dir.partial"
  download="$dir.partial/${url##*/}"
  curl -fsSL --retry 3 --connect-timeout 20 --max-time 300 -o "$download" "$url"
  if ! echo "$sum  $download" | sha256sum --check --status; then
    echo "$0: $url: sha256 $(sha256sum "$download" | cut -d' ' -f1), pinned $sum: refused" >&2
    rm -rf "$dir.partial"
    exit 1
  fi
  case "$download" in
    *.tar.gz) tar -xzf "$download" -C "$dir.partial" "$name" && rm "$download" ;;
    *) mv "$download" "$dir.partial/$name" ;;
  esac
  chmod +x "$dir.partial/$name"
  rm -rf "$dir"
  mv "$dir.partial" "$dir"
fi
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
