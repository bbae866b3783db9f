"""DeepStream: a Gst-nvinfer `config_infer_primary.txt`, its labels file and the ONNX it points to.

nvinfer normalises every pixel as `y = net-scale-factor * (x - offsets[c])` (Gst-nvinfer docs,
"pre-processing function"): one scale for all channels, so ImageNet's per-channel std
(0.229, 0.224, 0.225) cannot be written in the config. edgeres keeps the result exact instead of
approximating it: the config uses the mean std, and the ONNX handed to nvinfer starts with one
per-channel Mul by `mean_std / std[c]` (gains 0.987, 1.009, 1.004), so the tensor reaching the
first convolution is exactly the normalised image the model takes (ImageNet RGB, or what its build
recorded). nvinfer's default classifier parser
reads probabilities and compares them with `classifier-threshold`, so the same ONNX ends in a
Softmax (output `probabilities`).

The config targets one DeepStream release (edgeres.deploy.deepstream_release): its TensorRT decides
whether the model parses at all and which version the calibration table's header names. The config's
keys and value types are those nvinfer reads (edgeres.deploy.nvinfer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgeres.artifacts.atomic import sha256_file, write_bytes_atomic
from edgeres.artifacts.class_names import ClassNames
from edgeres.artifacts.onnx import load_onnx
from edgeres.artifacts.precision import Precision
from edgeres.artifacts.staging import staged_folder
from edgeres.choices import require_fraction
from edgeres.deploy.deepstream_release import NEWEST_RELEASE, DeepStreamRelease, TensorRTVersion, first_release_with
from edgeres.deploy.model import (
    ENGINE_UNVERIFIED_COMMENT,
    GATE_OVERRIDDEN_COMMENT,
    DeployModel,
    ElementType,
    engine_overridden,
    read_deploy_model,
    select_artifact,
)
from edgeres.deploy.nvinfer import NETWORK_MODE, NvinferEntry, nvinfer_config_text, nvinfer_engine_name
from edgeres.deploy.record import DeepStreamRecord, ServedModel
from edgeres.engine.builder import FP16_SCALES_FROM_MAJOR, check_scale_types
from edgeres.errors import UserInputError
from edgeres.export.record import OutputSpec
from edgeres.frames.contract import InputKind
from edgeres.frames.normalization import IMAGENET_RGB, ChannelOrder, PixelNormalization
from edgeres.quantize.cache import trt_version_number, write_trt_table

CONFIG_NAME = "config_infer_primary.txt"
LABELS_NAME = "labels.txt"
CALIBRATION_NAME = "calibration.table"
PROBABILITIES = "probabilities"
NORMALISED_INPUT = "nvinfer_normalised_input"

# NvDsInferFormat (Gst-nvinfer docs, model-color-format): RGB = 0, BGR = 1, GRAY = 2; offsets[c] follow it.
MODEL_COLOR_FORMAT = {ChannelOrder.RGB: 0, ChannelOrder.BGR: 1}
NETWORK_TYPE_CLASSIFIER = 1  # NvDsInferNetworkType: Detector 0, Classifier 1, Segmentation 2
PROCESS_MODE_PRIMARY = 1  # full frames (2 = secondary, on detected objects)
NETWORK_INPUT_ORDER_NCHW = 0


@dataclass(frozen=True)
class NvinferNormalization:
    """nvinfer's `net-scale-factor` and `offsets`, plus the per-channel gain the ONNX applies after them."""

    net_scale_factor: float
    offsets: tuple[float, float, float]
    channel_gain: tuple[float, float, float]


def nvinfer_normalization(normalization: PixelNormalization = IMAGENET_RGB) -> NvinferNormalization:
    """Split `(x / 255 - mean[c]) / std[c]` into nvinfer's `s * (x - offsets[c])` and a gain per channel (c in
    the model's channel order, as nvinfer's offsets are)."""
    mean, std = np.array(normalization.mean, np.float64), np.array(normalization.std, np.float64)
    reference_std = float(np.mean(std))
    offsets = tuple(float(255.0 * m) for m in mean)
    gains = tuple(reference_std / float(s) for s in std)
    return NvinferNormalization(1.0 / (255.0 * reference_std), offsets, gains)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DeepStreamOptions:
    batch_size: int = 1
    classifier_threshold: float = 0.0
    gpu_id: int = 0
    engine: Path | None = None  # a TensorRT engine already built from the generated ONNX, if any
    release: DeepStreamRelease = NEWEST_RELEASE  # the DeepStream (and so the TensorRT) that runs the config
    allow_failed_gate: bool = False  # deploy a build that failed its fidelity gate (recorded in the config)
    allow_unverified: bool = False  # name an engine never verified against its ONNX, or failed (recorded)

    def __post_init__(self) -> None:
        require_fraction(self.classifier_threshold, "classifier threshold")
        if self.gpu_id < 0:
            raise UserInputError(f"GPU id {self.gpu_id}: must be 0 or more")


@dataclass(frozen=True)
class DeepStreamResult:
    config: Path
    labels: Path
    onnx: Path
    calibration: Path | None
    normalization: NvinferNormalization
    release: DeepStreamRelease
    engine_file: str  # model-engine-file as written
    engine_from_nvinfer: bool  # True: the name nvinfer saves its own engine to (made on the first start)


def nvinfer_onnx(model: onnx.ModelProto, gains: tuple[float, ...], input_name: str, logits: str) -> onnx.ModelProto:
    """The model with a per-channel Mul in front of everything and a Softmax after `logits`."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    elem = next(v.type.tensor_type.elem_type for v in graph.input if v.name == input_name)
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name == input_name:
                node.input[index] = NORMALISED_INPUT
    for value in graph.output:
        if value.name == input_name:
            raise UserInputError(f"graph output '{input_name}' is also the input; not a classifier")
    gain = numpy_helper.from_array(np.array(gains, dtype=dtype).reshape(1, len(gains), 1, 1), "nvinfer_channel_gain")
    graph.initializer.append(gain)
    graph.node.insert(0, helper.make_node("Mul", [input_name, gain.name], [NORMALISED_INPUT], name="nvinfer/std_gain"))
    graph.node.append(helper.make_node("Softmax", [logits], [PROBABILITIES], name="nvinfer/softmax", axis=-1))
    logits_value = next(v for v in graph.output if v.name == logits)
    probabilities = helper.make_tensor_value_info(
        PROBABILITIES,
        logits_value.type.tensor_type.elem_type,
        [d.dim_param or d.dim_value for d in logits_value.type.tensor_type.shape.dim],
    )
    del graph.output[:]
    graph.output.append(probabilities)
    onnx.checker.check_model(out)
    return out


def deepstream_labels(names: ClassNames) -> str:
    """nvinfer's classifier label file: one line per output layer, the classes separated by ';'."""
    return ";".join(names.names) + "\n"


def deepstream_artifact(location: Path, precision: Precision | None, allow_failed_gate: bool) -> Path:
    """The model of `location` to hand nvinfer: its RGB model; a build with only raw-frame models gives its
    raw-frame one, which `write_deepstream` refuses with the reason."""
    if Path(location).is_file():
        return Path(location)
    try:
        return select_artifact(location, precision, InputKind.RGB_FLOAT, allow_failed_gate)
    except UserInputError as rgb_refusal:
        try:
            return select_artifact(location, precision, InputKind.YUV422, allow_failed_gate)
        except UserInputError:
            raise rgb_refusal from None


def require_rgb_input(model: DeployModel) -> None:
    """nvinfer hands the network planar float RGB/BGR/GRAY it made from the frame itself (Gst-nvinfer docs:
    it converts and scales every frame, then normalises it), so a model that takes raw camera bytes
    cannot be fed."""
    if model.input_kind is not InputKind.RGB_FLOAT:
        raise UserInputError(
            f"{model.path}: input '{model.input.name}' is a raw YUV422 frame, but nvinfer converts every frame "
            "to planar RGB before the network, so it can never feed this model: deploy the RGB model of the "
            "same build, or serve this one with examples/camera_app.py or a Triton model for raw frames"
        )
    element = ElementType.of(model.input, model.path)
    if element is not ElementType.FP32:
        raise UserInputError(f"{model.path}: nvinfer feeds float32 input, this model takes {element.name}")


def require_release_parses(model: DeployModel, release: DeepStreamRelease) -> None:
    """Refuse a model the TensorRT of `release` cannot parse (nvinfer builds the engine with it)."""
    tensorrt = release.tensorrt
    try:
        check_scale_types(model.path, str(tensorrt))
    except UserInputError as exc:
        newer = first_release_with(FP16_SCALES_FROM_MAJOR)
        raise UserInputError(
            f"DeepStream {release.value} builds with TensorRT {tensorrt}: {exc}, or target DeepStream "
            f"{newer.value} or later"
        ) from None


def calibration_table(model: DeployModel, out_dir: Path, tensorrt: TensorRTVersion) -> Path:
    """The TensorRT calibration table nvinfer's INT8 mode asks for, in `out_dir`, for `tensorrt`.

    nvinfer falls back to FP16 when `int8-calib-file` is missing (nvdsinfer_model_builder.cpp: "INT8
    calibration file not specified. Trying FP16 mode."). With Q/DQ nodes TensorRT quantizes explicitly
    and takes every scale from the graph, so the table only has to exist and parse; it is written from the
    calibrated ranges in the model's sidecar with the header of the target release's TensorRT.
    """
    ranges = model.quantize.ranges if model.quantize is not None else None
    if not ranges:
        raise UserInputError(
            f"{model.path}: its sidecar records no calibrated ranges; nvinfer's INT8 mode needs int8-calib-file "
            "(rebuild with `edgeres build`)"
        )
    target = out_dir / CALIBRATION_NAME
    write_trt_table(target, dict(ranges), str(tensorrt))
    return target


def _engine_entry(onnx_name: str, precision: Precision, options: DeepStreamOptions) -> NvinferEntry:
    """model-engine-file: the user's engine, else the file nvinfer saves the engine it builds to."""
    if options.engine is not None:
        given = ("An engine built from onnx-file; nvinfer rebuilds from onnx-file when it cannot load it.",)
        return NvinferEntry("model-engine-file", str(Path(options.engine).resolve()), given)
    name = nvinfer_engine_name(onnx_name, options.batch_size, options.gpu_id, precision)
    saved = (
        "The name nvinfer saves the engine it builds to (<onnx-file>_b<batch-size>_gpu<gpu-id>_<mode>.engine):",
        "the first start builds it (and warns that it is missing), later starts load it.",
    )
    return NvinferEntry("model-engine-file", name, saved)


def deepstream_config_text(
    model: DeployModel,
    onnx_name: str,
    norm: NvinferNormalization,
    options: DeepStreamOptions,
    calibration_name: str | None,
    engine_unverified: bool = False,
) -> str:
    """The nvinfer config: header comments, then the [property] group with a comment per non-obvious key."""
    channels, height, width = model.dims(model.input)
    release, spec = options.release, options.release.spec
    header = [GATE_OVERRIDDEN_COMMENT] if model.gate_overridden else []
    header += [ENGINE_UNVERIFIED_COMMENT] if engine_unverified else []
    header = [line.removeprefix("# ") for line in header] + [
        f"Generated by `edgeres deploy deepstream` from {model.path.name} for DeepStream {release.value}",
        f"(TensorRT {spec.tensorrt} on dGPU; JetPack {spec.jetpack} with TensorRT {spec.jetson_tensorrt} on Jetson).",
        f"{model.num_classes} classes, {model.precision.value.upper()}, input {channels}x{height}x{width} RGB.",
    ]
    entries = [
        NvinferEntry("gpu-id", options.gpu_id),
        NvinferEntry("onnx-file", onnx_name),
        _engine_entry(onnx_name, model.precision, options),
        NvinferEntry("labelfile-path", LABELS_NAME),
        NvinferEntry("batch-size", options.batch_size),
        NvinferEntry(
            "network-mode",
            NETWORK_MODE[model.precision],
            ("0 FP32, 1 INT8, 2 FP16. INT8 scales are in the ONNX's Q/DQ nodes; the table is for nvinfer's check.",),
        ),
    ]
    if calibration_name is not None:
        header_number = trt_version_number(str(release.tensorrt))
        comment = (f"Header TRT-{header_number}: TensorRT {release.tensorrt} of DeepStream {release.value}.",)
        entries.append(NvinferEntry("int8-calib-file", calibration_name, comment))
    entries += [
        NvinferEntry(
            "net-scale-factor",
            norm.net_scale_factor,
            (
                "y = net-scale-factor * (x - offsets[c]) with 1 / (255 * mean std); the ONNX's first node",
                "multiplies channel c by mean_std / std[c], so the network sees exactly the normalisation it takes.",
            ),
        ),
        NvinferEntry("offsets", [float(f"{o:.6g}") for o in norm.offsets]),
        NvinferEntry(
            "model-color-format",
            MODEL_COLOR_FORMAT[model.normalization.order],
            (f"The model takes {model.normalization.describe()}.",),
        ),
        NvinferEntry("network-input-order", NETWORK_INPUT_ORDER_NCHW),
        NvinferEntry("infer-dims", [channels, height, width]),
        NvinferEntry("output-blob-names", [PROBABILITIES]),
        NvinferEntry("network-type", NETWORK_TYPE_CLASSIFIER),
        NvinferEntry("process-mode", PROCESS_MODE_PRIMARY),
        NvinferEntry("classifier-threshold", options.classifier_threshold),
        NvinferEntry("gie-unique-id", 1),
        NvinferEntry("maintain-aspect-ratio", False),
    ]
    return nvinfer_config_text(header, entries)


def write_deepstream(
    artifact: Path, out_dir: Path, names: ClassNames, options: DeepStreamOptions = DeepStreamOptions()
) -> DeepStreamResult:
    """Write the nvinfer ONNX, labels and config into `out_dir` for the RGB model `artifact`."""
    model = read_deploy_model(artifact, options.allow_failed_gate)
    require_rgb_input(model)
    require_release_parses(model, options.release)
    unverified = options.engine is not None and engine_overridden(options.engine, options.allow_unverified)
    if options.batch_size < 1 or (model.fixed_batch is not None and options.batch_size > model.fixed_batch):
        limit = f"1..{model.fixed_batch}" if model.fixed_batch else "at least 1"
        raise UserInputError(f"batch size {options.batch_size}: {model.path.name} takes {limit}")
    names.require_count(model.num_classes)
    norm = nvinfer_normalization(model.normalization)
    proto = load_onnx(model.path)
    edited = nvinfer_onnx(proto, norm.channel_gain, model.input.name, model.output.name)
    out_dir = Path(out_dir)
    onnx_name = f"{model.path.stem}.nvinfer.onnx"
    text = deepstream_config_text(
        model, onnx_name, norm, options, CALIBRATION_NAME if model.precision is Precision.INT8 else None, unverified
    )
    # A new folder appears whole (staged, then renamed); into an existing one the config is written last,
    # and a failure removes what this call wrote.
    with staged_folder(out_dir) as folder:
        tensorrt = options.release.tensorrt
        calibration = calibration_table(model, folder, tensorrt) if model.precision is Precision.INT8 else None
        write_bytes_atomic(folder / onnx_name, edited.SerializeToString())
        probabilities = OutputSpec(PROBABILITIES, ("batch", model.num_classes))
        DeepStreamRecord(
            model=model.path.name,
            model_sha256=sha256_file(model.path),
            served=ServedModel(replace(model.spec, output=probabilities), model.precision, model.quantize),
            channel_gain=norm.channel_gain,
            gate_overridden=model.gate_overridden,
            engine_unverified=unverified,
            release=options.release,
        ).write(folder / onnx_name)
        write_bytes_atomic(folder / LABELS_NAME, deepstream_labels(names).encode())
        write_bytes_atomic(folder / CONFIG_NAME, text.encode())
    engine = _engine_entry(onnx_name, model.precision, options)
    return DeepStreamResult(
        config=out_dir / CONFIG_NAME,
        labels=out_dir / LABELS_NAME,
        onnx=out_dir / onnx_name,
        calibration=out_dir / calibration.name if calibration else None,
        normalization=norm,
        release=options.release,
        engine_file=str(engine.value),
        engine_from_nvinfer=options.engine is None,
    )
