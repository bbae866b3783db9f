"""The import-linter layers contract in pyproject.toml: kept by the tree, broken by an upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def toml_value(value: object) -> str:
    if isinstance(value, list):
        return "[\n" + "".join(f"    {toml_value(item)},\n" for item in value) + "]"
    return f'"{value}"'


def contract_config(folder: Path) -> Path:
    """pyproject's import-linter section alone, as the file lint-imports reads in `folder`."""
    section = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    text = f'[tool.importlinter]\nroot_package = "{section["root_package"]}"\n'
    for contract in section["contracts"]:
        text += "\n[[tool.importlinter.contracts]]\n"
        text += "".join(f"{key} = {toml_value(value)}\n" for key, value in contract.items())
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
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "edgeres", tmp_path / "edgeres")
    atomic = tmp_path / "edgeres" / "artifacts" / "atomic.py"
    atomic.write_text(atomic.read_text() + "\nfrom edgeres.flow import orchestrator  # noqa: E402, F401\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "edgeres.artifacts.atomic -> edgeres.flow.orchestrator" in result.stdout


def test_samples_sit_below_quantize_and_train_reads_no_quantize_module(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "edgeres", tmp_path / "edgeres")
    reader = tmp_path / "edgeres" / "samples" / "reader.py"
    reader.write_text(reader.read_text() + "\nfrom edgeres.quantize import fidelity  # noqa: E402, F401\n")
    dataset = tmp_path / "edgeres" / "train" / "dataset.py"
    dataset.write_text(dataset.read_text() + "\nfrom edgeres.quantize import histogram  # noqa: E402, F401\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "edgeres.samples.reader -> edgeres.quantize.fidelity" in result.stdout
    assert "edgeres.train.dataset -> edgeres.quantize.histogram" in result.stdout
    assert "0 kept, 2 broken" in result.stdout
