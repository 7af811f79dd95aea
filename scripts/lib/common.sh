# shellcheck shell=bash
# Shared helpers for conlink's setup scripts (install-deps, build-images) and
# for shell snippets of end-to-end tests. Source it; it defines functions and
# the image-name variables, and changes nothing on the machine by itself.

# Image names the tests and scripts agree on. Override from the environment.
: "${CONLINK_IMAGE:=conlink:latest}"                     # default image (toolbox)
: "${CONLINK_MINIMAL_IMAGE:=conlink:minimal}"            # FROM scratch, binaries only
: "${CONLINK_TEST_IMAGE:=conlink-test-busybox:latest}"   # test containers
: "${CONLINK_BASE_IMAGE:=debian:bookworm-slim}"          # base of the default image
: "${CONLINK_BUILDER_IMAGE:=conlink-builder:local}"       # Rust build stage (root Dockerfile)
export CONLINK_IMAGE CONLINK_MINIMAL_IMAGE CONLINK_TEST_IMAGE CONLINK_BASE_IMAGE CONLINK_BUILDER_IMAGE

# Where install-deps puts the compose v2 plugin (the docker CLI looks there).
CONLINK_COMPOSE_PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose
# Log file of a dockerd that install-deps started.
CONLINK_DOCKERD_LOG=/var/log/conlink-dockerd.log

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

require_root() {
    [ "$(id -u)" = 0 ] || die "must run as root"
}

# apt_install PKG...: install the packages with apt, without recommends.
# Waits for the dpkg lock (several engineers share the machine), refreshes
# the package lists once per run if an install fails on missing lists.
apt_install() {
    local opts=(-y -qq --no-install-recommends -o DPkg::Lock::Timeout=600)
    log "installing: $*"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" >/dev/null; then
        log "apt-get install failed; refreshing package lists and retrying"
        apt-get update -qq -o DPkg::Lock::Timeout=600
        DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" >/dev/null
    fi
}

# pkg_installed PKG: true when dpkg has PKG fully installed.
pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# debian_mirror: the Debian archive URI this machine's apt already uses (the
# URIs: line of the deb822 stanza for the main archive, or a sources.list
# line), so downloads go where the machine can reach. Falls back to
# deb.debian.org.
debian_mirror() {
    local uri=""
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        # First URIs: line not pointing at the security archive.
        uri=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' \
            /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $0 !~ /security/ {
            for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit } }' \
            /etc/apt/sources.list)
    fi
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# docker_answers: true when a docker daemon answers on the default socket.
docker_answers() {
    timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# image_label IMAGE LABEL: print the label's value ("" when absent or no image).
image_label() {
    docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}
