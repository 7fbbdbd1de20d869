#!/usr/bin/env bash
# Assembles two local stand-in base images from this host, for building the
# real Dockerfile where no registry image can be pulled:
#
#   runtime: distroless-like, as gcr.io/distroless/nodejs24-debian12:nonroot
#            (node at /nodejs/bin/node, ENTRYPOINT ["/nodejs/bin/node"], only
#            the shared libraries node needs, passwd/group with nonroot 65532,
#            CA certificates, /tmp; no shell, no package manager)
#   builder: node 24 + npm + busybox /bin/sh, the host CA bundle baked in and
#            NODE_EXTRA_CA_CERTS / npm cafile pointing at it, the host's npm
#            registry setting carried over (test only: the shipped Dockerfile
#            stays clean)
#
# Images are tagged by a hash of their inputs, so reruns cost nothing.
# Usage: standin-bases.sh <node-binary>   (prints "RUNTIME=<ref>" and "BUILDER=<ref>")
set -euo pipefail

NODE_BIN=$(readlink -f "${1:?usage: $0 <node-binary>}")
HERE=$(cd "$(dirname "$0")" && pwd)
NPM_DIR=${NPM_DIR:-$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")}
BUSYBOX=${BUSYBOX:-/bin/busybox}
CA=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
REGISTRY=$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)

for f in "$NODE_BIN" "$NPM_DIR/package.json" "$BUSYBOX" "$CA"; do
  [[ -e $f ]] || { echo "standin-bases: missing $f" >&2; exit 1; }
done
"$NODE_BIN" -e 'process.exit(process.versions.node.split(".")[0] === "24" ? 0 : 1)' ||
  { echo "standin-bases: $NODE_BIN is not node 24" >&2; exit 1; }

# The loader and every library node links against, resolved on this host.
mapfile -t LIBS < <(ldd "$NODE_BIN" | awk '/=>/ { print $3 } !/=>/ && $1 ~ /^\// { print $1 }' | sort -u)

hash_inputs() {
  {
    # contents only (not paths: the same inputs give the same tag from anywhere)
    sha256sum "$0" "$NODE_BIN" "$BUSYBOX" "$CA" "$NPM_DIR/package.json" "${LIBS[@]}" | cut -d' ' -f1
    echo "$REGISTRY"
  } | sha256sum | cut -c1-16
}
TAG=$(hash_inputs)
RUNTIME=localhost/firstops-standin/nodejs24-distroless:$TAG
BUILDER=localhost/firstops-standin/node24-builder:$TAG

copy_libs() { # rootfs
  local root=$1 lib real
  for lib in "${LIBS[@]}"; do
    real=$(readlink -f "$lib")
    mkdir -p "$root$(dirname "$lib")"
    cp "$real" "$root$lib"
  done
  # Debian keeps the x86_64 loader in /lib64 and libraries in /lib/<triplet>;
  # the images use the same layout as distroless (merged-usr-less Debian).
}

build() { # ref dir
  podman build -q --network=none --layers=false -t "$1" "$2" >/dev/null
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! podman image exists "$RUNTIME"; then
  r=$work/runtime/rootfs
  mkdir -p "$r/nodejs/bin" "$r/etc/ssl/certs" "$r/tmp" "$r/home/nonroot" "$r/root"
  cp "$NODE_BIN" "$r/nodejs/bin/node"
  copy_libs "$r"
  cp "$CA" "$r/etc/ssl/certs/ca-certificates.crt"
  cat >"$r/etc/passwd" <<'P'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
P
  cat >"$r/etc/group" <<'G'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
G
  printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"
  cat >"$work/runtime/Containerfile" <<'C'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
ENTRYPOINT ["/nodejs/bin/node"]
LABEL org.firstops.standin="distroless-nodejs24-nonroot"
C
  chmod 1777 "$r/tmp"
  chown 65532:65532 "$r/home/nonroot"
  chmod 700 "$r/root"
  build "$RUNTIME" "$work/runtime"
fi

if ! podman image exists "$BUILDER"; then
  b=$work/builder/rootfs
  mkdir -p "$b/usr/local/bin" "$b/usr/local/lib/node_modules" "$b/usr/local/etc" "$b/bin" \
    "$b/usr/bin" "$b/etc/ssl/certs" "$b/tmp" "$b/root"
  cp "$NODE_BIN" "$b/usr/local/bin/node"
  cp -a "$NPM_DIR" "$b/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$b/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$b/usr/local/bin/npx"
  copy_libs "$b"
  cp "$BUSYBOX" "$b/bin/busybox"
  for app in sh ash cat cp chmod chown env ls mkdir mv rm sed grep find tar test true false; do
    ln -s busybox "$b/bin/$app"
  done
  ln -s /bin/busybox "$b/usr/bin/env"
  cp "$CA" "$b/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$b/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$b/etc/group"
  printf 'hosts: files dns\n' >"$b/etc/nsswitch.conf"
  printf 'registry=%s\ncafile=/etc/ssl/certs/ca-certificates.crt\nupdate-notifier=false\nfund=false\naudit=false\n' \
    "$REGISTRY" >"$b/usr/local/etc/npmrc"
  chmod 1777 "$b/tmp"
  cat >"$work/builder/Containerfile" <<'C'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
LABEL org.firstops.standin="node24-builder"
C
  build "$BUILDER" "$work/builder"
fi

# Older stand-ins (other input hashes) are no longer used by anything.
for repo in localhost/firstops-standin/nodejs24-distroless localhost/firstops-standin/node24-builder; do
  podman images --format '{{.Repository}}:{{.Tag}}' --filter "reference=$repo" | grep -v ":$TAG\$" |
    xargs -r podman rmi --force >/dev/null 2>&1 || true
done

echo "RUNTIME=$RUNTIME"
echo "BUILDER=$BUILDER"
