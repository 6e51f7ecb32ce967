# Builds the single apmtel binary; every apmtel service of docker-compose.yml
# and the Helm chart runs it. Stamp the build (shown by `apmtel version`):
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t apmtel .
# (`task docker:build` does). .git is not in the build context
# (.dockerignore), so unstamped builds say "(devel)".
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
ARG COMMIT=""
ARG DATE=""
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
    -ldflags "-s -w \
      -X github.com/apmtel/apmtel/internal/version.version=${VERSION} \
      -X github.com/apmtel/apmtel/internal/version.commit=${COMMIT} \
      -X github.com/apmtel/apmtel/internal/version.date=${DATE}" \
    -o /apmtel ./cmd/apmtel

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /apmtel /apmtel
# uid/gid 65532 ("nonroot"); numeric, so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# A writable working directory for APMTEL_DATA_DIR (payload files when no
# telemetry cluster is configured).
WORKDIR /home/nonroot
# 8080: the monitor (APMTEL_MONITOR_ADDR); 8081: /healthz, /readyz and
# /metrics of worker and scheduler (APMTEL_HTTP_ADDR, off unless set).
EXPOSE 8080 8081
ENTRYPOINT ["/apmtel"]
