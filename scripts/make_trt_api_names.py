"""Regenerate tests/data/tensorrt_11_api_names.txt: the names the TensorRT 11.x Python bindings define.

Source: the `tensorrt-cu13-bindings` wheel, which installs without TensorRT's libraries. Its pybind11
extension module keeps every bound name (classes, methods, properties, enum members) as a
NUL-terminated string; those that are whole identifiers are listed, plus the names the package's
`__init__.py` defines. The linker may store a short name as the tail of a longer one ("Builder"
inside "IExprBuilder"), so the test also accepts a name found as such a tail, and says so.

Usage: python scripts/make_trt_api_names.py [--wheel tensorrt_cu13_bindings-*.whl]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

BINDINGS_VERSION = "11.4.0.106"
OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "tensorrt_11_api_names.txt"
IDENTIFIER = re.compile(rb"^[A-Za-z_][A-Za-z0-9_]{1,63}$")


def fetch_wheel(folder: Path) -> Path:
    wheel = f"tensorrt-cu13-bindings=={BINDINGS_VERSION}"
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", wheel]
    subprocess.run([*command, "--python-version", "3.11", "--only-binary=:all:", "-d", str(folder)], check=True)
    return next(folder.glob("tensorrt_cu13_bindings-*.whl"))


def extension_names(blob: bytes) -> set[str]:
    """Whole-identifier NUL-terminated strings, without C++ mangled symbols."""
    names = set()
    for chunk in blob.split(b"\0"):
        if IDENTIFIER.match(chunk) and not chunk.startswith(b"_Z"):
            names.add(chunk.decode())
    return names


def python_names(source: str) -> set[str]:
    """Top-level names a Python module defines (functions, classes, assignments)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def generate(wheel: Path, output: Path = OUTPUT) -> int:
    with zipfile.ZipFile(wheel) as archive:
        extension = next(n for n in archive.namelist() if re.match(r"tensorrt_bindings/tensorrt.*\.so$", n))
        names = extension_names(archive.read(extension))
        names |= python_names(archive.read("tensorrt_bindings/__init__.py").decode())
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    header = [
        f"# TensorRT 11.x Python API names, from {wheel.name} (sha256 {digest})",
        f"# extension module {extension} + tensorrt_bindings/__init__.py; made by scripts/make_trt_api_names.py",
    ]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join([*header, *sorted(names)]) + "\n")
    return len(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a downloaded tensorrt_cu13_bindings-*.whl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        count = generate(args.wheel or fetch_wheel(Path(tmp)))
    print(f"wrote {count} names to {OUTPUT}")


if __name__ == "__main__":
    main()
