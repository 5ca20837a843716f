#!/usr/bin/env bash
# Installs what the local cluster needs on a Debian/Ubuntu machine: the node runtime (containerd,
# runc, CNI plugins, iptables) and the image tools (buildah, debootstrap). Go (1.24 or newer) must
# already be on PATH; the Kubernetes components are built from their Go modules by
# `python -m localcluster build`.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "localcluster/setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

# Node runtime and image tools; then Chromium for the browser tests of the report and the live
# page, qemu for the arm64 and arm/v7 image checks, shellcheck for the workflow lint;
# python3-venv for the README's first command (Debian lets pip install only into a virtual
# environment).
packages=(containerd runc containernetworking-plugins iptables iproute2 conntrack openssl
          buildah debootstrap gcc libc6-dev ca-certificates
          chromium qemu-user-static binfmt-support shellcheck python3-venv)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "localcluster/setup.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1; then
  echo "localcluster/setup.sh: Go 1.24 or newer is needed on PATH to build the components" >&2
  exit 1
fi
echo "localcluster/setup.sh: node packages present; $(go version)"
