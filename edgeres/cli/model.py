"""The `edgeres` command: a thin typer layer over the library. Only the cli modules print and exit."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from edgeres.artifacts.build_summary import SUMMARY_NAME, BuildSummary
from edgeres.artifacts.completion import build_status
from edgeres.artifacts.describe import describe_artifact
from edgeres.artifacts.fields import Fields
from edgeres.artifacts.precision import onnx_precision
from edgeres.artifacts.sidecar import Stage, read_sidecar
from edgeres.cli.args.frame_input import FrameInputArgs
from edgeres.cli.args.group import takes_groups
from edgeres.cli.options import (
    ARCH_DEFAULT,
    ArchOption,
    ClassesOption,
    WeightsOption,
    names_the_class_count_option,
    parse_arch,
)
from edgeres.cli.paths import check_output_file
from edgeres.cli.reporting import console, reports_errors, say, wrote
from edgeres.engine.verification_record import VerificationOutcome
from edgeres.errors import UserInputError
from edgeres.export.opsets import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
from edgeres.frames.contract import InputSpec
from edgeres.frames.images import NETWORK_SIZE
from edgeres.model.arch import DEFAULT_NUM_CLASSES


@reports_errors
@takes_groups
def export(
    *,
    output: Annotated[Path, typer.Option("-o", "--output", help="ONNX file to write.")] = Path("out/model.onnx"),
    weights: WeightsOption = None,
    num_classes: ClassesOption = None,
    arch: ArchOption = ARCH_DEFAULT,
    opset: Annotated[int, typer.Option("--opset", help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET}.")] = DEFAULT_OPSET,
    contract: FrameInputArgs,
) -> None:
    """Export the model to ONNX and check it against PyTorch in onnxruntime.

    Examples:\n
      edgeres export -o r50.onnx\n
      edgeres export --weights resnet50-11ad3fa6.pth -o r50.onnx\n
      edgeres export --weights product.pth --num-classes 51 -o product.onnx\n
      edgeres export --input yuyv:1920x1080 --colorspace bt709 -o r50_yuyv.onnx
    """
    from edgeres.export.from_weights import export_default

    check_output_file(output)
    with names_the_class_count_option():
        result = export_default(output, parse_arch(arch), weights, num_classes, opset, contract)
    if contract is not None:
        c, f = contract, result.record.frontend_parity
        assert f is not None  # export_default compares every fused model with the host path
        say(
            f"input: raw {c.layout.value} {c.width}x{c.height} uint8 {list(c.frame_shape)}, {c.colorspace.value} "
            f"{c.color_range.value} range, {c.resize.value}; fused vs host path on {f.samples} frames: "
            f"max abs {f.max_abs_error:.2e}, top-1 agreement {f.top1_agreement:.0%}"
        )
    p = result.parity
    wrote(f"{result.path} ({result.path.stat().st_size / 1e6:.1f} MB, opset {opset})")
    say(
        f"parity vs PyTorch on {p.samples} inputs: max abs {p.max_abs_error:.2e}, "
        f"max rel {p.max_rel_error:.2e}, min cosine {p.min_cosine:.7f}, top-1 agreement {p.top1_agreement:.0%}"
    )


@reports_errors
def info(
    artifact: Annotated[
        Path, typer.Argument(help="An artifact made by edgeres (.onnx, .engine), or a build folder.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="A file: everything known of it, as JSON.")] = False,
) -> None:
    """Show what an artifact is and how it was made: for ONNX its inputs, outputs, opset, precision and
    operators; for an engine its TensorRT, GPU, profile and verification; its sidecar's story and whether
    the sidecar describes this very file. For a build folder: finished or not, what it holds, how it measured.

    Example:\n
      edgeres info out/model.onnx\n
      edgeres info out/model.onnx --json\n
      edgeres info out/build
    """
    if Path(artifact).is_dir():
        for line in build_folder_lines(Path(artifact)):
            say(line)
        return
    description = describe_artifact(artifact)
    if as_json:
        console.print_json(json.dumps(description, default=str))
        return
    for line in artifact_lines(Path(artifact), description):
        say(line)


def _tensor_text(tensor: dict[str, Any]) -> str:
    return f"{tensor['name']} {tensor['dtype']} [{', '.join(str(d) for d in tensor['shape'])}]"


def artifact_lines(path: Path, description: dict[str, Any]) -> list[str]:
    """One file in a few lines, in the spirit of `polygraphy inspect model`: what it is, then how it was made."""
    model = description["model"]
    lines = [f"{path}: {model['format']}, {model['bytes'] / 1e6:.1f} MB"]
    if model["format"] == "onnx":
        opsets = ", ".join(f"{domain} {version}" for domain, version in model["opset"].items())
        lines.append(f"opset {opsets}; produced by {model['producer'] or 'unknown'}; {model['nodes']} nodes")
        lines += [f"input  {_tensor_text(t)}" for t in model["inputs"]]
        lines += [f"output {_tensor_text(t)}" for t in model["outputs"]]
        ops = model["op_counts"]
        lines.append("operators: " + ", ".join(f"{op} {count}" for op, count in list(ops.items())[:8]))
        if ops.get("QuantizeLinear") or ops.get("DequantizeLinear"):
            scales = "FP16 (TensorRT 10 or later)" if model.get("fp16_qdq_scales") else "float32"
            quantize, dequantize = ops.get("QuantizeLinear", 0), ops.get("DequantizeLinear", 0)
            lines.append(f"INT8 Q/DQ: {quantize} Q, {dequantize} DQ, {scales} scales")
    sidecar = read_sidecar(path)
    if sidecar is None:
        lines.append("no sidecar: not made by edgeres, or its .json was not kept beside it")
        return lines
    mismatch = description.get("sidecar_mismatch")
    precision = onnx_precision(path).value if model["format"] == "onnx" else (sidecar.precision or "unknown")
    lines.append(
        f"made by edgeres {sidecar.stage or '?'} ({sidecar.data.get('created', '?')}), precision {precision}; "
        + ("its sidecar describes this file" if mismatch is None else f"BUT {mismatch}")
    )
    spec = InputSpec.of(sidecar) if sidecar.stage != Stage.ENGINE.value else None
    if spec is not None:
        lines.append(f"takes {input_text(spec)}")
    if sidecar.stage == Stage.ENGINE.value:
        from edgeres.engine.record import EngineRecord

        record = EngineRecord.of(sidecar)
        if record.target is not None:
            target = record.target
            lines.append(f"TensorRT {target.tensorrt_version}, {target.gpu_name} (compute {target.compute_capability})")
        if record.profile is not None:
            low, high = record.profile.batch_range
            lines.append(f"batch {low}..{high}, from {record.onnx}")
        lines.append(record.verification.summary() if record.verification else "never verified against its ONNX")
    return lines


def input_text(spec: InputSpec) -> str:
    """What a model takes, in words: raw frames of its contract, or RGB floats and how they are normalised."""
    if spec.contract is not None:
        return f"raw {spec.contract.describe()} frames"
    return f"RGB floats [{', '.join(str(axis) for axis in spec.shape)}], {spec.normalization.describe()}"


def camera_input(summary: BuildSummary, where: Path) -> str:
    if summary.input is None:
        return "RGB floats"
    return input_text(InputSpec.from_json(dict(summary.input), f"{where}: input"))


def build_folder_lines(folder: Path) -> list[str]:
    """A build folder in a few lines: finished or why not, precision, gate, input, models and their fidelity."""
    summary_path = folder / SUMMARY_NAME
    status = build_status(folder)
    if not summary_path.is_file():
        raise UserInputError(f"{folder}: not a build folder (no {SUMMARY_NAME})")
    summary = BuildSummary.read(summary_path)
    gate = {True: "passed", False: "FAILED", None: "not checked"}[summary.gate_passed]
    lines = [
        f"{folder}: {'a finished build' if status is None else 'NOT a finished build: ' + status}",
        f"precision {summary.precision.value}, fidelity gate {gate}, weights {summary.weights}",
        f"input: {camera_input(summary, summary_path)}",
    ]
    measured = summary.logits_sqnr()
    for role, path in summary.artifacts.items():
        sqnr = measured.get(role)
        shown = "" if sqnr is None else f", logits SQNR {sqnr:.1f} dB" if math.isfinite(sqnr) else ", exact logits"
        lines.append(f"{role.value}: {path.name}{shown}")
    verification = summary.sections.get("engine_verification")
    if isinstance(verification, dict):
        outcome = VerificationOutcome.from_json(Fields.of(verification, f"{summary_path}: engine_verification"))
        lines.append(f"engine {outcome.summary()}")
    return lines


@reports_errors
def summary(
    arch: ArchOption = ARCH_DEFAULT,
    num_classes: ClassesOption = None,
    size: Annotated[int, typer.Option("--size", help="Input height and width.", min=32)] = NETWORK_SIZE,
) -> None:
    """Print the network stage by stage: output shape, parameters, multiply-accumulates.

    Example:\n
      edgeres summary --arch resnet50
    """
    from edgeres.model.resnet import build_model, check_forward_fits
    from edgeres.model.summary import summarize

    chosen = parse_arch(arch)
    check_forward_fits(chosen, DEFAULT_NUM_CLASSES if num_classes is None else num_classes, size)
    model = build_model(chosen) if num_classes is None else build_model(chosen, num_classes)
    rows = summarize(model, size)
    table = Table(title=Text(f"{model.arch.value}, {size}x{size} input, batch 1"))
    for column in ("stage", "output (C, H, W)", "parameters", "MACs"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for row in rows:
        shape = " x ".join(map(str, row.output_shape))
        table.add_row(row.name, shape, f"{row.parameters:,}", f"{row.macs / 1e6:,.1f} M")
    total_params, total_macs = sum(r.parameters for r in rows), sum(r.macs for r in rows)
    table.add_section()
    table.add_row("total", "", f"{total_params:,} ({total_params / 1e6:.2f} M)", f"{total_macs / 1e9:.2f} G")
    console.print(table)
