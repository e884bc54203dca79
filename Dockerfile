# syntax=docker/dockerfile:1
#
# remediator container image: a static binary on distroless, running as the unprivileged
# "nonroot" user (uid/gid 65532).
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t remediator:dev .
#   docker run --rm remediator:dev --help
#
# The image's default command is `remediator run`. Without --config it uses the built-in
# configuration (embedded NATS, simulated flows) listening on 127.0.0.1 only; in a container
# pass a configuration that sets http.addr: 0.0.0.0:8080 and nats.url (see deployments/).

ARG GO_VERSION=1.26

# ---- build ---------------------------------------------------------------------------------
# Runs on the build host's platform and cross-compiles (no emulation for multi-arch builds).
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
# Dependencies first, so that source edits do not invalidate the module download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X github.com/remediator/remediator/cli.Version=${VERSION}" -o /remediator ./cmd/remediator

# ---- runtime -------------------------------------------------------------------------------
# static-debian12 has CA certificates (for https:// Okta invoke URLs) and tzdata, and nothing
# else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /remediator /remediator
USER nonroot
# Relative paths (the embedded NATS store ./data/nats) resolve under the nonroot home.
WORKDIR /home/nonroot
# /healthz, /readyz (http.addr in the configuration).
EXPOSE 8080
# No HEALTHCHECK: distroless has no shell, curl or wget to run one, and remediator has no
# self-probe subcommand. Orchestrators probe over HTTP instead (Kubernetes liveness/readiness
# on /healthz and /readyz, see deployments/kubernetes); compose relies on restart policies.
ENTRYPOINT ["/remediator"]
CMD ["run"]
