#!/usr/bin/env bash
# Set up, then run the main job on the shipped defaults. Extra arguments go to `edgeres build`.
set -euo pipefail
cd "$(dirname "$0")"
source ./setup.sh
.venv/bin/edgeres build --int8 -o out/build "$@"
