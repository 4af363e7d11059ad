# syntax=docker/dockerfile:1
#
# The eventhub image: a static binary on distroless (no shell, no package
# manager), run as a numeric non-root user.
#
#   docker build -t ghcr.io/finexbot/eventhub:latest .
#
# The cache mounts need BuildKit (the default builder of Docker 23 and later).
# deploy/dockerfile_test.go checks this file; docs/deployment.md says how
# to run the image.

FROM golang:1.26 AS build
WORKDIR /src
# A static binary: no libc in the final image, so no cgo.
ENV CGO_ENABLED=0
# Modules first, so that a change to the code does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w" -o /out/eventhub ./cmd/eventhub

# static: CA certificates (Clerk's JWKS and Backend API, an https://
# permissions source), tzdata, /tmp and a nonroot user (65532); nothing else.
FROM gcr.io/distroless/static-debian13:nonroot
COPY --from=build /out/eventhub /eventhub
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 65532:65532
# The API, the streams and the dashboard; the admin port (/metrics,
# /healthz, /readyz, /debug/pprof/) for Prometheus and the kubelet only.
EXPOSE 8080 9090
ENTRYPOINT ["/eventhub"]
# Every other setting comes from EVENTHUB_* variables or more flags. --auth
# dev (the default) refuses an address beyond loopback: set
# EVENTHUB_AUTH=clerk with CLERK_JWT_KEY or CLERK_SECRET_KEY, and a publish key.
CMD ["serve", "--listen", "0.0.0.0:8080", "--admin-listen", "0.0.0.0:9090"]
