#!/usr/bin/env bash
# Set up, then run the main job on the shipped defaults. Extra arguments go to `edgeres export`.
set -euo pipefail
cd "$(dirname "$0")"
source ./setup.sh
.venv/bin/edgeres export -o out/model.onnx "$@"
