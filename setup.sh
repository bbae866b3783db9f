#!/usr/bin/env bash
# Create .venv if missing and install edgeres with its test tools (CPU build of PyTorch).
# Sourced by run.sh and test.sh; safe to run again (re-installs only when pyproject.toml changes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
stamp="$VENV/.installed"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements-cpu.txt -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-cpu.txt
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
  touch "$stamp"
fi
