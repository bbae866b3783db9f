"""Every TensorRT name edgeres uses must exist in the 10.x stubs or in the 11.x bindings.

TensorRT cannot run here, so this is the check that a call is at least spelled as some TensorRT
API spells it. Names are collected from the source with `ast`: attributes of the `tensorrt`
module and of every value obtained from it (builders, configs, engines, contexts...), plus the
string names given to getattr/hasattr on those values. The 10.x side is every name the
typings/ stubs define; the 11.x side is tests/data/tensorrt_11_api_names.txt (made by
scripts/make_trt_api_names.py from the tensorrt-cu13-bindings wheel). Flat name sets: mypy does
the per-class check against the 10.x stubs (see test_mypy_catches_a_misspelled_call).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Every module that imports tensorrt (collected, so a new one is checked too).
SOURCES = tuple(sorted(p for p in (ROOT / "edgeres").rglob("*.py") if "import tensorrt" in p.read_text()))
STUBS = ROOT / "typings"
NAMES_11 = ROOT / "tests" / "data" / "tensorrt_11_api_names.txt"


@dataclass
class TensorRTUses:
    """Names used on TensorRT values, with the line of the first use."""

    names: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, line: int) -> None:
        self.names.setdefault(name, line)


def _root_name(node: ast.expr) -> str | None:
    """`a.b().c` -> "a"; `self._engine` -> "self._engine"."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return f"self.{node.attr}"
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return node.id if isinstance(node, ast.Name) else None


def _targets(target: ast.expr, value: ast.expr) -> list[tuple[ast.expr, ast.expr | None]]:
    """Pair assignment targets with values, element-wise for tuple = tuple."""
    if isinstance(target, ast.Tuple):
        if isinstance(value, ast.Tuple) and len(value.elts) == len(target.elts):
            return [p for t, v in zip(target.elts, value.elts, strict=True) for p in _targets(t, v)]
        return [(t, None) for t in target.elts]
    return [(target, value)]


def _name_of(target: ast.expr) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
        return f"self.{target.attr}"
    return None


def collect_tensorrt_names(source: str) -> TensorRTUses:
    """Attribute names used on the `tensorrt` module and on values derived from it."""
    tree = ast.parse(source)
    imports = [alias for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names]
    tainted = {alias.asname or alias.name for alias in imports if alias.name == "tensorrt"}
    for _ in range(4):  # propagate through assignments until nothing new is found
        for node in ast.walk(tree):
            if isinstance(node, ast.AnnAssign) and "trt." in ast.unparse(node.annotation):
                if (name := _name_of(node.target)) is not None:
                    tainted.add(name)
            elif isinstance(node, ast.arg) and node.annotation is not None and "trt." in ast.unparse(node.annotation):
                tainted.add(node.arg)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    for sub_target, value in _targets(target, node.value):
                        name = _name_of(sub_target)
                        if name and value is not None and _root_name(value) in tainted:
                            tainted.add(name)
    uses = TensorRTUses()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _root_name(node.value) in tainted:
            uses.add(node.attr, node.lineno)
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args):
            continue
        if node.func.id in ("getattr", "hasattr") and _root_name(node.args[0]) in tainted:
            for arg in node.args[1:2]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    uses.add(arg.value, arg.lineno)
    return uses


def _string_lists_fed_to_getattr(source: str) -> set[str]:
    """Strings in list literals inside `{Precision.X: [...]}` maps that feed getattr(trt.BuilderFlag, name)."""
    tree = ast.parse(source)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
            isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id == "getattr"
            and "trt." in ast.unparse(c.args[0]) and isinstance(c.args[1], ast.Name)
            for c in ast.walk(node)
        ):
            for lst in ast.walk(node):
                if isinstance(lst, ast.List):
                    found |= {e.value for e in lst.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return found


@cache
def stub_names() -> frozenset[str]:
    """Every name the 10.x stubs define: classes, functions, methods, attributes, enum members."""
    names: set[str] = set()
    for path in STUBS.rglob("*.pyi"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef | ast.FunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.ImportFrom):
                names.update(a.asname or a.name for a in node.names)
    return frozenset(names)


@cache
def names_11() -> frozenset[str]:
    return frozenset(line for line in NAMES_11.read_text().splitlines() if line and not line.startswith("#"))


def _word_tail(entry: str, name: str) -> bool:
    """`name` ends `entry` at a word start: after a lowercase letter or "_", or after the interface "I"."""
    if len(entry) <= len(name) or not entry.endswith(name):
        return False
    prefix = entry[: -len(name)]
    return prefix[-1].islower() or prefix[-1] == "_" or (prefix == "I" and name[0].isupper())


def in_11(name: str) -> bool:
    """Listed, or stored as the tail of a longer string (the linker merges "Builder" into "IExprBuilder").

    Tails count only at a word start, so "INT8" is not found inside "UINT8".
    """
    return name in names_11() or any(_word_tail(entry, name) for entry in names_11())


@dataclass(frozen=True)
class SurfaceReport:
    unknown: dict[str, int]
    only_10: list[str]
    only_11: list[str]
    both: list[str]


def check_surface(source: str) -> SurfaceReport:
    uses = collect_tensorrt_names(source).names
    uses.update(dict.fromkeys(_string_lists_fed_to_getattr(source), 0))
    unknown = {n: line for n, line in uses.items() if n not in stub_names() and not in_11(n)}
    only_10 = sorted(n for n in uses if n in stub_names() and not in_11(n))
    only_11 = sorted(n for n in uses if n not in stub_names() and in_11(n))
    both = sorted(n for n in uses if n in stub_names() and in_11(n))
    return SurfaceReport(unknown, only_10, only_11, both)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT / "edgeres")))
def test_every_tensorrt_name_exists_in_10x_or_11x(source: Path) -> None:
    report = check_surface(source.read_text())
    assert not report.unknown, f"{source.name}: names in neither TensorRT 10.x nor 11.x: {report.unknown}"
    print(f"\n{source.name}: {len(report.both)} names in both; 10.x only: {report.only_10}; 11.x: {report.only_11}")


def test_collector_sees_the_calls_that_matter() -> None:
    used = {name for source in SOURCES for name in check_surface(source.read_text()).both}
    expected = {"execute_async_v3", "set_tensor_address", "set_input_shape", "build_serialized_network",
                "create_optimization_profile", "set_shape", "deserialize_cuda_engine", "STRONGLY_TYPED"}
    assert expected <= used, f"not collected: {sorted(expected - used)}"


def test_legacy_precision_flags_are_reported_as_10x_only() -> None:
    report = check_surface((ROOT / "edgeres" / "engine" / "builder.py").read_text())
    assert {"FP16", "INT8", "EXPLICIT_BATCH"} <= set(report.only_10)


MISSPELLED = textwrap.dedent(
    """
    from __future__ import annotations

    def run(stream: int) -> None:
        import tensorrt as trt

        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = runtime.deserialize_cuda_engine(b"")
        context = engine.create_execution_context()
        context.execute_asyncc_v3(stream)
    """
)


def test_surface_check_catches_a_misspelled_call(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(MISSPELLED)
    report = check_surface(probe.read_text())
    assert list(report.unknown) == ["execute_asyncc_v3"]
    assert check_surface(MISSPELLED.replace("asyncc", "async")).unknown == {}


def run_mypy(cache: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    config = str(ROOT / "pyproject.toml")
    command = [sys.executable, "-m", "mypy", "--config-file", config, "--cache-dir", str(cache), *map(str, paths)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


DIMS_PROBE = textwrap.dedent(
    """
    import tensorrt as trt

    def shape(profile: trt.IOptimizationProfile) -> None:
        profile.set_shape("input", (1, 3, 224, 224), (1, 3, 224, 224), (1, 3, 224, 224))
    """
)


def test_mypy_catches_a_misspelled_call_and_a_tuple_for_dims(tmp_path: Path) -> None:
    """mypy with typings/ flags the misspelling, passes the corrected file, and flags a tuple where the
    stubs declare Dims (why engine.as_dims exists)."""
    pytest.importorskip("mypy")
    misspelled, fixed, dims = tmp_path / "misspelled.py", tmp_path / "fixed.py", tmp_path / "dims.py"
    misspelled.write_text(MISSPELLED)
    fixed.write_text(MISSPELLED.replace("asyncc", "async"))
    dims.write_text(DIMS_PROBE)
    result = run_mypy(tmp_path / "cache", misspelled)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'has no attribute "execute_asyncc_v3"; maybe "execute_async_v3"?' in result.stdout
    second = run_mypy(tmp_path / "cache", fixed, dims)
    errors = [line for line in second.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 3, second.stdout + second.stderr  # min, opt and max; none in fixed.py
    for error in errors:
        assert error.startswith(str(dims)), error
        assert '"set_shape" of "IOptimizationProfile" has incompatible type "tuple[int, int, int, int]"' in error
