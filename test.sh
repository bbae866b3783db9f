#!/usr/bin/env bash
# Set up, then lint (ruff), type-check (mypy), check the import layers (import-linter) and run the whole
# test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
source ./setup.sh
.venv/bin/python -m ruff check .
.venv/bin/python -m mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest "$@"
