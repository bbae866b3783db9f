"""Where a Triton model runs and what it serves there, and the `config.pbtxt` blocks that say so.

GPU instances serve a TensorRT engine (`tensorrt_plan`), or the ONNX on the onnxruntime backend with
TensorRT as its execution accelerator; CPU instances serve the ONNX on onnxruntime's CPU provider,
which for an INT8 build is the U8S8 twin `build` makes for it. The choice and the reason are written
into the config's comments and into `edgeres.json`.
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

    @property
    def platform(self) -> str:
        return "tensorrt_plan" if self is TritonServing.TENSORRT_PLAN else "onnxruntime_onnx"

    @property
    def model_file(self) -> str:
        return "model.plan" if self is TritonServing.TENSORRT_PLAN else "model.onnx"

    @property
    def kind(self) -> InstanceKind:
        return InstanceKind.CPU if self is TritonServing.ONNX_CPU else InstanceKind.GPU


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


@dataclass(frozen=True)
class ServingChoice:
    """What a model folder serves, where, how many instances, and why."""

    serving: TritonServing
    count: int
    precision: Precision
    why: str

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
    if precision is Precision.INT8:
        return "CPU instances run the U8S8 twin, whose Q/DQ pairs onnxruntime's CPU provider runs as integer kernels."
    return f"CPU instances run the {precision.value.upper()} ONNX on onnxruntime's CPU provider."


def instance_group_block(choice: ServingChoice) -> list[str]:
    return ["instance_group [", "  {", f"    kind: {choice.kind.triton}", f"    count: {choice.count}", "  }", "]"]


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
