"""An ONNX file that is not a usable model gets the same one line from every command that reads one:
its cause named (an empty file, bytes that are not ONNX, an external weight file not beside it), exit 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from edgeres.cli.app import app
from tests.fixtures.tiny_classifier import tiny_classifier_proto


def _empty(folder: Path) -> Path:
    path = folder / "empty.onnx"
    path.write_bytes(b"")
    return path


def _junk(folder: Path) -> Path:
    path = folder / "junk.onnx"
    path.write_bytes(b"\x00\xffnot protobuf at all" * 10)
    return path


def _weights_gone(folder: Path) -> Path:
    path = folder / "external.onnx"
    onnx.save(tiny_classifier_proto(10), str(path), save_as_external_data=True, location="external.data",
              size_threshold=0)  # fmt: skip
    (folder / "external.data").unlink()
    return path


def _no_nodes(folder: Path) -> Path:
    path = folder / "hollow.onnx"
    model = onnx.helper.make_model(onnx.helper.make_graph([], "hollow", [], []))
    path.write_bytes(model.SerializeToString())
    return path


FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty": (_empty, "0 bytes: an empty file, not a model"),
    "not onnx": (_junk, "not a valid ONNX model"),
    "external weights gone": (_weights_gone, "its external weight file 'external.data' is not beside it"),
    "no nodes": (_no_nodes, "not an ONNX model (no graph nodes)"),
}
COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "build": lambda model, out: ["build", "--onnx", str(model), "--no-profile", "-o", str(out)],
    "profile": lambda model, out: ["profile", str(model), "--iterations", "2"],
    "verify": lambda model, out: ["verify", str(model), str(out)],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("kind", sorted(FILES))
def test_an_unusable_onnx_is_one_line_naming_its_cause(tmp_path: Path, command: str, kind: str) -> None:
    make, reason = FILES[kind]
    model = make(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier.txt").write_text("there before")
    result = CliRunner().invoke(app, COMMANDS[command](model, out))
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert reason in errors[0] and "Traceback" not in result.output, result.output
    assert sorted(p.name for p in out.iterdir()) == ["earlier.txt"]


@pytest.mark.parametrize("name", ["two\nlines.onnx", "carriage\rreturn.onnx", "separator\u2028.onnx"])
def test_a_name_with_a_line_break_stays_on_the_one_error_line(tmp_path: Path, name: str) -> None:
    result = CliRunner().invoke(app, ["profile", str(tmp_path / name)])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert len(result.output.strip().splitlines()) == 1 and repr(name)[1:-1] in errors[0], result.output
