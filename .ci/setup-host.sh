#!/usr/bin/env bash
# Installs the Debian tools the test suite uses beyond Node: promtool (from the
# prometheus package) for the metrics lint, chromium for the debug page's
# browser test (driven by playwright-core), and what the container test needs
# (.ci/setup-container.sh). Idempotent and quiet when all is present. Without
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
