#!/usr/bin/env bash
# Assembles the two other images deploy/docker-compose.yaml names, for
# bringing the stack up where no registry image can be pulled:
#
#   prometheus: stands in for prom/prometheus: Debian's /usr/bin/prometheus
#               (package prometheus, installed by .ci/setup-host.sh) and the
#               libraries it links against, laid out like the official image
#               (ENTRYPOINT ["/bin/prometheus"], USER nobody, WORKDIR and
#               VOLUME /prometheus owned by nobody, so a fresh named volume
#               is writable, a default /etc/prometheus/prometheus.yml)
#   agent:      stands in for node:24-trixie-slim as far as the example agent
#               needs: `node` on PATH and no entrypoint, on the runtime
#               stand-in from standin-bases.sh (no shell)
#
# Tagged by a hash of their inputs, so reruns cost nothing.
# Usage: standin-compose.sh <runtime-base-ref>   (prints "PROMETHEUS=<ref>" and "AGENT=<ref>")
set -euo pipefail

RUNTIME=${1:?usage: $0 <runtime-base-ref from standin-bases.sh>}
PROM_BIN=$(readlink -f "${PROMETHEUS_BIN:-$(command -v prometheus || echo /usr/bin/prometheus)}")
[[ -x $PROM_BIN ]] || { echo "standin-compose: no prometheus binary (apt-get install prometheus)" >&2; exit 1; }
podman image exists "$RUNTIME" || { echo "standin-compose: runtime base $RUNTIME does not exist" >&2; exit 1; }

# Debian's prometheus is a Go binary linked against glibc (ldd: libc, loader).
mapfile -t LIBS < <(ldd "$PROM_BIN" | awk '/=>/ { print $3 } !/=>/ && $1 ~ /^\// { print $1 }' | sort -u)

TAG=$({
  sha256sum "$0" "$PROM_BIN" "${LIBS[@]}" | cut -d' ' -f1
  podman image inspect --format '{{.Id}}' "$RUNTIME"
} | sha256sum | cut -c1-16)
PROMETHEUS=localhost/firstops-standin/prometheus:$TAG
AGENT=localhost/firstops-standin/example-agent:$TAG

build() { # ref dir
  podman build -q --network=none --layers=false -t "$1" "$2" >/dev/null
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! podman image exists "$PROMETHEUS"; then
  r=$work/prometheus/rootfs
  mkdir -p "$r/bin" "$r/etc/prometheus" "$r/tmp" "$work/prometheus/owned/prometheus"
  cp "$PROM_BIN" "$r/bin/prometheus"
  for lib in "${LIBS[@]}"; do
    mkdir -p "$r$(dirname "$lib")"
    cp "$(readlink -f "$lib")" "$r$lib"
  done
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/home:/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$r/etc/group"
  printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"
  cat >"$r/etc/prometheus/prometheus.yml" <<'Y'
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
Y
  chmod 1777 "$r/tmp"
  cat >"$work/prometheus/Containerfile" <<'C'
FROM scratch
COPY rootfs/ /
# (COPY does not keep the owner: the data directory gets it explicitly)
COPY --chown=65534:65534 owned/ /
USER 65534:65534
EXPOSE 9090
VOLUME ["/prometheus"]
WORKDIR /prometheus
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
LABEL org.firstops.standin="prometheus"
C
  build "$PROMETHEUS" "$work/prometheus"
fi

if ! podman image exists "$AGENT"; then
  mkdir -p "$work/agent"
  cat >"$work/agent/Containerfile" <<C
FROM $RUNTIME
ENV PATH=/nodejs/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENTRYPOINT []
CMD ["node"]
LABEL org.firstops.standin="example-agent"
C
  build "$AGENT" "$work/agent"
fi

# Older stand-ins (other input hashes), unless a container still uses one
# (no --force: that would remove another run's containers).
for repo in localhost/firstops-standin/prometheus localhost/firstops-standin/example-agent; do
  podman images --format '{{.Repository}}:{{.Tag}}' --filter "reference=$repo" | grep -v ":$TAG\$" |
    xargs -r -n1 podman rmi >/dev/null 2>&1 || true
done

echo "PROMETHEUS=$PROMETHEUS"
echo "AGENT=$AGENT"
