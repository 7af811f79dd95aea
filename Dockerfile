# conlink's default image, built from source: `docker build -t conlink .`
#
# Two stages: a Rust build stage compiles the static binaries (as
# scripts/build-images does on the host) and stages them with
# docker/stage-rootfs; the runtime stage is docker/Dockerfile's: Debian
# bookworm-slim, the toolbox (docker/install-toolbox), the binaries.
#
# Base images are build arguments:
#   BUILD_IMAGE  an image with cargo/rustc >= 1.85, gcc and libc6-dev
#                (default rust:1-bookworm; offline: conlink-builder:local,
#                made by scripts/build-images from the host's toolchain)
#   BASE_IMAGE   Debian bookworm (default debian:bookworm-slim; offline:
#                scripts/build-images creates it with debootstrap)
# Crates come from crates.io, or from vendor/ when the context has one
# (`cargo vendor` first; vendor/ is never committed). Works with the classic
# builder (DOCKER_BUILDKIT=0) and with BuildKit.
ARG BUILD_IMAGE=rust:1-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY . /src
RUN set -eux; \
    command -v jq >/dev/null || { apt-get update; apt-get install -y --no-install-recommends jq; }; \
    if [ -d vendor ]; then \
        mkdir -p .cargo; \
        printf '[source.crates-io]\nreplace-with = "vendored-sources"\n\n[source.vendored-sources]\ndirectory = "vendor"\n' \
            > .cargo/config.toml; \
    fi; \
    export CARGO_TARGET_DIR=/build/target RUSTFLAGS='-C target-feature=+crt-static'; \
    cargo build --locked --release --target x86_64-unknown-linux-gnu --workspace \
        --exclude conlink-tools --bins; \
    cargo build --locked --profile tools --target x86_64-unknown-linux-gnu -p conlink-tools --bins; \
    docker/stage-rootfs /src /build/target/x86_64-unknown-linux-gnu /stage

FROM ${BASE_IMAGE}
COPY docker/install-toolbox /tmp/install-toolbox
RUN /tmp/install-toolbox && rm /tmp/install-toolbox
# The binaries last: they change far more often than the toolbox layer.
COPY --from=build /stage/rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/utils
CMD ["/usr/local/bin/conlink", "--help"]
