#!/usr/bin/env bash
# Installs the Debian tools the test suite uses beyond Node: promtool (from the
# prometheus package) for the metrics lint, python3/make/g++ for the native
# re2 addon, chromium for the debug page's browser test (driven by
# playwright-core), and what the container test needs (.ci/setup-container.sh).
# Idempotent and quiet when all is present. Without
# root it only reports what is missing; the tests that need it then fail with
# a message naming it.
set -euo pipefail
cd "$(dirname "$0")/.."

# install WHY PACKAGE...: installs the packages when root, else says what is missing.
install() {
  local why=$1
  shift
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup-host: installing $* ($why)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  else
    echo "setup-host: $* missing and not root; install Debian's packages ($why)" >&2
  fi
}

command -v promtool >/dev/null 2>&1 || install "promtool, for the metrics lint" prometheus

# The C++ toolchain node-gyp needs for the native re2 addon. npm ci already
# needed it (re2 builds during npm ci, before this script runs in pretest):
# installing it here covers later rebuilds (scripts/ensure-re2.mjs) and a
# host prepared by running this script once before the first npm ci.
toolchain=()
command -v python3 >/dev/null 2>&1 || toolchain+=(python3)
command -v make >/dev/null 2>&1 || toolchain+=(make)
command -v g++ >/dev/null 2>&1 || toolchain+=(g++)
((${#toolchain[@]} == 0)) || install "C++ toolchain for the native re2 addon" "${toolchain[@]}"

[[ -x /usr/bin/chromium ]] || install "for the debug page's browser test" chromium

if [[ -x .ci/setup-container.sh ]]; then
  if [[ $(id -u) -eq 0 ]]; then .ci/setup-container.sh; else echo "setup-host: not root; skipping .ci/setup-container.sh" >&2; fi
fi
