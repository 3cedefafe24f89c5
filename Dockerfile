# syntax=docker/dockerfile:1
#
# The signsvr container image, in two flavours (make image builds both):
#
#   docker build --target static -t signsvr:static .   (the default target)
#       CGO_ENABLED=0 on distroless static: no libc at all, no PKCS#11. Keys in files.
#   docker build --target pkcs11 -t signsvr:pkcs11 .
#       glibc and cgo on distroless cc (glibc, libgcc, libstdc++), for HSM keys through
#       PKCS#11. The vendor's module is not in the image: mount it at run time (a
#       volume at /opt/pkcs11, named by keystore.pkcs11.tokens[].module) or add it in
#       a derived image (README, "Container image"). Most vendor modules are built
#       for glibc and do not load on musl, hence glibc here and not Alpine.
#
# Both run as the distroless "nonroot" user (65532), write nothing outside the two
# volumes (the data directory and the audit log), so they run with a read-only root
# filesystem, serve the API on 50051 (mutual TLS) and the operations listener on
# 9090 (plaintext: health, /metrics, /healthz, /readyz), and drain on SIGTERM within
# the config's shutdown_timeout. The configuration is mounted at
# /etc/signsvr/signsvr.yaml; its secrets (TLS key, keys, PINs) are mounted beside it.
#
# Base images are named by tag. Pin them by digest where the image is built for
# production: look the digest up with `crane digest IMAGE` or `docker buildx
# imagetools inspect IMAGE` and pass IMAGE@sha256:... as the build argument, e.g.
#   docker build --build-arg STATIC_BASE=gcr.io/distroless/static-debian12:nonroot@sha256:<digest> .
# The build stage is Debian 12 (bookworm) like the distroless bases, so the cgo
# binary needs no newer glibc than the runtime has.
ARG GO_IMAGE=golang:1.26-bookworm
ARG STATIC_BASE=gcr.io/distroless/static-debian12:nonroot
ARG CC_BASE=gcr.io/distroless/cc-debian12:nonroot

# The sources and their modules, shared by both builds.
FROM ${GO_IMAGE} AS source
ARG GOPROXY
ENV GOFLAGS=-mod=readonly GOTOOLCHAIN=local
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
# The data directory and the audit directory, owned by the runtime user: the final
# stages copy them in, so that a fresh volume starts owned by 65532.
RUN mkdir -p /rootfs/var/lib/signsvr/audit && chmod 0750 /rootfs/var/lib/signsvr /rootfs/var/lib/signsvr/audit

# static: no cgo. The binary refuses a config with a pkcs11 section and says so.
FROM source AS build-static
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w -buildid=" -o /out/signsvr ./cmd/signsvr

# pkcs11: cgo against glibc (the PKCS#11 module is loaded with dlopen at run time).
FROM source AS build-pkcs11
RUN CGO_ENABLED=1 go build -trimpath -buildvcs=false -ldflags="-s -w -buildid=" -o /out/signsvr ./cmd/signsvr

FROM ${CC_BASE} AS pkcs11
COPY --from=build-pkcs11 /out/signsvr /usr/local/bin/signsvr
COPY --from=source --chown=65532:65532 /rootfs/var/lib/signsvr /var/lib/signsvr
USER 65532:65532
WORKDIR /var/lib/signsvr
VOLUME ["/var/lib/signsvr", "/var/lib/signsvr/audit"]
EXPOSE 50051 9090
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/signsvr"]
CMD ["serve", "--config", "/etc/signsvr/signsvr.yaml"]

# The default target comes last.
FROM ${STATIC_BASE} AS static
COPY --from=build-static /out/signsvr /usr/local/bin/signsvr
COPY --from=source --chown=65532:65532 /rootfs/var/lib/signsvr /var/lib/signsvr
USER 65532:65532
WORKDIR /var/lib/signsvr
VOLUME ["/var/lib/signsvr", "/var/lib/signsvr/audit"]
EXPOSE 50051 9090
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/signsvr"]
CMD ["serve", "--config", "/etc/signsvr/signsvr.yaml"]
