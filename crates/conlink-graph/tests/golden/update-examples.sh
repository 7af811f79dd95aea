#!/bin/sh
# Regenerates tests/golden/example-*.json: the `conlink --show-config` JSON
# of each example project, with the same files the example's own conlink
# command line uses plus its optional extra file. Bridge mode is pinned to
# linux so the result does not depend on the openvswitch module; default
# MACs are random, so review the diff and keep only real changes.
# Then refresh the DOT/Mermaid goldens:
#   UPDATE_GOLDEN=1 cargo test -p conlink-graph --test golden
#
# Usage: update-examples.sh CONLINK_BINARY EXAMPLES_DIR
set -eu
conlink=$1
ex=$2
out=$(cd "$(dirname "$0")" && pwd)
gen() {
    name=$1
    shift
    (cd "$ex/$name" && "$conlink" --show-config --default-bridge-mode linux "$@") >"$out/example-$name.json.tmp"
    mv "$out/example-$name.json.tmp" "$out/example-$name.json"
    echo "example-$name.json"
}
gen bridge-modes --compose-file compose.yaml
gen forward --compose-file compose.yaml
gen host-links --compose-file compose.yaml --network-file vlan.yaml
gen link-props --compose-file compose.yaml
gen multi --compose-file compose.yaml:compose.extra.yaml
gen router --compose-file compose.yaml
gen scale --compose-file compose.yaml --network-file network.yaml
gen tunnels --compose-file compose.yaml --network-file geneve.yaml
