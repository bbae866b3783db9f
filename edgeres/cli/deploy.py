"""`edgeres deploy`: write what DeepStream or Triton needs to serve a built model. Parsing only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeres.artifacts.class_names import ClassNames, class_names_for
from edgeres.choices import choice_values, parse_choice
from edgeres.cli.options import PrecisionOption, parse_precision
from edgeres.cli.paths import check_output_dir
from edgeres.cli.reporting import reports_errors, say, wrote
from edgeres.deploy.cpu_backend import CpuBackend, cpu_artifact
from edgeres.deploy.deepstream import DeepStreamOptions, deepstream_artifact, write_deepstream
from edgeres.deploy.deepstream_release import DeepStreamRelease
from edgeres.deploy.model import read_deploy_model, require_engine_file, select_artifact
from edgeres.deploy.triton import TritonOptions, write_triton_repository
from edgeres.deploy.triton_config import InstanceKind
from edgeres.frames.contract import InputKind

DEEPSTREAM_DEFAULTS = DeepStreamOptions()
TRITON_DEFAULTS = TritonOptions()


ArtifactArgument = Annotated[
    Path, typer.Argument(help="A directory written by `edgeres build`, or one ONNX file with its sidecar.")
]


LabelsOption = Annotated[
    Path | None,
    typer.Option(
        "--labels",
        help="Class names, one per line (default: those recorded with the model, else ImageNet-1k's for 1000 classes).",
    ),
]


AllowFailedGateOption = Annotated[
    bool,
    typer.Option(
        "--allow-failed-gate",
        help="Deploy a build that failed its fidelity gate anyway (recorded in what is written).",
    ),
]


AllowUnverifiedOption = Annotated[
    bool,
    typer.Option(
        "--allow-unverified",
        help="Name a TensorRT engine never verified against its ONNX, or that failed, anyway (recorded).",
    ),
]


def _names(path: Path, labels: Path | None, allow_failed_gate: bool) -> ClassNames:
    """The class names of the model file `path` (verified): --labels, else those recorded with the model,
    else ImageNet-1k's."""
    model = read_deploy_model(path, allow_failed_gate)
    return class_names_for(model.num_classes, labels, model.spec.class_names)


@reports_errors
def deepstream(
    artifact: ArtifactArgument,
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for the config, labels and ONNX.")],
    precision: PrecisionOption = None,
    labels: LabelsOption = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Frames per nvinfer batch (streams muxed).")
    ] = DEEPSTREAM_DEFAULTS.batch_size,
    threshold: Annotated[
        float, typer.Option("--threshold", help="classifier-threshold: lowest probability that gets a label.")
    ] = DEEPSTREAM_DEFAULTS.classifier_threshold,
    engine: Annotated[
        Path | None,
        typer.Option(
            "--engine",
            help="model-engine-file: an engine built from the written ONNX (default: the name nvinfer saves "
            "the engine it builds to, so only the first start builds one).",
        ),
    ] = None,
    gpu_id: Annotated[int, typer.Option("--gpu-id", help="gpu-id: the GPU nvinfer runs on.")] = (
        DEEPSTREAM_DEFAULTS.gpu_id
    ),
    release: Annotated[
        str,
        typer.Option(
            "--deepstream",
            help=f"The DeepStream release that runs the config: {choice_values(DeepStreamRelease)}. Its TensorRT "
            "decides which models it can build and the calibration table's header.",
        ),
    ] = DEEPSTREAM_DEFAULTS.release.value,
    allow_failed_gate: AllowFailedGateOption = False,
    allow_unverified: AllowUnverifiedOption = False,
) -> None:
    """Write config_infer_primary.txt, labels.txt and the ONNX for Gst-nvinfer (RGB models only).

    Examples:\n
      edgeres deploy deepstream out/build -o deepstream/\n
      edgeres deploy deepstream out/build --deepstream 7.1 -o deepstream/\n
      edgeres deploy deepstream out/r50_fp16 --precision fp16 --batch-size 4 -o deepstream/\n
      edgeres deploy deepstream out/build --labels parts.txt -o deepstream/
    """
    if engine is not None:
        require_engine_file(engine)
    check_output_dir(output)
    options = DeepStreamOptions(
        batch_size=batch_size, classifier_threshold=threshold, gpu_id=gpu_id, engine=engine,
        release=DeepStreamRelease.parse(release), allow_failed_gate=allow_failed_gate,
        allow_unverified=allow_unverified,
    )  # fmt: skip
    path = deepstream_artifact(artifact, parse_precision(precision), allow_failed_gate)
    names = _names(path, labels, allow_failed_gate)
    result = write_deepstream(path, output, names, options)
    wrote(f"{result.config} (from {path.name}, {len(names)} classes, DeepStream {result.release.value})")
    calibration = f", int8-calib-file {result.calibration.name}" if result.calibration else ""
    say(f"  onnx-file {result.onnx.name}, labels {result.labels.name}{calibration}")
    built = " (nvinfer builds it on the first start)" if result.engine_from_nvinfer else ""
    say(f"  model-engine-file {result.engine_file}{built}")
    norm = result.normalization
    gains = ", ".join(f"{g:.4f}" for g in norm.channel_gain)
    say(f"  per-channel std: net-scale-factor {norm.net_scale_factor:.6g}, ONNX input gain [{gains}]")


@reports_errors
def triton(
    artifact: ArtifactArgument,
    output: Annotated[Path, typer.Option("-o", "--output", help="Triton model repository (created or added to).")],
    precision: PrecisionOption = None,
    labels: LabelsOption = None,
    name: Annotated[str | None, typer.Option("--name", help="Model name (default: <arch>_<precision>).")] = None,
    max_batch: Annotated[
        int, typer.Option("--max-batch", help="max_batch_size for a dynamic-batch model.")
    ] = TRITON_DEFAULTS.max_batch_size,
    delay_us: Annotated[
        int, typer.Option("--max-queue-delay-us", help="Dynamic batcher wait.")
    ] = TRITON_DEFAULTS.max_queue_delay_us,
    plan: Annotated[
        Path | None,
        typer.Option("--plan", help="Serve this TensorRT engine (built from the model on the serving GPU)."),
    ] = None,
    yuv: Annotated[bool, typer.Option("--yuv", help="Pick the build's fused YUV422-frame model.")] = False,
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help=f"Where the instances run: {choice_values(InstanceKind)}. gpu serves the --plan, or the ONNX "
            "through onnxruntime's TensorRT accelerator; cpu serves what --cpu-backend says.",
        ),
    ] = TRITON_DEFAULTS.kind.value,
    cpu_backend: Annotated[
        str,
        typer.Option(
            "--cpu-backend",
            help=f"What cpu instances run the model on: {choice_values(CpuBackend)}. auto: the Q/DQ model on "
            "Triton's OpenVINO backend where the build verified OpenVINO and found it faster, else the CPU twin on "
            "onnxruntime. openvino where the build did not verify it there needs --allow-unverified.",
        ),
    ] = TRITON_DEFAULTS.cpu_backend.value,
    instances: Annotated[
        int, typer.Option("--instances", help="Instances of the model (per GPU for gpu, in all for cpu).")
    ] = TRITON_DEFAULTS.instances,
    allow_failed_gate: AllowFailedGateOption = False,
    allow_unverified: Annotated[
        bool,
        typer.Option(
            "--allow-unverified",
            help="Serve a --plan never verified against its ONNX, or that failed, or a model on OpenVINO that its "
            "build never verified there, anyway (recorded).",
        ),
    ] = False,
) -> None:
    """Add the model to a Triton model repository: config.pbtxt, 1/model.onnx (or model.plan), labels.txt.

    Examples:\n
      edgeres deploy triton out/build -o model_repository/\n
      edgeres deploy triton out/build --kind cpu --instances 2 -o model_repository/\n
      edgeres deploy triton out/build --kind cpu --cpu-backend onnxruntime -o model_repository/\n
      edgeres deploy triton out/r50_yuyv --yuv --max-batch 16 -o model_repository/\n
      edgeres deploy triton out/build --precision int8 --plan r50_int8.engine -o model_repository/
    """
    input_kind = InputKind.YUV422 if yuv else (None if Path(artifact).is_file() else InputKind.RGB_FLOAT)
    instance_kind = parse_choice(InstanceKind, kind, "--kind")
    backend = parse_choice(CpuBackend, cpu_backend, "--cpu-backend")
    check_output_dir(output)
    options = TritonOptions(
        name=name, max_batch_size=max_batch, max_queue_delay_us=delay_us, plan=plan, kind=instance_kind,
        instances=instances, allow_failed_gate=allow_failed_gate, allow_unverified=allow_unverified,
        cpu_backend=backend,
    )  # fmt: skip
    wanted = parse_precision(precision)
    if instance_kind is InstanceKind.CPU:
        path = cpu_artifact(artifact, backend, wanted, input_kind, allow_failed_gate)
    else:
        path = select_artifact(artifact, wanted, input_kind, allow_failed_gate)
    names = _names(path, labels, allow_failed_gate)
    result = write_triton_repository(path, output, names, options)
    wrote(f"{result.model_dir} (model '{result.name}', from {path.name})")
    choice = result.serving
    say(
        f"  {result.model_file.relative_to(result.model_dir)}, config.pbtxt, {result.labels.name}; "
        f"max_batch_size {result.max_batch_size}; {choice.count} {choice.kind.triton} instance(s) on the "
        f"{choice.serving.backend} backend"
    )
    say(f"  {choice.why}")
