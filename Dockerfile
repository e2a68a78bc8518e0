# Build: docker build -t eventlistener .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/eventlistener ./cmd/eventlistener

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/eventlistener --create-home eventlistener \
    && install -d -o eventlistener -g eventlistener -m 0700 /var/lib/eventlistener/data
COPY --from=build /out/eventlistener /usr/local/bin/eventlistener
USER eventlistener
WORKDIR /var/lib/eventlistener
# The WAL (every acknowledged event until the stores have it) and the
# fallback log live here: mount a persistent volume. The folder is made
# above, owned by the engine's user, so a new named volume starts with that
# owner (Docker copies it) instead of root's.
ENV EVENTLISTENER_DATA_DIR=/var/lib/eventlistener/data
VOLUME /var/lib/eventlistener/data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/eventlistener"]
CMD ["serve"]
