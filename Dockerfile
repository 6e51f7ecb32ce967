# Builds the single apmtel binary; every service of docker-compose.yml runs it.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /apmtel ./cmd/apmtel

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /apmtel /apmtel
# A writable working directory for APMTEL_DATA_DIR (payload files when no
# telemetry cluster is configured).
WORKDIR /home/nonroot
ENTRYPOINT ["/apmtel"]
