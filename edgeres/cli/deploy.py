"""`edgeres deploy`: write what DeepStream or Triton needs to serve a built model. Parsing only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgeres.cli.reporting import console, reports_errors
from edgeres.errors import UserInputError

if TYPE_CHECKING:
    from edgeres.artifacts.precision import Precision
    from edgeres.deploy.model import InputLayout
    from edgeres.runtime.labels import ClassNames




ArtifactArgument = Annotated[
    Path, typer.Argument(help="A directory written by `edgeres build`, or one ONNX file with its sidecar.")
]


PrecisionOption = Annotated[
    str | None, typer.Option("--precision", help="int8|fp16|fp32: which model of the build (default: int8 if built).")
]


LabelsOption = Annotated[
    Path | None,
    typer.Option("--labels", help="Class names, one per line, for a model not trained on ImageNet-1k's 1000 classes."),
]


def _parse_precision(value: str | None) -> Precision | None:
    from edgeres.artifacts.precision import Precision

    if value is None:
        return None
    try:
        return Precision(value.lower())
    except ValueError:
        raise UserInputError(f"unknown --precision '{value}': choose int8, fp16 or fp32") from None


def _model_and_names(
    artifact: Path, precision: str | None, layout: InputLayout | None, labels: Path | None
) -> tuple[Path, ClassNames]:
    """The model file to deploy (chosen as the --precision and layout ask) and its class names."""
    from edgeres.deploy.model import read_deploy_model, select_artifact
    from edgeres.runtime.labels import class_names_for

    path = select_artifact(artifact, _parse_precision(precision), layout)
    return path, class_names_for(read_deploy_model(path).num_classes, labels)


@reports_errors
def deepstream(
    artifact: ArtifactArgument,
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for the config, labels and ONNX.")],
    precision: PrecisionOption = None,
    labels: LabelsOption = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Frames per nvinfer batch (streams muxed).")] = 1,
    threshold: Annotated[
        float, typer.Option("--threshold", help="classifier-threshold: lowest probability that gets a label.")
    ] = 0.0,
    engine: Annotated[
        Path | None,
        typer.Option("--engine", help="model-engine-file: an engine nvinfer already built from the written ONNX."),
    ] = None,
) -> None:
    """Write config_infer_primary.txt, labels.txt and the ONNX for Gst-nvinfer (RGB models only).

    Examples:\n
      edgeres deploy deepstream out/build -o deepstream/\n
      edgeres deploy deepstream out/build --precision fp16 --batch-size 4 -o deepstream/\n
      edgeres deploy deepstream out/build --labels parts.txt -o deepstream/
    """
    from edgeres.deploy.deepstream import DeepStreamOptions, write_deepstream
    from edgeres.deploy.model import InputLayout

    if not 0.0 <= threshold <= 1.0:
        raise UserInputError(f"--threshold {threshold}: a probability, 0..1")
    path, names = _model_and_names(artifact, precision, InputLayout.RGB_PLANAR, labels)
    result = write_deepstream(path, output, names, DeepStreamOptions(batch_size, threshold, engine=engine))
    console.print(f"[green]wrote[/] {result.config} (from {path.name}, {len(names)} classes)")
    console.print(f"  onnx-file {result.onnx.name}, labels {result.labels.name}" + (
        f", int8-calib-file {result.calibration.name}" if result.calibration else ""))
    norm = result.normalization
    gains = ", ".join(f"{g:.4f}" for g in norm.channel_gain)
    console.print(f"  per-channel std: net-scale-factor {norm.net_scale_factor:.6g}, ONNX input gain [{gains}]")


@reports_errors
def triton(
    artifact: ArtifactArgument,
    output: Annotated[Path, typer.Option("-o", "--output", help="Triton model repository (created or added to).")],
    precision: PrecisionOption = None,
    labels: LabelsOption = None,
    name: Annotated[str | None, typer.Option("--name", help="Model name (default: <arch>_<precision>).")] = None,
    max_batch: Annotated[int, typer.Option("--max-batch", help="max_batch_size for a dynamic-batch model.")] = 8,
    delay_us: Annotated[int, typer.Option("--max-queue-delay-us", help="Dynamic batcher wait.")] = 100,
    plan: Annotated[
        Path | None,
        typer.Option("--plan", help="Serve this TensorRT engine (built from the model on the serving GPU)."),
    ] = None,
    yuv: Annotated[bool, typer.Option("--yuv", help="Pick the build's fused YUV422-frame model.")] = False,
) -> None:
    """Add the model to a Triton model repository: config.pbtxt, 1/model.onnx (or model.plan), labels.txt.

    Examples:\n
      edgeres deploy triton out/build -o model_repository/\n
      edgeres deploy triton out/build --yuv --max-batch 16 -o model_repository/\n
      edgeres deploy triton out/build --precision int8 --plan r50_int8.engine -o model_repository/
    """
    from edgeres.deploy.model import InputLayout
    from edgeres.deploy.triton import TritonOptions, write_triton_repository

    layout = InputLayout.YUV422_FRAME if yuv else (None if Path(artifact).is_file() else InputLayout.RGB_PLANAR)
    path, names = _model_and_names(artifact, precision, layout, labels)
    options = TritonOptions(name=name, max_batch_size=max_batch, max_queue_delay_us=delay_us, plan=plan)
    result = write_triton_repository(path, output, names, options)
    console.print(f"[green]wrote[/] {result.model_dir} (model '{result.name}', from {path.name})")
    console.print(f"  {result.model_file.relative_to(result.model_dir)}, config.pbtxt, {result.labels.name}; "
                  f"max_batch_size {result.max_batch_size}")

