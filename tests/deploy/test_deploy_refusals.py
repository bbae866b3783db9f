"""Deploy verifies what it is given: tampered models and sidecars, mixed or unfinished build folders,
failed gates, missing engines; `edgeres info` on files its sidecar does not describe, and on empty files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.describe import describe_artifact
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.precision import Precision
from edgeres.artifacts.quantize_record import read_quantize_record
from edgeres.artifacts.sidecar import sidecar_path, write_sidecar
from edgeres.cli.app import app
from edgeres.deploy.model import read_deploy_model, select_artifact
from edgeres.errors import UserInputError
from tests.deploy.test_deploy import finish_build, tiny_artifact, write_summary
from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto


def flip_last_byte(path: Path) -> None:
    """Same size, other bytes: only the SHA-256 can tell."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def build_model(folder: Path, name: str, role: str, classes: int = 5, seed: int = 0) -> Path:
    """A model as `edgeres build` writes one (its sidecar has a build role)."""
    folder.mkdir(parents=True, exist_ok=True)
    precision = "int8" if role.startswith("int8") else role
    proto = tiny_classifier_proto(classes, seed=seed)
    return save_with_sidecar(proto, folder / name, precision, role=role)


def cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def assert_one_error_line(code: int, output: str, reason: str) -> None:
    assert code == 2, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and reason in errors[0], output
    assert "Traceback" not in output


# --- the file is not the one its sidecar describes ---------------------------------------------


def test_model_with_other_bytes_of_the_same_size_is_refused(tmp_path: Path):
    model = tiny_artifact(tmp_path / "build", "fp16")
    flip_last_byte(model)
    with pytest.raises(UserInputError, match="SHA-256 differs"):
        read_deploy_model(model)


def test_model_of_another_size_is_refused(tmp_path: Path):
    model = tiny_artifact(tmp_path / "build", "fp16")
    model.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(UserInputError, match="describes another file"):
        read_deploy_model(model)


def test_sidecar_with_an_edited_hash_is_refused(tmp_path: Path):
    model = tiny_artifact(tmp_path / "build", "fp16")
    sidecar = json.loads(sidecar_path(model).read_text())
    sidecar["sha256"] = "0" * 64
    sidecar_path(model).write_text(json.dumps(sidecar))
    with pytest.raises(UserInputError, match="SHA-256 differs"):
        read_deploy_model(model)


def test_sidecar_without_size_or_hash_is_refused(tmp_path: Path):
    model = tiny_artifact(tmp_path / "build", "fp16")
    sidecar = json.loads(sidecar_path(model).read_text())
    del sidecar["bytes"]
    sidecar_path(model).write_text(json.dumps(sidecar))
    with pytest.raises(UserInputError, match="records no bytes/sha256"):
        read_deploy_model(model)


# --- build folders: mixed, unfinished, failed --------------------------------------------------


def test_stale_int8_model_of_an_earlier_build_is_not_deployed(tmp_path: Path):
    build = tmp_path / "build"
    build_model(build, "model_int8_qdq.onnx", "int8_tensorrt", classes=7, seed=1)  # an earlier ResNet50 build
    fp16 = build_model(build, "model_fp16.onnx", "fp16")
    write_summary(build, {ArtifactRole.FP16: fp16})
    assert select_artifact(build) == fp16
    with pytest.raises(UserInputError, match="no int8 model"):
        select_artifact(build, Precision.INT8)
    with pytest.raises(UserInputError, match="not listed in"):
        read_deploy_model(build / "model_int8_qdq.onnx")


def test_model_whose_hash_differs_from_the_summarys_is_refused(tmp_path: Path):
    build = tmp_path / "build"
    fp16 = build_model(build, "model_fp16.onnx", "fp16")
    finish_build(build, sha256={"model_fp16.onnx": "f" * 64})
    with pytest.raises(UserInputError, match="differs from the SHA-256 recorded"):
        select_artifact(build)
    assert sha256_file(fp16) != "f" * 64


def test_folder_without_summary_is_an_unfinished_build(tmp_path: Path):
    build = tmp_path / "build"
    build_model(build, "model_fp16.onnx", "fp16")
    with pytest.raises(UserInputError, match=r"no build_summary\.json: not a finished build"):
        select_artifact(build)


def test_build_model_given_directly_without_summary_is_refused(tmp_path: Path):
    model = build_model(tmp_path / "build", "model_int8_qdq.onnx", "int8_tensorrt")
    with pytest.raises(UserInputError, match="fidelity was never checked"):
        read_deploy_model(model)


def test_summary_that_lacks_the_model_is_refused(tmp_path: Path):
    build = tmp_path / "build"
    model = build_model(build, "model_fp16.onnx", "fp16")
    other = build_model(tmp_path / "elsewhere", "model_fp32.onnx", "fp32")
    write_summary(build, {ArtifactRole.FP32: other})
    with pytest.raises(UserInputError, match="not listed in"):
        read_deploy_model(model)
    (build / "build_summary.json").write_text(json.dumps({"artifacts": {}, "gate_passed": True, "complete": True}))
    with pytest.raises(UserInputError, match="build summary lists no artifacts"):
        read_deploy_model(model)


def test_summary_of_an_unfinished_build_is_refused(tmp_path: Path):
    build = tmp_path / "build"
    build_model(build, "model_fp16.onnx", "fp16")
    finish_build(build, complete=False)
    with pytest.raises(UserInputError, match="the build did not finish"):
        select_artifact(build)


def test_summary_without_a_gate_result_is_refused(tmp_path: Path):
    build = tmp_path / "build"
    build_model(build, "model_fp16.onnx", "fp16")
    finish_build(build, gate_passed=None)
    with pytest.raises(UserInputError, match="records no gate result"):
        select_artifact(build)


def test_summary_that_is_not_json_is_refused(tmp_path: Path):
    build = tmp_path / "build"
    build_model(build, "model_fp16.onnx", "fp16")
    (build / "build_summary.json").write_text("{cut sho")
    with pytest.raises(UserInputError, match="build summary cannot be read"):
        select_artifact(build)


def test_failed_gate_is_refused_unless_overridden_and_the_override_is_recorded(tmp_path: Path):
    build = tmp_path / "build"
    model = build_model(build, "model_fp16.onnx", "fp16")
    finish_build(build, gate_passed=False)
    with pytest.raises(UserInputError, match="failed its fidelity gate"):
        select_artifact(build)
    assert select_artifact(build, allow_failed_gate=True) == model
    assert read_deploy_model(model, allow_failed_gate=True).gate_overridden
    assert not read_deploy_model(tiny_artifact(tmp_path / "export", "fp32")).gate_overridden


# --- a sidecar value of the wrong type: refused in one line naming the file ---------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_classes": "5"}, r"options\.num_classes is '5', not a whole number"),
        ({"num_classes": True}, r"options\.num_classes is True, not a whole number"),
        ({"input": 5}, r"options\.input is 5, not an object"),
        ({"input": {"kind": "rgb_planar", "name": "input", "shape": ["batch", 3, 32, 32]}}, r"input\.kind is 'rgb_pl"),
        ({"input": {"kind": "yuv422", "name": "frame", "shape": ["batch", 48, 128]}}, "input contract lacks layout"),
        ({"output": {"name": 7, "shape": ["batch", 5]}}, r"options\.output\.name is 7, not a string"),
        ({"random_weights": "yes"}, r"options\.random_weights is 'yes', not true or false"),
        ({"precision": 16}, r"options\.precision is 16, not a string"),
        ({"role": ["fp16"]}, r"options\.role is \['fp16'\], not a string"),
    ],
)
def test_deploy_refuses_a_sidecar_value_of_the_wrong_type(tmp_path: Path, options: dict, message: str):
    model = tiny_artifact(tmp_path, "fp32")
    written = json.loads(sidecar_path(model).read_text())
    write_sidecar(model, "export", written["inputs"], {**written["options"], **options})
    with pytest.raises(UserInputError, match=message) as info:
        read_deploy_model(model)
    assert str(info.value).startswith(f"{sidecar_path(model)}: options") and "\n" not in str(info.value)


def test_calibrated_ranges_of_the_wrong_type_are_refused_naming_the_file(tmp_path: Path):
    source = tiny_artifact(tmp_path, "fp32")
    model = tmp_path / "model_int8_qdq.onnx"
    model.write_bytes(source.read_bytes())
    inputs = {"onnx": str(source), "onnx_sha256": sha256_file(source)}
    write_sidecar(model, "quantize", inputs, {"role": "int8_tensorrt"}, {"ranges": {"conv": "big"}})
    refusal = r"model_int8_qdq\.onnx\.json: results\.ranges is .*not an object of numbers"
    with pytest.raises(UserInputError, match=refusal):
        read_quantize_record(model)


# --- the CLI: one error line, exit code 2, nothing written -------------------------------------


@pytest.mark.parametrize("target", ["triton", "deepstream"])
def test_cli_refuses_a_failed_gate_and_writes_nothing(tmp_path: Path, target: str):
    build = tmp_path / "build"
    build_model(build, "model_fp16.onnx", "fp16")
    finish_build(build, gate_passed=False)
    code, output = cli("deploy", target, build, "-o", tmp_path / "out", "--labels", _labels(tmp_path))
    assert_one_error_line(code, output, "failed its fidelity gate")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("target", ["triton", "deepstream"])
def test_cli_refuses_a_tampered_model_and_writes_nothing(tmp_path: Path, target: str):
    build = tmp_path / "build"
    model = build_model(build, "model_fp16.onnx", "fp16")
    finish_build(build)
    flip_last_byte(model)
    code, output = cli("deploy", target, build, "-o", tmp_path / "out", "--labels", _labels(tmp_path))
    assert_one_error_line(code, output, "differs from the SHA-256 recorded")
    assert not (tmp_path / "out").exists()


EDITS = {
    "arch": lambda sidecar: sidecar["options"].__setitem__("arch", "resnet152"),
    "num_classes": lambda sidecar: sidecar["options"].__setitem__("num_classes", 7),
    "precision": lambda sidecar: sidecar["options"].__setitem__("precision", "fp32"),
    "extra key": lambda sidecar: sidecar.__setitem__("note", "edited"),
}


@pytest.mark.parametrize("target", ["triton", "deepstream"])
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_cli_refuses_a_set_whose_sidecar_was_edited_and_writes_nothing(tmp_path: Path, target: str, edit: str):
    """The model is untouched; its sidecar (which names arch, classes, precision) is what was changed."""
    build = tmp_path / "build"
    build_model(build, "model_fp16.onnx", "fp16")
    finish_build(build)
    sidecar_file = build / "model_fp16.onnx.json"
    sidecar = json.loads(sidecar_file.read_text())
    EDITS[edit](sidecar)
    sidecar_file.write_text(json.dumps(sidecar))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("earlier contents")
    code, output = cli("deploy", target, build, "-o", tmp_path / "out", "--labels", _labels(tmp_path))
    assert_one_error_line(code, output, "model_fp16.onnx.json: differs from the SHA-256 recorded")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("name", ["calibration.table", "heldout.npz"])
def test_any_file_of_the_set_edited_or_gone_refuses_the_whole_set(tmp_path: Path, name: str):
    build = tmp_path / "build"
    model = build_model(build, "model_fp16.onnx", "fp16")
    extra = build / name
    extra.write_bytes(b"part of the set")
    write_summary(build, {ArtifactRole.FP16: model, ArtifactRole.CALIBRATION_TABLE: extra})
    extra.write_bytes(b"part of the set, edited")
    with pytest.raises(UserInputError, match=f"{name}: differs from the SHA-256 recorded"):
        select_artifact(build)
    extra.unlink()
    with pytest.raises(UserInputError, match=f"{name}: listed in .* but missing"):
        select_artifact(build)


def test_cli_refuses_an_unfinished_build_folder(tmp_path: Path):
    build = tmp_path / "build"
    build_model(build, "model_fp16.onnx", "fp16")
    code, output = cli("deploy", "deepstream", build, "-o", tmp_path / "out", "--labels", _labels(tmp_path))
    assert_one_error_line(code, output, "not a finished build")
    assert not (tmp_path / "out").exists()


def test_cli_deepstream_engine_that_does_not_exist_is_an_error(tmp_path: Path):
    build = tmp_path / "build"
    build_model(build, "model_fp16.onnx", "fp16")
    finish_build(build)
    args = ("-o", tmp_path / "out", "--labels", _labels(tmp_path), "--engine", tmp_path / "absent.engine")
    code, output = cli("deploy", "deepstream", build, *args)
    assert_one_error_line(code, output, "absent.engine: TensorRT engine not found")
    assert not (tmp_path / "out").exists()


def _labels(folder: Path, count: int = 5) -> Path:
    path = folder / "labels.txt"
    path.write_text("".join(f"part {i}\n" for i in range(count)))
    return path


# --- edgeres info ------------------------------------------------------------------------------


def test_info_says_when_the_sidecar_describes_another_file(tmp_path: Path):
    model = tiny_artifact(tmp_path, "fp32")
    assert describe_artifact(model)["sidecar_matches_file"] is True
    model.write_bytes(tiny_classifier_proto(5, seed=1).SerializeToString())  # same size, other weights
    description = describe_artifact(model)
    assert description["sidecar_matches_file"] is False
    assert "SHA-256 differs" in description["sidecar_mismatch"]


def test_info_cli_reports_a_size_mismatch(tmp_path: Path):
    model = tiny_artifact(tmp_path, "fp32")
    model.write_bytes(tiny_classifier_proto(6).SerializeToString())
    code, output = cli("info", model, "--json")
    assert code == 0, output
    assert json.loads(output)["sidecar_matches_file"] is False
    assert "describes another file" in json.loads(output)["sidecar_mismatch"]
    code, output = cli("info", model)
    assert code == 0 and "BUT" in output and "describes another file" in output, output


@pytest.mark.parametrize("name", ["model.onnx", "model.engine"])
def test_info_refuses_an_empty_file(tmp_path: Path, name: str):
    path = tmp_path / name
    path.write_bytes(b"")
    sidecar_path(path).write_text(json.dumps({"bytes": 0, "sha256": sha256_file(path)}))
    code, output = cli("info", path)
    assert_one_error_line(code, output, "0 bytes")


def test_an_overridden_gate_is_written_into_what_is_deployed(tmp_path: Path):
    build = tmp_path / "build"
    build_model(build, "model_fp16.onnx", "fp16", classes=5)
    finish_build(build, gate_passed=False)
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"part {i}" for i in range(5)) + "\n")
    code, output = cli("deploy", "triton", build, "--labels", names, "-o", tmp_path / "repo")
    assert_one_error_line(code, output, "failed its fidelity gate")
    assert not (tmp_path / "repo").exists()
    code, output = cli("deploy", "triton", build, "--labels", names, "--allow-failed-gate", "-o", tmp_path / "repo")
    assert code == 0, output
    (model_dir,) = (tmp_path / "repo").iterdir()
    assert (model_dir / "config.pbtxt").read_text().startswith("# fidelity gate FAILED")
    assert json.loads((model_dir / "edgeres.json").read_text())["gate_overridden"] is True
    code, output = cli("deploy", "deepstream", build, "--labels", names, "--allow-failed-gate", "-o", tmp_path / "ds")
    assert code == 0, output
    assert (tmp_path / "ds" / "config_infer_primary.txt").read_text().startswith("# fidelity gate FAILED")
