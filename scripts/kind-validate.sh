#!/usr/bin/env bash
# Validates a kind cluster config (and the `kind create cluster` flags) with kind's own code,
# without creating anything and without a container engine:
#
#   scripts/kind-validate.sh CONFIG
#   scripts/kind-validate.sh create cluster --name kube-alive --config CONFIG [--wait 120s ...]
#
# The second form takes the exact arguments the suite passes to `kind` (suite/providers/kind.py).
#
# kind has no dry run, and `kind create cluster` asks docker about itself before it reads the
# config, so this runs the real kind CLI (built by scripts/go-tool.sh) against a stand-in `docker`
# that answers only kind's read-only questions (version, info, "no such cluster yet", "the node
# image is present") and refuses the first call that would change anything (the node network).
# kind parses the flags, loads the config strictly (unknown fields are errors), applies its defaults
# and runs its validation before that call, so reaching it means kind accepted the config. Exit 0:
# valid; exit 1: kind's error is printed. --retain stops kind from cleaning up after the refused
# call, so no kubeconfig is read or written.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
if [ "$#" -eq 0 ]; then
  echo "usage: $0 CONFIG | $0 create cluster [kind flags...]" >&2
  exit 2
fi
if [ "$1" = create ]; then
  args=("$@")
else
  [ "$#" -eq 1 ] || { echo "$0: one CONFIG file, or 'create cluster ...'" >&2; exit 2; }
  args=(create cluster --name kube-alive-validate --config "$1")
fi

kind="$("$here/go-tool.sh" kind)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
cat >"$work/bin/docker" <<'STUB'
#!/bin/sh
# Stand-in docker for scripts/kind-validate.sh: answers read-only questions, refuses the rest.
echo "docker $*" >>"$KIND_VALIDATE_CALLS"
case "$1" in
  -v) echo "Docker version 0.0.0-kind-validate, build none" ;;
  info) echo '{"CgroupDriver":"systemd","CgroupVersion":"2","MemoryLimit":true,"PidsLimit":true,"CPUShares":true,"SecurityOptions":[]}' ;;
  ps) ;;  # no node containers: the cluster does not exist yet
  inspect) [ "$2" = "--type=image" ] || exit 1 ;;  # node images count as present: no pull
  *) echo "kind-validate: config accepted; stopped before provisioning" >&2; exit 1 ;;
esac
STUB
chmod +x "$work/bin/docker"

set +e
out="$(KIND_VALIDATE_CALLS="$work/calls" KIND_EXPERIMENTAL_PROVIDER=docker \
  KUBECONFIG="$work/kubeconfig" PATH="$work/bin:$PATH" "$kind" "${args[@]}" --retain 2>&1)"
status=$?
set -e

# Past validation, kind announces the cluster and asks for its node images, then the network.
if grep -q '^Creating cluster ' <<<"$out" && grep -q '^docker network ' "$work/calls" 2>/dev/null; then
  images="$(sed -n 's/^docker inspect --type=image //p' "$work/calls" | sort -u | paste -sd ' ' -)"
  echo "kind-validate: $("$kind" version) accepts ${args[*]} (node images: ${images:-none})"
  exit 0
fi
echo "kind-validate: kind rejected ${args[*]} (exit $status):" >&2
echo "$out" >&2
exit 1
