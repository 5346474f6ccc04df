# oauth-sidecar container image (docs/kubernetes.md). Build with deploy/build-image.sh (docker or buildah).
#
# Three stages: `build` compiles dist/ with the dev dependencies (tsc), `prod-deps` installs only the
# production dependencies, and the runtime stage copies dist/, bin/, package.json and those
# node_modules onto a slim Node LTS base. No source, tests or dev tooling reach the final image.

# --- build: npm ci with dev dependencies; the `prepare` script runs tsc and writes dist/ --------------
FROM node:24-bookworm-slim AS build
WORKDIR /build
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src/ ./src/
COPY bin/ ./bin/
RUN npm ci --no-audit --no-fund

# --- prod-deps: production dependencies only. --ignore-scripts because `prepare` needs tsc, which is a
# dev dependency; no production dependency has an install script (all pure JavaScript).
FROM node:24-bookworm-slim AS prod-deps
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- runtime ---------------------------------------------------------------------------------------
FROM node:24-bookworm-slim AS runtime

ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="oauth-sidecar" \
      org.opencontainers.image.description="Authenticating reverse-proxy sidecar: attaches and refreshes OAuth bearer tokens for legacy apps" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

ENV NODE_ENV=production

# A numeric, non-root uid/gid (10001), so Kubernetes `runAsNonRoot` can verify it without a passwd
# lookup. The data directory is the only place the process writes (the file token store: temp file,
# fsync, rename), so the image also works with a read-only root filesystem; mode 0700 as the file
# store would create it. Node itself writes nothing else (no npm at run time, no cache, no /tmp).
RUN groupadd --system --gid 10001 oauth-sidecar \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin oauth-sidecar \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/oauth-sidecar

WORKDIR /app
# Owned by root and not writable by the runtime user: the code cannot be changed by the process.
COPY --from=prod-deps /build/node_modules/ ./node_modules/
COPY --from=build /build/dist/ ./dist/
COPY bin/ ./bin/
COPY package.json ./
COPY deploy/docker/proxy.yaml /etc/oauth-sidecar/proxy.yaml
# `kubectl exec … oauth-sidecar status` works, and hints name the command that way.
RUN ln -s /app/bin/oauth-sidecar.js /usr/local/bin/oauth-sidecar
ENV OAUTH_SIDECAR_COMMAND=oauth-sidecar

# Token records survive container restarts only on a volume (in Kubernetes: an emptyDir or a PVC
# mounted here; with a read-only root filesystem this mount is required for the file store).
VOLUME ["/var/lib/oauth-sidecar"]

# 8080 proxy, 9901 admin (/healthz /readyz /metrics /status): see deploy/docker/proxy.yaml.
EXPOSE 8080 9901

USER 10001:10001

# Uses node itself, since the slim image has no curl or wget. Kubernetes ignores HEALTHCHECK and uses
# the pod's probes instead; this is for docker/podman. Needs the admin listener (admin: "off" fails it).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Exec form: node is PID 1 and receives SIGTERM directly (no shell in between to swallow it). As PID 1
# it gets no default signal actions, but src/main.ts installs SIGTERM/SIGINT handlers before start-up:
# stop accepting, drain in-flight requests for up to drainTimeoutMs, exit 0. The proxy starts no child
# processes, so there are no zombies to reap and no init (tini, --init) is needed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/oauth-sidecar.js"]
CMD ["serve", "--config", "/etc/oauth-sidecar/proxy.yaml"]
