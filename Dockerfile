# One image with every binary; the compose file and the manifests pick the command.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# --build-arg VERSION=v1.4.0 --build-arg COMMIT=$(git rev-parse --short HEAD): what --version prints
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags="-s -w -X github.com/logicspike/comms/internal/app.Version=${VERSION} -X github.com/logicspike/comms/internal/app.Commit=${COMMIT}" \
    -o /out/ ./cmd/api ./cmd/worker ./cmd/webhook ./cmd/commsctl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
# The distroless "nonroot" user, by number, so that Kubernetes can check runAsNonRoot.
USER 65532:65532
ENTRYPOINT []
CMD ["api"]
