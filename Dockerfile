# syntax=docker/dockerfile:1
#
# Build:  docker build -t switchyard --build-arg VERSION=$(git describe --tags --always) .
# Run:    docker run -v $PWD/switchyard.yaml:/etc/switchyard/switchyard.yaml switchyard
#
# A static, stripped binary on distroless (no shell, no libc), running as
# the distroless nonroot user, 65532:65532. The config is taken whole from
# $SWITCHYARD_CONFIG_YAML, else read from ./switchyard.yaml in the working
# directory, /etc/switchyard (no SWITCHYARD_CONFIG is set here: it would
# conflict with SWITCHYARD_CONFIG_YAML); the admin endpoint listens on 9090
# (127.0.0.1 unless admin.listen says otherwise). /var/lib/switchyard is the
# place for the embedded NATS store (nats.store_dir), a volume owned by
# 65532, so the root file system can be read-only; ./data in the working
# directory links to it, so the default store_dir, ./data/nats, is there.
# deploy/deploy_test.go builds the binary with this file's go build line.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/switchyard ./cmd/switchyard
RUN mkdir -p /out/state /out/etc && ln -s /var/lib/switchyard /out/etc/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/switchyard /usr/local/bin/switchyard
COPY --from=build --chown=65532:65532 /out/state /var/lib/switchyard
COPY --from=build /out/etc/ /etc/switchyard/
WORKDIR /etc/switchyard
VOLUME /var/lib/switchyard
EXPOSE 9090
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["run"]
