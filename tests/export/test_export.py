"""ONNX export: valid graph, dynamic batch, parity with PyTorch, sidecar, atomic writes."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.sidecar import sidecar_path
from edgeres.errors import ParityError, UserInputError
from edgeres.export.onnx_export import INPUT_NAME, OUTPUT_NAME, export_model, torch_to_onnx
from edgeres.export.parity import ParityTolerance, compare_logits, parity_batch, run_onnx
from edgeres.export.record import read_export_record
from edgeres.frames.contract import InputSpec
from edgeres.frames.images import imagenet_batch
from edgeres.model.arch import Arch
from edgeres.model.resnet import build_model


@pytest.fixture(scope="module")
def resnet50():
    return build_model(Arch.RESNET50, seed=1)


@pytest.fixture(scope="module")
def resnet50_onnx(resnet50) -> bytes:
    return torch_to_onnx(resnet50).SerializeToString()


@pytest.fixture(scope="module")
def real_batch(real_images):
    return imagenet_batch(real_images.values())


def test_graph_is_valid_opset17_with_named_dynamic_io(resnet50_onnx):
    proto = onnx.load_from_string(resnet50_onnx)
    onnx.checker.check_model(proto, full_check=True)
    assert [imp.version for imp in proto.opset_import if imp.domain in ("", "ai.onnx")] == [17]
    (graph_input,) = proto.graph.input
    assert graph_input.name == INPUT_NAME
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, 224, 224]
    assert proto.graph.output[0].name == OUTPUT_NAME


def test_constants_are_folded_and_shared_initializers_inlined(resnet50_onnx):
    ops = [node.op_type for node in onnx.load_from_string(resnet50_onnx).graph.node]
    assert "Identity" not in ops
    assert "BatchNormalization" not in ops  # folded into the convolutions in eval mode
    assert ops.count("Conv") == 53


@pytest.mark.parametrize("batch_size", [1, 4])
def test_parity_with_pytorch_on_real_photographs(resnet50, resnet50_onnx, real_batch, batch_size):
    from edgeres.export.parity import check_parity

    batch = parity_batch(real_batch[:batch_size], random_count=0)
    assert len(batch) == batch_size
    report = check_parity(resnet50, resnet50_onnx, batch, ParityTolerance())
    assert report.samples == batch_size
    assert report.max_abs_error < 1e-3 and report.min_cosine > 0.99999
    assert report.top1_agreement == 1.0


def test_dynamic_batch_runs_batch_of_three(resnet50_onnx):
    batch = parity_batch(None, random_count=3)
    assert run_onnx(resnet50_onnx, batch).shape == (3, 1000)


def test_compare_logits_detects_disagreement():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((4, 10)).astype(np.float32)
    assert compare_logits(ref, ref).max_abs_error == 0.0
    flipped = compare_logits(ref, -ref)
    assert flipped.min_cosine == pytest.approx(-1.0)
    assert flipped.top1_agreement == 0.0


def test_export_writes_model_and_sidecar(tmp_path, real_batch):
    model = build_model(Arch.RESNET18, num_classes=7)
    out = tmp_path / "r18.onnx"
    result = export_model(model, out, parity_batch(real_batch[:2]), weights=None)
    assert out.is_file() and result.path == out
    sidecar = json.loads(sidecar_path(out).read_text())
    assert sidecar["sha256"] == sha256_file(out)
    assert sidecar["options"]["num_classes"] == 7 and sidecar["options"]["arch"] == "resnet18"
    assert sidecar["options"]["random_weights"] is True
    assert sidecar["versions"]["onnxruntime"] and sidecar["versions"]["torch"]
    assert sidecar["results"]["parity"]["samples"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r18.onnx", "r18.onnx.json"]
    assert read_export_record(out) == result.record and result.record.parity == result.parity
    assert result.record.model.input == InputSpec.rgb(INPUT_NAME) and result.record.random_weights is True


def test_failed_parity_leaves_no_file(tmp_path, real_batch):
    model = build_model(Arch.RESNET18, num_classes=7)
    out = tmp_path / "r18.onnx"
    impossible = ParityTolerance(max_abs=0.0, min_cosine=1.1)
    with pytest.raises(ParityError, match="max abs error"):
        export_model(model, out, parity_batch(real_batch[:1]), weights=None, tolerance=impossible)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch, real_batch):
    import edgeres.artifacts.atomic as artifacts

    def interrupted(self, data):
        self.open("wb").write(data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(artifacts.Path, "write_bytes", interrupted)
    out = tmp_path / "r18.onnx"
    with pytest.raises(KeyboardInterrupt):
        export_model(build_model(Arch.RESNET18, num_classes=7), out, parity_batch(real_batch[:1]), weights=None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("opset", [16, 21])
def test_unsupported_opset_is_user_error(opset):
    with pytest.raises(UserInputError, match=f"opset {opset}"):
        torch_to_onnx(build_model(Arch.RESNET18), opset)


def test_opset_18_exports():
    proto = torch_to_onnx(build_model(Arch.RESNET18, num_classes=3), 18)
    assert [imp.version for imp in proto.opset_import if imp.domain in ("", "ai.onnx")] == [18]


def test_artifacts_get_the_usual_file_mode(tmp_path):
    import os

    from edgeres.artifacts.atomic import write_bytes_atomic

    previous = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "a.bin", b"x")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644
