"""`edgeres finetune --qat-epochs N` and `edgeres build --int8 --onnx OUT/model_qat.onnx`, at 32x32 to stay fast.

What is checked: the QAT epochs write a model carrying its scales and a record whose epoch 0 is post-training
quantization; a build of it quantizes at those scales (the same Q/DQ tensors as a PTQ build of the fine-tuned
model, one scale each, the stored weight scales written as they are) without calibrating; options that would
recalibrate over it and tampered scales are refused in one line; an interrupted QAT run resumes to exactly what
an uninterrupted one makes; a changed resume and a damaged QAT checkpoint are refused.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from typer.testing import CliRunner

from edgeres.cli.app import app
from edgeres.errors import CheckpointError, UserInputError
from edgeres.flow.finetune_qat import QAT_MODEL_NAME, QAT_RESUME_NAME, QatRequest, finetune_qat
from edgeres.model.arch import Arch
from edgeres.qat.distill import PARITY_MIN_SQNR_DB
from edgeres.qat.scales import METADATA_KEY, trained_scales
from edgeres.train.finetune import FinetuneData
from edgeres.train.finetune import finetune as run_finetune
from edgeres.train.options import FinetuneOptions, Unfreeze
from tests.train.conftest import export_at, write_random_checkpoint, write_task

SIZE = 32
QAT_EPOCHS = 2


def _finetune_args(task: tuple[Path, Path], weights: Path, out: Path) -> list[str]:
    return ["finetune", str(task[0]), "--val", str(task[1]), "-o", str(out), "--arch", "resnet18", "--weights",
            str(weights), "--size", str(SIZE), "--epochs", "2", "--warmup-epochs", "0", "--unfreeze", "all",
            "--batch", "16"]  # fmt: skip


@pytest.fixture(scope="module")
def qat_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fine-tune with QAT epochs, a build of its QAT model, and a PTQ build of its float model."""
    root = tmp_path_factory.mktemp("finetune_qat")
    task = write_task(root / "task", train_per_class=12, val_per_class=6)
    weights = write_random_checkpoint(root / "r18.pth")
    out = root / "ft"
    result = CliRunner().invoke(app, [*_finetune_args(task, weights, out), "--qat-epochs", str(QAT_EPOCHS)])
    assert result.exit_code == 0, result.output
    built = CliRunner().invoke(app, ["build", "--int8", "--onnx", str(out / QAT_MODEL_NAME), "--calib",
                                     str(out / "train.csv"), "--eval", str(out / "val.csv"), "--no-profile",
                                     "-o", str(root / "qat_build")])  # fmt: skip
    assert built.exit_code == 0, built.output
    plain = export_at(out / "model.pth", 4, SIZE, root / "model_fp32.onnx")
    ptq = CliRunner().invoke(app, ["build", "--int8", "--onnx", str(plain), "--calib", str(out / "train.csv"),
                                   "--eval", str(out / "val.csv"), "--no-profile",
                                   "-o", str(root / "ptq_build")])  # fmt: skip
    assert ptq.exit_code == 0, ptq.output
    return {"root": root, "out": out, "qat": root / "qat_build", "ptq": root / "ptq_build", "task": task[0],
            "weights": weights, "finetune_output": Path(result.output), "build_output": Path(built.output)}  # fmt: skip


def _quantized_tensors(path: Path) -> list[str]:
    return sorted(n.input[0] for n in onnx.load(str(path)).graph.node if n.op_type == "QuantizeLinear")


def test_the_qat_epochs_write_a_model_carrying_its_scales_and_a_record(qat_run: dict[str, Path]) -> None:
    report = json.loads((qat_run["out"] / "finetune.json").read_text())["qat"]
    assert [e["epoch"] for e in report["epochs"]] == list(range(QAT_EPOCHS + 1))  # epoch 0: post-training INT8
    assert report["ptq_val_accuracy"] == report["epochs"][0]["val_accuracy"]
    assert report["qat_val_accuracy"] == max(e["val_accuracy"] for e in report["epochs"])
    assert report["parity"]["sqnr_db"] >= PARITY_MIN_SQNR_DB and report["calibration"]["bias_correction"] is True
    model = onnx.load(str(qat_run["out"] / QAT_MODEL_NAME))
    scales = trained_scales(model, "model")
    assert scales is not None and scales.placement["weights"] and scales.record["best_epoch"] == report["best_epoch"]
    assert "model_qat.onnx" in str(qat_run["finetune_output"]) and "INT8 validation accuracy" in str(
        qat_run["finetune_output"]
    )


def test_a_build_of_it_uses_the_stored_scales_and_the_ptq_placement(qat_run: dict[str, Path]) -> None:
    for name in ("model_int8_qdq.onnx", "model_int8_u8s8.onnx"):
        assert _quantized_tensors(qat_run["qat"] / name) == _quantized_tensors(qat_run["ptq"] / name)
    summary = json.loads((qat_run["qat"] / "build_summary.json").read_text())
    assert summary["placement_audit"]["multi_scale_tensors"] == []
    assert summary["calibration"]["trained"].endswith(QAT_MODEL_NAME) and summary["bias_correction"] is False
    assert summary["qat"]["from_checkpoint"] and summary["qat"]["parity"]["sqnr_db"] >= PARITY_MIN_SQNR_DB
    stored = trained_scales(onnx.load(str(qat_run["out"] / QAT_MODEL_NAME)), "model")
    assert stored is not None
    model = onnx.load(str(qat_run["qat"] / "model_int8_qdq.onnx"))
    built = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weight, scales = next(iter(stored.weight_scales.items()))
    written = next(v for k, v in built.items() if k.startswith(weight) and k.endswith("scale"))
    np.testing.assert_array_equal(written.astype(np.float32), scales)  # stored, not recomputed from the weights
    assert "not recalibrated" in str(qat_run["build_output"])


@pytest.mark.parametrize("extra", [["--calib-algo", "percentile"], ["--percentile", "99.9"], ["--recalibrate"],
                                   ["--keep-float", "conv1"], ["--qat-epochs", "1"], ["--sensitivity"],
                                   ["--auto-fallback", "--min-sqnr", "30"]])  # fmt: skip
def test_a_build_that_would_recalibrate_over_it_is_refused(qat_run: dict[str, Path], tmp_path: Path,
                                                            extra: list[str]) -> None:  # fmt: skip
    result = CliRunner().invoke(app, ["build", "--int8", "--onnx", str(qat_run["out"] / QAT_MODEL_NAME), *extra,
                                      "--no-profile", "-o", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 2 and f"would quantize it anew and lose that training: drop {extra[0]}" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def _tampered(model: onnx.ModelProto, change: object) -> onnx.ModelProto:
    data = json.loads(next(p.value for p in model.metadata_props if p.key == METADATA_KEY))
    change(data)  # type: ignore[operator]
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = json.dumps(data)
    return model


def _first(mapping: dict[str, object]) -> str:
    return next(iter(mapping))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["ranges"].update({_first(d["ranges"]): -1.0}), "not a positive finite number"),
        (lambda d: d["weight_scales"].update({_first(d["weight_scales"]): [0.1]}), "channels"),
        (lambda d: d["placement"]["inputs"].pop(), "made for another Q/DQ placement"),
        (lambda d: d.update({"schema": 99}), "of another format"),
        (lambda d: d["ranges"].clear(), "have no range for"),
        (lambda d: d["placement"].update({"inputs": 5}), "placement.inputs is not a list of [str, int, str]"),
        (lambda d: d["placement"]["weights"].append([1, 2]), "placement.weights is not a list of [str, str, int]"),
        (lambda d: d["placement"].pop("weights"), "placement.weights is not a list"),
    ],
)
def test_tampered_scales_are_refused_in_one_line(qat_run: dict[str, Path], tmp_path: Path, change: object,
                                                 message: str) -> None:  # fmt: skip
    source = qat_run["out"] / QAT_MODEL_NAME
    bad = tmp_path / QAT_MODEL_NAME
    onnx.save(_tampered(onnx.load(str(source)), change), str(bad))
    result = CliRunner().invoke(app, ["build", "--int8", "--onnx", str(bad), "--calib",
                                      str(qat_run["out"] / "train.csv"), "--no-profile",
                                      "-o", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def _options(weights: Path) -> FinetuneOptions:
    return FinetuneOptions(arch=Arch.RESNET18, weights=weights, size=SIZE, epochs=1, warmup_epochs=0,
                           unfreeze=Unfreeze.ALL, batch_size=16)  # fmt: skip


def test_an_interrupted_qat_run_resumes_to_what_an_uninterrupted_one_makes(qat_run: dict[str, Path],
                                                                           tmp_path: Path) -> None:  # fmt: skip
    options = _options(qat_run["weights"])
    data = FinetuneData(qat_run["task"], None, qat_run["task"].parent / "val")
    whole = run_finetune(data, tmp_path / "whole", options)
    shutil.copytree(tmp_path / "whole", tmp_path / "cut")
    request = QatRequest(QAT_EPOCHS)
    done = finetune_qat(whole, options, request, resume=False)

    def stop_after_first(entry: dict[str, float]) -> None:
        if entry["epoch"] == 1:
            raise KeyboardInterrupt

    cut = run_finetune(data, tmp_path / "cut", options, resume=True)
    with pytest.raises(KeyboardInterrupt):
        finetune_qat(cut, options, request, resume=False, on_epoch=stop_after_first)
    assert not (tmp_path / "cut" / QAT_MODEL_NAME).exists() and (tmp_path / "cut" / QAT_RESUME_NAME).exists()
    with pytest.raises(UserInputError, match=r"had qat_lr = 1e-06, this one has 0\.001"):
        finetune_qat(cut, options, QatRequest(QAT_EPOCHS, lr=1e-3), resume=True)
    resumed = finetune_qat(cut, options, request, resume=True)
    def timeless(record: Mapping[str, Any]) -> dict[str, Any]:  # the two runs differ in time and folder only
        calibration = {k: v for k, v in record["calibration"].items() if k not in ("source", "cache")}
        epochs = [{k: v for k, v in e.items() if k != "seconds"} for e in record["epochs"]]
        return dict(record) | {"epochs": epochs, "calibration": calibration}

    assert timeless(resumed.record) == timeless(done.record)  # calibration record and parity included
    ours, theirs = onnx.load(str(resumed.model)), onnx.load(str(done.model))
    assert {i.name: i.raw_data for i in ours.graph.initializer} == {
        i.name: i.raw_data for i in theirs.graph.initializer
    }
    assert done.record["restarted"] is False
    write_random_checkpoint(tmp_path / "cut" / "model.pth", classes=4)  # the float epochs went on since
    again = finetune_qat(cut, options, request, resume=True)
    assert again.record["restarted"] is True and len(again.record["epochs"]) == QAT_EPOCHS + 1  # from epoch 0
    saved = torch.load(tmp_path / "cut" / QAT_RESUME_NAME, weights_only=True)
    history = json.loads(saved["history"])
    for record in ([{k: v for k, v in e.items() if k != "val_sqnr_db"} for e in history], history[:-1]):
        torch.save(saved | {"history": json.dumps(record)}, tmp_path / "cut" / QAT_RESUME_NAME)
        with pytest.raises(CheckpointError, match="its epoch record is not one this edgeres writes"):
            finetune_qat(cut, options, request, resume=True)
    (tmp_path / "cut" / QAT_RESUME_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read as a quantization-aware training checkpoint"):
        finetune_qat(cut, options, request, resume=True)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--qat-epochs", "1", "--devices", "2"], "--qat-epochs runs in one process"),
        (["--qat-distill"], "--qat-distill: for QAT epochs only; add --qat-epochs N"),
        (["--qat-lr", "1e-4", "--qat-distill"], "--qat-distill and --qat-lr: for QAT epochs only"),
        (["--qat-epochs", "1", "--qat-lr", "nan"], "--qat-lr nan: must be a positive number"),
        (["--qat-epochs", "1", "--qat-lr", "0"], "--qat-lr 0.0: must be a positive number"),
        (["--qat-epochs", "1", "--then-build", "--fp16"], "--then-build --fp16 would build FP16 from it"),
    ],
)
def test_qat_options_that_cannot_apply_are_refused_before_any_work(tmp_path: Path, extra: list[str],
                                                                   message: str) -> None:  # fmt: skip
    result = CliRunner().invoke(app, ["finetune", str(tmp_path), "-o", str(tmp_path / "o"), *extra])
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_distillation_from_the_float_model_is_recorded(qat_run: dict[str, Path], tmp_path: Path) -> None:
    options = _options(qat_run["weights"])
    data = FinetuneData(qat_run["task"], None, qat_run["task"].parent / "val")
    done = finetune_qat(run_finetune(data, tmp_path / "ft", options), options, QatRequest(1, distill=True), False)
    report = json.loads((tmp_path / "ft" / "finetune.json").read_text())["qat"]
    assert report["request"] == {"epochs": 1, "lr": 1e-6, "distill": True} and done.model.is_file()
    assert report["epochs"][1]["train_loss"] > 0 and report["parity"]["sqnr_db"] >= PARITY_MIN_SQNR_DB


@pytest.mark.parametrize(("value", "message"), [("{not json", "not readable JSON"), ("[1, 2]", "not a record")])
def test_unreadable_trained_scales_are_refused_in_one_line(qat_run: dict[str, Path], tmp_path: Path, value: str,
                                                           message: str) -> None:  # fmt: skip
    model = onnx.load(str(qat_run["out"] / QAT_MODEL_NAME))
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = value
    bad = tmp_path / QAT_MODEL_NAME
    onnx.save(model, str(bad))
    result = CliRunner().invoke(app, ["build", "--int8", "--onnx", str(bad), "--no-profile", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_a_qat_model_whose_fine_tune_went_on_is_refused_as_stale(qat_run: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "ft"
    shutil.copytree(qat_run["out"], folder)
    write_random_checkpoint(folder / "model.pth", classes=4)  # what a later --resume with more epochs rewrites
    result = CliRunner().invoke(app, ["build", "--int8", "--onnx", str(folder / QAT_MODEL_NAME), "--no-profile",
                                      "-o", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 2 and "was trained from another model.pth than the one beside it" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_a_scale_grid_it_was_not_trained_on_is_refused_before_any_work(qat_run: dict[str, Path],
                                                                       tmp_path: Path) -> None:  # fmt: skip
    result = CliRunner().invoke(app, ["build", "--int8", "--onnx", str(qat_run["out"] / QAT_MODEL_NAME),
                                      "--high-precision", "fp32", "--no-profile",
                                      "-o", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 2 and "was trained with fp16 scales, which --high-precision fp32" in result.output
    assert not (tmp_path / "o").exists()


def test_a_resume_with_other_qat_options_is_refused_before_the_float_epochs(qat_run: dict[str, Path],
                                                                            tmp_path: Path) -> None:  # fmt: skip
    folder = tmp_path / "ft"
    shutil.copytree(qat_run["out"], folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    result = CliRunner().invoke(app, ["finetune", str(qat_run["task"]), "--val", str(qat_run["task"].parent / "val"),
                                      "-o", str(folder), "--resume", "--epochs", "3", "--qat-epochs", "2",
                                      "--qat-lr", "1e-4"])  # fmt: skip
    assert result.exit_code == 2 and "had qat_lr = 1e-06, this one has 0.0001" in result.output, result.output
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before  # nothing ran


def test_the_build_repeats_the_training_record_typed_and_refuses_a_mistyped_one(qat_run: dict[str, Path],
                                                                                tmp_path: Path) -> None:  # fmt: skip
    summary = json.loads((qat_run["qat"] / "build_summary.json").read_text())
    training = summary["qat"]["training"]
    assert set(training) == {"epochs", "best_epoch", "fp32_val_accuracy", "ptq_val_accuracy", "qat_val_accuracy",
                             "model_sha256"} and training["epochs"] == QAT_EPOCHS  # fmt: skip
    bad = tmp_path / QAT_MODEL_NAME
    onnx.save(_tampered(onnx.load(str(qat_run["out"] / QAT_MODEL_NAME)),
                        lambda d: d["record"].update({"best_epoch": "two"})), str(bad))  # fmt: skip
    result = CliRunner().invoke(app, ["build", "--int8", "--onnx", str(bad), "--no-profile", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "best_epoch" in result.output and "Traceback" not in result.output
