"""`build` checks the given ONNX up front: one input, of a fixed size; nothing is written when it is refused."""

from __future__ import annotations

import re
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from edgeres.artifacts.precision import Precision
from edgeres.cli.app import app
from edgeres.errors import UserInputError
from edgeres.flow.options import BuildOptions
from tests.fixtures.tiny_classifier import tiny_classifier_proto


def two_input_model(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["logits"])],
        "two_inputs",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 32, 32]) for n in ("a", "b")],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 32, 32])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def dynamic_size_model(path: Path) -> Path:
    model = tiny_classifier_proto(5)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (two_input_model, "2 inputs; a classifier with one input is expected"),
        (dynamic_size_model, "input 'input' [?, 3, ?, ?] has dynamic axes [2, 3] (height/width)"),
    ],
)
def test_given_onnx_is_refused_before_anything_is_written(tmp_path: Path, make, reason: str):
    source = make(tmp_path / "given.onnx")
    with pytest.raises(UserInputError, match=re.escape(reason)) as refused:
        BuildOptions(precision=Precision.FP16, onnx=source).check_files()
    assert str(source) in str(refused.value)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", "--fp16", "--onnx", str(source), "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert reason in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_the_tool_the_dynamic_size_refusal_names_makes_a_model_that_builds(tmp_path: Path) -> None:
    """The advice is runnable: onnxruntime's make_dynamic_shape_fixed, as the message spells it, fixes the axes."""
    import subprocess
    import sys

    source = dynamic_size_model(tmp_path / "given.onnx")
    with pytest.raises(UserInputError) as refused:
        BuildOptions(precision=Precision.FP16, onnx=source).check_files()
    command = re.search(r"`python -m (\S+) --dim_param NAME --dim_value SIZE IN OUT`", str(refused.value))
    assert command is not None, refused.value
    fixed = tmp_path / "fixed.onnx"
    for name in ("height", "width"):
        given = fixed if fixed.exists() else source
        subprocess.run([sys.executable, "-m", command.group(1), "--dim_param", name, "--dim_value", "32",
                        str(given), str(fixed)], check=True, capture_output=True)  # fmt: skip
    BuildOptions(precision=Precision.FP16, onnx=fixed).check_files()
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", "--fp16", "--onnx", str(fixed), "--no-profile", "-o", str(out)])
    assert result.exit_code == 0, result.output


def test_raw_frames_without_their_format_are_refused_before_the_export(tmp_path: Path) -> None:
    """Named with the option and its spelling, before ten seconds of export are spent."""
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (dumps / "cam0.yuyv").write_bytes(bytes(64 * 48 * 2 * 2))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", "--int8", "--calib", str(dumps), "-o", str(out)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "FORMAT:WxH (e.g. yuyv:1920x1080): --calib-format" in result.output
    assert "randomly initialised" not in result.output and not out.exists()  # nothing exported
