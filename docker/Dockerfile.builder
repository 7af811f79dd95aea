# A local Rust build image for the root Dockerfile's build stage, for
# machines without an image registry (no rust:* image to pull). Made by
# scripts/build-images from the host's own toolchain:
#
#   context: rust/ = the host toolchain's sysroot (bin/cargo, bin/rustc,
#            lib/: librustc_driver, LLVM, the x86_64 std), no docs
#
# With a registry, use an official image instead
# (`--build-arg BUILD_IMAGE=rust:1-bookworm`): it has the same tools.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# gcc + libc6-dev: the linker and the static glibc (libc.a) crt-static
# needs; jq: docker/stage-rootfs reads cargo metadata with it;
# ca-certificates: cargo fetches crates over https when not vendored.
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        gcc libc6-dev jq ca-certificates; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
COPY rust/ /usr/local/rust/
ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CARGO_HOME=/usr/local/cargo
RUN rustc --version && cargo --version
