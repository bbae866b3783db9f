"""Where a Triton model runs and what it serves there, and the `config.pbtxt` blocks that say so.

GPU instances serve a TensorRT engine (`tensorrt_plan`), or the ONNX on the onnxruntime backend with
TensorRT as its execution accelerator; CPU instances serve the ONNX on onnxruntime's CPU provider,
which for an INT8 build is the U8S8 twin `build` makes for it, or, where the build verified OpenVINO on
its TensorRT Q/DQ model and found it faster (edgeres.deploy.cpu_backend), that model on Triton's OpenVINO
backend. The choice and the reason are written into the config's comments and into `edgeres.json`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from edgeres.artifacts.precision import Precision


class InstanceKind(str, enum.Enum):
    """Where Triton runs the model's instances (ModelInstanceGroup.Kind in model_config.proto)."""

    GPU = "gpu"
    CPU = "cpu"

    @property
    def triton(self) -> str:
        return f"KIND_{self.name}"


class TritonServing(str, enum.Enum):
    """What the instances run."""

    TENSORRT_PLAN = "tensorrt_plan"  # a TensorRT engine built on the serving GPU
    ONNX_TENSORRT = "onnxruntime_tensorrt"  # the ONNX, compiled by onnxruntime's TensorRT provider at load
    ONNX_CPU = "onnxruntime_cpu"  # the ONNX on onnxruntime's CPU provider
    OPENVINO_CPU = "openvino_cpu"  # the ONNX on Triton's OpenVINO backend (OpenVINO's CPU plugin)

    @property
    def backend(self) -> str:
        """The Triton backend that runs it (what `edgeres.json` names)."""
        named = {TritonServing.TENSORRT_PLAN: "tensorrt", TritonServing.OPENVINO_CPU: OPENVINO_BACKEND}
        return named.get(self, "onnxruntime")

    @property
    def runtime_lines(self) -> list[str]:
        """The config lines naming what runs the model: `platform` for the TensorRT and onnxruntime backends (as
        written before OpenVINO); for OpenVINO, which has no platform name, `backend` and the file it reads
        (its default is model.xml)."""
        if self is TritonServing.OPENVINO_CPU:
            return [f'backend: "{OPENVINO_BACKEND}"', f'default_model_filename: "{self.model_file}"']
        return [f'platform: "{"tensorrt_plan" if self is TritonServing.TENSORRT_PLAN else "onnxruntime_onnx"}"']

    @property
    def model_file(self) -> str:
        return "model.plan" if self is TritonServing.TENSORRT_PLAN else "model.onnx"

    @property
    def kind(self) -> InstanceKind:
        cpu = self in (TritonServing.ONNX_CPU, TritonServing.OPENVINO_CPU)
        return InstanceKind.CPU if cpu else InstanceKind.GPU


# onnxruntime_backend README, "ONNX Runtime with TensorRT optimization": precision_mode is "FP32", "FP16"
# or "INT8" (src/onnxruntime.cc maps them to trt_fp16_enable / trt_int8_enable). A model with Q/DQ nodes
# gets no int8_calibration_table_name ("If calibration table is provided for model with Q/DQ nodes then
# ORT session creation will fail").
PRECISION_MODE = {Precision.FP32: "FP32", Precision.FP16: "FP16", Precision.INT8: "INT8"}

# optimization { graph { level } } on the onnxruntime backend (its README, "Model Config Options", and
# src/onnxruntime.cc): -1 ORT_ENABLE_BASIC, 1 ORT_ENABLE_EXTENDED, 2 ORT_DISABLE_ALL, absent ORT_ENABLE_ALL.
# Level -1 still runs the basic (level 1) transformers, WeightBiasQuantization among them
# (onnxruntime core/optimizer/graph_transformer_utils.cc), before TensorRT is handed the graph.
ORT_GRAPH_DISABLE_ALL = 2

# Triton's OpenVINO backend (triton-inference-server/openvino_backend, README "Using the OpenVINO Backend" and
# src/openvino.cc, branches r25.09 to r26.08): `backend: "openvino"`; it reads `default_model_filename` from the
# version folder with ov::Core::read_model (default model.xml, IR; "Other allowed values are model.pdmodel or
# model.onnx", since r24.04), so the Q/DQ ONNX is served as the build measured it, with no conversion. Its
# instances are KIND_CPU only ("supports only Kind CPU and AUTO"); it compiles at OpenVINO's default float
# precision, bf16 on CPUs with AVX512-BF16 or AMX, and takes no parameter for f32 (HINT_BF16 only asks for bf16).
# An IR would not help: OpenVINO 2026.4's compile_model ignores INFERENCE_PRECISION_HINT in an IR's rt_info.
OPENVINO_BACKEND = "openvino"
# Its `parameters` (README, the same list in r25.09 and r26.08) that edgeres writes: NUM_STREAMS with
# PERFORMANCE_HINT LATENCY for one instance, NUM_STREAMS equal to the instance count for several (the README's
# "Latency mode" and "Throughput mode" examples: instances share one compiled model, each with its own infer
# request). ENABLE_BATCH_PADDING because with max_batch_size > 0 the backend reshapes the model to a batch of
# exactly max_batch_size (ov::set_batch) and answers any smaller batch with an error unless it pads.
# Not written: INFERENCE_NUM_THREADS (default: every core), SKIP_OV_DYNAMIC_BATCHSIZE (it only turns off
# OpenVINO's automatic batching, a GPU feature), RESHAPE_IO_LAYERS (the config's dims are the model's).
OPENVINO_PADDING = "ENABLE_BATCH_PADDING"
# The first Triton whose OpenVINO reads the Q/DQ model's FP16 scales (2025.3.0, server build.py
# DEFAULT_TRITON_VERSION_MAP "standalone_openvino_version" on r25.09; r25.08 has 2025.2.0).
OPENVINO_MIN_TRITON = "25.09"


@dataclass(frozen=True)
class ServingChoice:
    """What a model folder serves, where, how many instances, and why."""

    serving: TritonServing
    count: int
    precision: Precision
    why: str
    runtime_verified: bool = True  # False: served on OpenVINO though its build never verified it there

    @property
    def kind(self) -> InstanceKind:
        return self.serving.kind

    @property
    def graph_level(self) -> int | None:
        """The onnxruntime graph optimisation level written, None for the backend's default (all)."""
        quantized_for_tensorrt = self.serving is TritonServing.ONNX_TENSORRT and self.precision is Precision.INT8
        return ORT_GRAPH_DISABLE_ALL if quantized_for_tensorrt else None


def serving_reason(serving: TritonServing, precision: Precision) -> str:
    """Why `serving` is what runs fast on its instances, in one sentence."""
    if serving is TritonServing.TENSORRT_PLAN:
        return "GPU instances run the TensorRT engine built for this GPU: nothing is compiled when Triton loads it."
    if serving is TritonServing.ONNX_TENSORRT:
        mode = PRECISION_MODE[precision]
        extra = (
            "; onnxruntime's graph optimizer is off (level 2 = ORT_DISABLE_ALL) so TensorRT receives the Q/DQ graph "
            "as written, biases included"
            if precision is Precision.INT8
            else ""
        )
        return (
            f"GPU instances run the ONNX through onnxruntime's TensorRT accelerator at precision_mode {mode}, which "
            f"builds a TensorRT engine when the model loads and leaves what TensorRT cannot run to CUDA{extra}."
        )
    if serving is TritonServing.OPENVINO_CPU:
        if precision is not Precision.INT8:
            return f"CPU instances run the {precision.value.upper()} ONNX on Triton's OpenVINO backend."
        return (
            "CPU instances run the TensorRT Q/DQ model as it is on Triton's OpenVINO backend, its quantized layers "
            f"on OpenVINO's INT8 kernels (Triton {OPENVINO_MIN_TRITON} or later: its OpenVINO 2025.3 is the first "
            "to read FP16 Q/DQ scales)."
        )
    if precision is Precision.INT8:
        return "CPU instances run the U8S8 twin, whose Q/DQ pairs onnxruntime's CPU provider runs as integer kernels."
    return f"CPU instances run the {precision.value.upper()} ONNX on onnxruntime's CPU provider."


def instance_group_block(choice: ServingChoice) -> list[str]:
    return ["instance_group [", "  {", f"    kind: {choice.kind.triton}", f"    count: {choice.count}", "  }", "]"]


def _parameter(key: str, value: str) -> str:
    return f'parameters {{ key: "{key}" value {{ string_value: "{value}" }} }}'


def openvino_parameters(choice: ServingChoice, max_batch_size: int) -> list[str]:
    """The OpenVINO backend's `parameters` (see OPENVINO_BACKEND above); nothing for the other backends."""
    if choice.serving is not TritonServing.OPENVINO_CPU:
        return []
    lines = [_parameter("NUM_STREAMS", str(choice.count))]
    if choice.count == 1:
        lines.append(_parameter("PERFORMANCE_HINT", "LATENCY"))
    if max_batch_size > 1:
        lines.append(_parameter(OPENVINO_PADDING, "YES"))
    return lines


def openvino_notes(choice: ServingChoice, max_batch_size: int) -> list[str]:
    """What a reader of the config should know of the OpenVINO backend (written as comments)."""
    if choice.serving is not TritonServing.OPENVINO_CPU:
        return []
    notes = [
        "OpenVINO computes what the model leaves in float at bf16 on CPUs with AVX512-BF16 or AMX (its default; "
        "the backend has no parameter for f32, the build measured f32)."
    ]
    if max_batch_size > 1:
        notes.append(
            f"The backend runs every batch at max_batch_size {max_batch_size}, smaller ones padded: for the "
            "lowest latency, deploy with max batch 1 and more instances."
        )
    return notes


def optimization_block(choice: ServingChoice) -> list[str]:
    """The onnxruntime TensorRT accelerator (and, for a Q/DQ model, the graph level); nothing otherwise."""
    if choice.serving is not TritonServing.ONNX_TENSORRT:
        return []
    lines = ["optimization {"]
    if choice.graph_level is not None:
        lines += ["  graph {", f"    level: {choice.graph_level}", "  }"]
    lines += [
        "  execution_accelerators {",
        "    gpu_execution_accelerator [",
        "      {",
        '        name: "tensorrt"',
        f'        parameters {{ key: "precision_mode" value: "{PRECISION_MODE[choice.precision]}" }}',
        "      }",
        "    ]",
        "  }",
        "}",
    ]
    return lines
