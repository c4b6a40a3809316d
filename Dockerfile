# syntax=docker/dockerfile:1
#
# Build:  docker build -t switchyard --build-arg VERSION=$(git describe --tags --always) .
# Run:    docker run -v $PWD/switchyard.yaml:/etc/switchyard/switchyard.yaml switchyard
#
# A static, stripped binary on distroless, running as a non-root user. The
# config is read from /etc/switchyard/switchyard.yaml (or
# $SWITCHYARD_CONFIG); the admin endpoint listens on 9090.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/switchyard ./cmd/switchyard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/switchyard /usr/local/bin/switchyard
ENV SWITCHYARD_CONFIG=/etc/switchyard/switchyard.yaml
EXPOSE 9090
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["run"]
