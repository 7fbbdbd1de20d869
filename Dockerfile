# syntax=docker/dockerfile:1
#
# firstops-sidecar image: build on Node 24, run on distroless Node 24.
#
#   docker build -t firstops-sidecar:dev .
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t firstops-sidecar:0.1.0 .
#
# Both bases are build arguments so the same file builds from other (e.g.
# mirrored, pinned-by-digest or locally assembled) images; test/container/
# builds it that way.
#
# Runtime base: distroless nodejs24 on Debian 13 (trixie), not Debian 12.
# Debian 12's regular security support ended in June 2026 and distroless
# follows the current stable release, so debian13 is the variant that keeps
# receiving patched glibc/openssl/tzdata layers. It carries libstdc++ and
# libgcc_s, all the native re2 addon links against besides glibc.
#
# Builder: node:24-trixie, the full (buildpack-deps based) variant, because
# the build stage compiles the native re2 addon with node-gyp: it already has
# g++, make and python3, and Node's headers in /usr/local/include/node. The
# alternative, node:24-trixie-slim plus `apt-get install g++ make python3`,
# pulls less but makes every uncached build depend on a Debian mirror and on
# whatever package versions it serves that day; the builder's size never
# reaches the runtime image. Same Debian release as the runtime, so re2.node
# links against the glibc and libstdc++ it runs with.
# Pin both by digest in production (IMAGE@sha256:...).
ARG BUILDER_IMAGE=node:24-trixie
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian13:nonroot

# ---------------------------------------------------------------- build ----
FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
ENV NODE_ENV=development \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false

# Dependencies first, so this layer is reused until the lockfile changes.
# --ignore-scripts: the dev-only `node` package would otherwise download a
# second Node binary. The one install script the image needs, re2's (a
# node-gyp build of the vendored RE2 sources), runs next, explicitly: for
# this image's node (--nodedir: its own headers), never a prebuilt download
# (RE2_DOWNLOAD_FORCE_BUILD), and the build fails here if the result does
# not load.
ENV RE2_DOWNLOAD_FORCE_BUILD=1
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --ignore-scripts \
 && nodedir="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")" \
 && test -f "$nodedir/include/node/node_version.h" \
 && npm rebuild re2 --nodedir="$nodedir" \
 && node -e "require('re2')"

COPY tsconfig.json ./
COPY src ./src
COPY deploy/image/bundle.mjs ./deploy/image/bundle.mjs
# tsc emits dist/; esbuild then folds dist/main.js and the production
# dependencies into /out/dist/main.js, the policy worker into
# /out/dist/worker.js, and copies the native re2 package's runtime files to
# /out/node_modules/re2 (+ license notices, minimal package.json).
# re2 compiles with -g: its re2.node is 24 MB with debug info, 1.5 MB
# stripped (binutils is in the builder).
RUN npm run build \
 && node deploy/image/bundle.mjs /out \
 && strip --strip-unneeded /out/node_modules/re2/build/Release/re2.node

# -------------------------------------------------------------- runtime ----
# Holds only what runs: the bundled dist/main.js and dist/worker.js, the
# native re2 addon (node_modules/re2: re2.js, package.json, LICENSE and
# build/Release/re2.node, nothing else), a minimal package.json ("type":
# "module"), the license notices and the example policy. No other
# node_modules, no shell, no package manager.
# Bundle vs pruned production node_modules, measured on the same Node 24
# (details in deploy/README.md): the bundle is 2 MB instead of 19 MB and
# reaches /readyz ~70 ms sooner, so the bundle it is. The entry file is still
# dist/main.js for every subcommand.
FROM ${RUNTIME_IMAGE} AS runtime

WORKDIR /app
# Owned by root and not writable by the runtime user: the process can read
# its code but never change it, with or without a read-only root filesystem.
COPY --from=build --chown=0:0 /out/ ./
COPY --chown=0:0 examples/policy.yaml ./examples/policy.yaml

# V8 sizing for a container: the young generation's semi-spaces stop at
# 8 MB instead of V8's default 16 MB. Measured on the bundle (docs/performance.md,
# "Fourth round"): 8 MB takes 6% less CPU per request than 4 MB; under the
# chart's 256Mi limit the container serves ~50% more c64 JSON requests a second
# for a 6-18 MB higher peak (175-187 against 169 MB), and the large-prompt test
# peaks at 236-238 MiB with either. The old generation is left to V8, which
# sizes it from the container's memory limit (cgroup).
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=8
# The distroless :nonroot user; stated again so a different RUNTIME_IMAGE
# cannot silently run the proxy as root.
USER 65532:65532
EXPOSE 9322 9323

# Exec form everywhere: node is PID 1 and receives SIGTERM itself (readiness
# goes 503, in-flight requests drain for FIRSTOPS_DRAIN_TIMEOUT_MS, exit 0).
# Give the orchestrator a stop timeout longer than the drain (docker's
# default is 10 s: use `stop_grace_period`/`--stop-timeout` 30 s).
STOPSIGNAL SIGTERM
# No shell in the image, so the check is node itself: exits 0 iff
# GET http://127.0.0.1:${FIRSTOPS_ADMIN_PORT:-9323}/readyz answers 200.
# (OCI-format images drop HEALTHCHECK: build with --format docker under
# podman/buildah; Kubernetes uses its own probes.)
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["/nodejs/bin/node", "/app/dist/main.js", "healthcheck"]

# The base image's ENTRYPOINT is ["/nodejs/bin/node"]; CMD is its arguments.
# `check` validates configuration, `injector` runs the Helm admission webhook.
CMD ["/app/dist/main.js"]

# Last, so a new revision/date does not invalidate the layers above.
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
# (re-declared to bring the global value into this stage)
ARG RUNTIME_IMAGE

LABEL org.opencontainers.image.title="firstops-sidecar" \
      org.opencontainers.image.description="FirstOps governance proxy for AI agents (Docker/Kubernetes sidecar)" \
      org.opencontainers.image.vendor="FirstOps" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"
