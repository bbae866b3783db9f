"""What the wheel carries: every package of the tree, the calibration photographs, the schema, the labels."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent


def declared() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_of_the_tree_is_listed() -> None:
    tree = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "edgeres").rglob("__init__.py")}
    assert tree <= set(declared()["packages"]), sorted(tree - set(declared()["packages"]))


def test_the_calibration_photographs_install_inside_the_package() -> None:
    config = declared()
    assert config["package-dir"]["edgeres.calibration"] == "calibration"
    photos = sorted(p.name for p in (ROOT / "calibration").glob("*.jpg"))
    assert len(photos) >= 8  # the held-out split and the front-end parity check need several


@pytest.mark.slow
def test_built_wheel_carries_photographs_schema_and_labels(tmp_path: Path) -> None:
    """Build the wheel from this checkout (no network: the installed setuptools builds it)."""
    import subprocess
    import sys

    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("edgeres-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    photos = {f"edgeres/calibration/{p.name}" for p in (ROOT / "calibration").glob("*.jpg")}
    assert photos <= names
    assert "edgeres/profile/schemas/profile_report.schema.json" in names
    assert "edgeres/data/imagenet_classes.txt" in names
    assert "edgeres/cli/app.py" in names and "edgeres/__main__.py" in names
    templates = {f"edgeres/report/{p.name}" for p in (ROOT / "edgeres" / "report").glob("*.j2")}
    assert templates and templates <= names  # report.html is drawn from them


def imported_distributions() -> set[str]:
    """The third-party distributions whose modules edgeres imports anywhere, lazily included."""
    import ast
    import sys
    from importlib.metadata import packages_distributions

    owners = packages_distributions()
    modules: set[str] = set()
    for path in (ROOT / "edgeres").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - {"edgeres", "__future__"}
    return {dist.lower() for module in third_party for dist in owners.get(module, [module])}


def test_every_module_a_command_imports_is_a_declared_dependency() -> None:
    """A wheel user gets what the commands need (the GPU extra's packages are imported only on a device, the
    openvino extra's only by the OpenVINO runner, which names the extra when it is missing)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    requirements = project["dependencies"] + extras["gpu"] + extras["openvino"]
    names = {req.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower() for req in requirements}
    # Imported only on an NVIDIA machine, each guarded: TensorRT and CUDA (the gpu extra), NVML (optional).
    on_device = {name for name in imported_distributions() if name.startswith(("tensorrt", "cuda", "pynvml"))}
    missing = sorted(imported_distributions() - names - on_device)
    assert missing == [], f"imported but not declared: {missing}"


@pytest.mark.slow
def test_the_installed_wheel_builds_profiles_and_describes_from_an_unrelated_folder(tmp_path: Path) -> None:
    """The wheel alone (not this checkout) runs a user's first commands: build, profile --json --plot, info."""
    import os
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("edgeres-*.whl")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)  # fmt: skip
    work = tmp_path / "user"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "120"}

    def edgeres(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "edgeres", *args], cwd=work, env=env, capture_output=True,
                              text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    where = subprocess.run([sys.executable, "-c", "import edgeres; print(edgeres.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert where.startswith(str(site)), where  # the wheel's copy, not the checkout's
    edgeres("build", "--int8", "--arch", "resnet18", "--calib-size", "8", "--no-profile", "-o", "out")
    edgeres("profile", "out", "--batch", "1", "--iterations", "3", "--warmup", "1", "--no-layers",
            "--json", "r.json", "--plot", "plots")  # fmt: skip
    assert (work / "r.json").is_file() and any((work / "plots").glob("*.png"))
    assert "a finished build" in edgeres("info", "out")
    assert "Build report" in (work / "out" / "report.html").read_text()  # the templates came with the wheel
