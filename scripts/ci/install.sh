#!/usr/bin/env bash
# CI step "install": the system packages, the suite and its dev tools in .venv (the versions in
# scripts/ci/constraints.txt), the browser, and the pinned tools (scripts/go-tool.sh).
set -euo pipefail
# shellcheck source=scripts/ci/env
. "$(dirname "$0")/env"

ci_stamp "system packages"
if [ "$CI_SYSTEM_PACKAGES" = 1 ]; then
  bash localcluster/setup.sh
else
  # The runner brings Docker; the lint step needs shellcheck (actionlint checks `run:` with it).
  if ! command -v shellcheck >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck
  fi
fi

ci_stamp "python environment (.venv; versions from $CI_CONSTRAINTS)"
python3 -m venv .venv
.venv/bin/python -m pip install -q -c "$CI_CONSTRAINTS" --upgrade pip
.venv/bin/python -m pip install -q -c "$CI_CONSTRAINTS" -e '.[dev]'

if [ "$CI_BROWSER" = playwright ]; then
  # suite/browser.py finds Playwright's own Chromium first; its system libraries come with it.
  ci_stamp "Playwright's Chromium, with its system libraries"
  .venv/bin/python -m playwright install --with-deps chromium
fi

if [ "$CI_TOOLS" = release ]; then
  ci_stamp "kind and actionlint: release binaries, checked against their pinned sha256"
  for tool in kind actionlint; do
    "$(scripts/go-tool.sh "$tool")" version
  done
  # kind's Go module (source only, nothing is built), so the unit test that compares the pinned
  # node image with kind's own default reads it here too (it skips without it).
  kind_module="$(grep -o 'sigs\.k8s\.io/kind@v[0-9.]*' scripts/go-tool.sh)"
  go mod download "$kind_module"
  if ! command -v kubectl >/dev/null 2>&1; then
    # The kind provider shells out to kubectl. The client matching the node image, checked
    # against the sha256 published beside it.
    arch="$(dpkg --print-architecture)"
    url="https://dl.k8s.io/release/v1.34.0/bin/linux/$arch/kubectl"
    bin="$HOME/.local/bin"
    mkdir -p "$bin"
    curl -fsSL --retry 3 -o "$bin/kubectl" "$url"
    echo "$(curl -fsSL --retry 3 "$url.sha256")  $bin/kubectl" | sha256sum --check --strict
    chmod +x "$bin/kubectl"
    [ -z "${GITHUB_PATH:-}" ] || echo "$bin" >>"$GITHUB_PATH"
  fi
fi
