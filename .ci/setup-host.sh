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

if ! command -v promtool >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup-host: installing prometheus (for promtool)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "setup-host: promtool missing and not root; install Debian's prometheus package" >&2
  fi
fi

# The C++ toolchain node-gyp needs for the native re2 addon. npm ci already
# needed it (re2 builds during npm ci, before this script runs in pretest):
# installing it here covers later rebuilds (scripts/ensure-re2.mjs) and a
# host prepared by running this script once before the first npm ci.
toolchain=()
command -v python3 >/dev/null 2>&1 || toolchain+=(python3)
command -v make >/dev/null 2>&1 || toolchain+=(make)
command -v g++ >/dev/null 2>&1 || toolchain+=(g++)
if ((${#toolchain[@]} > 0)); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup-host: installing ${toolchain[*]} (C++ toolchain for the native re2 addon)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${toolchain[@]}" >/dev/null
  else
    echo "setup-host: ${toolchain[*]} missing and not root; install them (needed to build re2)" >&2
  fi
fi

if [[ ! -x /usr/bin/chromium ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup-host: installing chromium (for the debug page's browser test)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "setup-host: /usr/bin/chromium missing and not root; install Debian's chromium package" >&2
  fi
fi

if [[ -x .ci/setup-container.sh ]]; then
  if [[ $(id -u) -eq 0 ]]; then .ci/setup-container.sh; else echo "setup-host: not root; skipping .ci/setup-container.sh" >&2; fi
fi
