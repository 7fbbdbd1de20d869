#!/usr/bin/env bash
# Installs what test/container/ needs to build and run the image without a
# Docker engine: podman + buildah (Debian), runc as the OCI runtime,
# busybox-static (a /bin/sh for the locally assembled stand-in builder base),
# the CNI dnsname plugin (container names resolve on compose networks; Debian
# 12's podman uses CNI) and podman-compose >= 1.1 (compose.test.ts).
# Idempotent and quiet when everything is already there. Called by .ci/run
# before `npm test` when present; safe to run by hand (needs root).
set -euo pipefail

PKGS=(podman buildah runc busybox-static uidmap slirp4netns golang-github-containernetworking-plugin-dnsname)

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

# podman-compose: `network_mode: service:<name>` (deploy/docker-compose.yaml)
# needs >= 1.1. Debian 12 ships 1.0.3, which hands it to podman verbatim; its
# package is architecture-independent Python, and Debian 13's (1.3.0) depends
# only on what Debian 12 has (python3, python3-yaml, python3-dotenv), so that
# one is fetched with apt from Debian's archive, signature-checked with the
# system keyring, without adding the release to the system's sources.
compose_version=$(dpkg-query -W -f='${Version}' podman-compose 2>/dev/null || true)
if [[ -z $compose_version ]] || dpkg --compare-versions "$compose_version" lt 1.1; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup-container: need root to install podman-compose >= 1.1 (have: ${compose_version:-none})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  candidate=$(apt-cache policy podman-compose 2>/dev/null | awk '/Candidate:/ { print $2 }')
  if [[ -n $candidate && $candidate != '(none)' ]] && dpkg --compare-versions "$candidate" ge 1.1; then
    echo "setup-container: installing podman-compose $candidate"
    apt-get install -y -qq --no-install-recommends podman-compose >/dev/null
  else
    echo "setup-container: installing podman-compose from Debian 13 (trixie; this release has ${candidate:-none})"
    apt_dir=$(mktemp -d)
    trap 'rm -rf "$apt_dir"' EXIT
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main' >"$apt_dir/sources.list"
    apt_opts=(-o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
      -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache" -o APT::Sandbox::User=root)
    apt-get "${apt_opts[@]}" update -qq >/dev/null
    (cd "$apt_dir" && apt-get "${apt_opts[@]}" download -qq podman-compose >/dev/null)
    apt-get install -y -qq --no-install-recommends "$apt_dir"/podman-compose_*_all.deb >/dev/null
  fi
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
