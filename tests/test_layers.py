"""The import-linter layers contract in pyproject.toml: kept by the tree, broken by an upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contract_config(folder: Path) -> Path:
    """pyproject's import-linter section alone, as the file lint-imports reads in `folder`."""
    section = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = section["contracts"]
    layers = ",\n".join(f'    "{layer}"' for layer in contract["layers"])
    text = (
        f'[tool.importlinter]\nroot_package = "{section["root_package"]}"\n\n'
        f'[[tool.importlinter.contracts]]\nname = "{contract["name"]}"\ntype = "{contract["type"]}"\n'
        f"layers = [\n{layers},\n]\n"
    )
    config = folder / "pyproject.toml"
    config.write_text(text)
    return config


def lint(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(contract_config(folder)), "--no-cache"],
        cwd=folder,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(folder), "PATH": str(LINT_IMPORTS.parent)},
    )


def test_the_tree_keeps_the_layers(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "edgeres", tmp_path / "edgeres")
    result = lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "edgeres", tmp_path / "edgeres")
    atomic = tmp_path / "edgeres" / "artifacts" / "atomic.py"
    atomic.write_text(atomic.read_text() + "\nfrom edgeres.flow import orchestrator  # noqa: E402, F401\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "edgeres.artifacts.atomic -> edgeres.flow.orchestrator" in result.stdout
