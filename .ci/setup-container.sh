#!/usr/bin/env bash
# Installs what test/container/ needs to build and run the image without a
# Docker engine: podman + buildah (Debian), runc as the OCI runtime, and
# busybox-static (a /bin/sh for the locally assembled stand-in builder base).
# Idempotent and quiet when everything is already there. Called by .ci/run
# before `npm test` when present; safe to run by hand (needs root).
set -euo pipefail

PKGS=(podman buildah runc busybox-static uidmap slirp4netns)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup-container: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup-container: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# podman/buildah here run under runc, with cgroupfs, file events and ulimits
# lower than the defaults podman would ask for (which the sandbox refuses).
conf=/etc/containers/containers.conf
dropin=/etc/containers/containers.conf.d/50-firstops-sidecar.conf
want_engine=('runtime = "runc"' 'cgroup_manager = "cgroupfs"' 'events_logger = "file"')
want_containers=('default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]')
write_conf() { # path
  mkdir -p "$(dirname "$1")"
  {
    echo '# written by firstops-sidecar .ci/setup-container.sh'
    echo '[containers]'
    printf '%s\n' "${want_containers[@]}"
    echo
    echo '[engine]'
    printf '%s\n' "${want_engine[@]}"
  } >"$1"
  echo "setup-container: wrote $1"
}
if [[ ! -f $conf ]]; then
  write_conf "$conf"
elif [[ ! -f $dropin ]]; then
  # An existing containers.conf is left alone; a drop-in (read after it)
  # adds whichever of our settings it lacks.
  for line in "${want_engine[@]}" "${want_containers[@]}"; do
    if ! grep -Eq "^[[:space:]]*${line%% =*}[[:space:]]*=" "$conf"; then
      write_conf "$dropin"
      break
    fi
  done
fi
