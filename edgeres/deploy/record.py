"""What a deployment records about what it serves: the sidecar of DeepStream's ONNX and Triton's
`edgeres.json`, each one record type that writes and reads its file.

Both carry the served model's `ModelSpec` and its own precision (`ServedModel`), so DeepStream's ONNX
reads back as a model like any other (deploy, runtime and profile follow it), and a Triton model folder
says which model, weights and build it came from.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from edgeres.artifacts.atomic import read_json_object, write_json_atomic
from edgeres.artifacts.fields import Fields
from edgeres.artifacts.precision import Precision
from edgeres.artifacts.quantize_record import QuantizeRecord
from edgeres.artifacts.sidecar import Section, Sidecar, Stage, write_sidecar
from edgeres.deploy.deepstream_release import DeepStreamRelease
from edgeres.deploy.triton_config import InstanceKind, TritonServing
from edgeres.errors import UserInputError
from edgeres.export.record import ModelSpec

PROVENANCE_NAME = "edgeres.json"
E = TypeVar("E", bound=enum.Enum)


def _member(enum_type: type[E], value: str, fields: Fields, key: str) -> E:
    """The member of `enum_type` a record names; one-line refusal naming the file and key otherwise."""
    try:
        return enum_type(value)
    except ValueError:
        raise fields.refusal(key, value, " or ".join(repr(member.value) for member in enum_type)) from None


@dataclass(frozen=True)
class ServedModel:
    """The model a deployment serves: what it is, and at which precision."""

    spec: ModelSpec
    precision: Precision
    # How the quantize stage made it, when it did: written for people and tools (as "quantized"), so a
    # deployment says its calibration, float layers and remainder type; read back by nobody inside edgeres.
    quantize: QuantizeRecord | None = None

    def to_options(self) -> dict[str, Any]:
        quantized = {} if self.quantize is None else {"quantized": self.quantize.options()}
        return self.spec.to_options(self.precision) | quantized

    @classmethod
    def from_options(cls, options: Fields) -> ServedModel:
        spec = ModelSpec.from_options(options)
        if spec is None:
            raise UserInputError(f"{options.where} has no num_classes")
        precision = options.require("precision", str)
        try:
            return cls(spec, Precision(precision))
        except ValueError:
            raise options.refusal("precision", precision, "fp32, fp16 or int8") from None


@dataclass(frozen=True)
class DeepStreamRecord:
    """The ONNX written for Gst-nvinfer: made from which model, with which per-channel gain in front."""

    model: str  # inputs.model: the file name of the model it was made from
    model_sha256: str
    served: ServedModel  # its output is the Softmax's probabilities
    channel_gain: tuple[float, ...]
    gate_overridden: bool  # its build failed the fidelity gate and it was deployed anyway
    engine_unverified: bool = False  # the engine named for nvinfer was never verified, or failed, deployed anyway
    release: DeepStreamRelease | None = None  # the DeepStream the config targets (None: written before releases)

    def write(self, artifact: Path) -> Sidecar:
        """The sidecar of `artifact` (already written)."""
        release = {} if self.release is None else {"deepstream_release": self.release.value}
        options = {
            **self.served.to_options(),
            "nvinfer_channel_gain": list(self.channel_gain),
            "gate_overridden": self.gate_overridden,
            "engine_unverified": self.engine_unverified,
            **release,
        }
        inputs: dict[str, str | None] = {"model": self.model, "model_sha256": self.model_sha256}
        return write_sidecar(artifact, Stage.DEPLOY_DEEPSTREAM, inputs, options)

    @classmethod
    def of(cls, sidecar: Sidecar) -> DeepStreamRecord:
        """The record a DeepStream ONNX's sidecar holds; one-line UserInputError naming it when malformed."""
        sidecar.require_stage(Stage.DEPLOY_DEEPSTREAM)
        inputs, options = sidecar.fields(Section.INPUTS), sidecar.fields(Section.OPTIONS)
        gain = options.items("nvinfer_channel_gain", float)
        release = options.get("deepstream_release", str)
        return cls(
            model=inputs.require("model", str),
            model_sha256=inputs.require("model_sha256", str),
            served=ServedModel.from_options(options),
            channel_gain=gain if gain is not None else (),
            gate_overridden=options.get("gate_overridden", bool) or False,
            engine_unverified=options.get("engine_unverified", bool) or False,
            release=None if release is None else _member(DeepStreamRelease, release, options, "deepstream_release"),
        )


@dataclass(frozen=True)
class TritonRecord:
    """A Triton model folder's `edgeres.json`: the file it serves, the model that file is, the class names,
    and where it runs: the instance kind and count, what they run (and on which backend) and why."""

    source: str  # the file copied into the version folder (the ONNX, or a TensorRT plan built from it)
    source_sha256: str
    artifact: str  # the ONNX model deployed (the plan's source when a plan is served)
    served: ServedModel
    class_names: str  # where the names came from: a file, or imagenet-1k
    gate_overridden: bool
    engine_unverified: bool = False  # the plan served was never verified against its ONNX, or failed
    instance_kind: InstanceKind = InstanceKind.GPU
    instance_count: int = 1
    serving: TritonServing | None = None  # None: written before edgeres recorded it
    why: str = ""
    runtime_unverified: bool = False  # served on OpenVINO, which its build never verified it on

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": Stage.DEPLOY_TRITON.value,
            "source": self.source,
            "source_sha256": self.source_sha256,
            "artifact": self.artifact,
            "artifact_options": self.served.to_options(),
            "class_names": self.class_names,
            "gate_overridden": self.gate_overridden,
            "engine_unverified": self.engine_unverified,
            "instance_group": {"kind": self.instance_kind.value, "count": self.instance_count},
            "serving": None if self.serving is None else self.serving.value,
            # the Triton backend that runs it, for people and tools (read back from "serving")
            "backend": None if self.serving is None else self.serving.backend,
            "why": self.why,
            "runtime_unverified": self.runtime_unverified,
        }

    def write(self, path: Path) -> Path:
        write_json_atomic(path, self.to_json())
        return path

    @classmethod
    def read(cls, path: Path) -> TritonRecord:
        """The record at `path`; one-line UserInputError when it is unreadable or malformed."""
        fields = Fields.of(read_json_object(path, "deploy record"), f"{path}: record")
        if fields.get("stage", str) != Stage.DEPLOY_TRITON.value:
            raise fields.refusal("stage", fields.data.get("stage"), repr(Stage.DEPLOY_TRITON.value))
        options = fields.section("artifact_options")
        if options is None:
            raise UserInputError(f"{path} has no artifact_options")
        group = fields.section("instance_group")
        kind, count = InstanceKind.GPU, 1  # what a record written before instance groups deployed
        if group is not None:
            kind_text, count_value = group.get("kind", str), group.get("count", int)
            kind = kind if kind_text is None else _member(InstanceKind, kind_text, group, "kind")
            count = count if count_value is None else count_value
        serving = fields.get("serving", str)
        return cls(
            source=fields.require("source", str),
            source_sha256=fields.require("source_sha256", str),
            artifact=fields.require("artifact", str),
            served=ServedModel.from_options(options),
            class_names=fields.require("class_names", str),
            gate_overridden=fields.get("gate_overridden", bool) or False,
            engine_unverified=fields.get("engine_unverified", bool) or False,
            instance_kind=kind,
            instance_count=count,
            serving=None if serving is None else _member(TritonServing, serving, fields, "serving"),
            why=fields.get("why", str) or "",
            runtime_unverified=fields.get("runtime_unverified", bool) or False,
        )
