#!/usr/bin/env bash
# Runs a command as an ordinary (non-root) user in a fresh copy of this checkout, the way a
# developer or a GitHub runner runs it: `scripts/as-user.sh tox -e lint,type,unit`.
#
# CI runs as root, which hides every check that only passes as root. This makes the user
# (kube-alive-ci, no login, no sudo) if it does not exist, copies the tracked and untracked
# (not ignored) files to a temporary folder it owns, runs the command there with CI=true and the
# TLS settings of this environment, and removes the copy afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  exec env CI="${CI:-true}" "$@"   # already an ordinary user
fi
user=kube-alive-ci
id -u "$user" >/dev/null 2>&1 || useradd --system --create-home --shell /usr/sbin/nologin "$user"
home="$(getent passwd "$user" | cut -d: -f6)"

copy="$(mktemp -d /tmp/kube-alive-as-user.XXXXXX)"
trap 'rm -rf "$copy"' EXIT
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$copy" 2>/dev/null || true
chown -R "$user:" "$copy"

# The user's PATH: the system's Python and this machine's Go, nothing of root's.
path="/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin"
# shellcheck disable=SC2016  # $1 and $@ belong to the inner shell
runuser -u "$user" -- env -i HOME="$home" PATH="$path" CI=true \
  ${SSL_CERT_FILE:+SSL_CERT_FILE="$SSL_CERT_FILE"} \
  ${REQUESTS_CA_BUNDLE:+REQUESTS_CA_BUNDLE="$REQUESTS_CA_BUNDLE"} \
  ${PIP_CERT:+PIP_CERT="$PIP_CERT"} \
  ${PIP_INDEX_URL:+PIP_INDEX_URL="$PIP_INDEX_URL"} \
  ${PIP_FIND_LINKS:+PIP_FIND_LINKS="$PIP_FIND_LINKS"} \
  ${GOPROXY:+GOPROXY="$GOPROXY"} \
  ${GOFLAGS:+GOFLAGS="$GOFLAGS"} \
  bash -c 'cd "$1" && shift && exec "$@"' _ "$copy" "$@"
