"""The scales a quantization-aware-trained model was trained against, carried inside its own FP32 ONNX.

A QAT model is only right at the scales it learned with: recalibrating it throws away what training fitted
the weights to. So the trained FP32 ONNX carries them in its metadata (one key, JSON): the activation ranges,
the per-channel weight scales, and the placement they belong to. Kept in the file itself, they travel with it
wherever it is copied, with or without its sidecar, and `edgeres build` can tell a QAT model from a plain one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.fields import Fields
from edgeres.artifacts.kinds import FINETUNE_MODEL_NAME
from edgeres.errors import UserInputError
from edgeres.quantize.qdq import QdqPlan, ScaleGrid

METADATA_KEY = "edgeres.quantization_aware_training"
SCHEMA = 1


def placement_of(plan: QdqPlan) -> dict[str, list[list[Any]]]:
    """The plan's quantized positions as plain lists: what a stored set of scales must match."""
    return {
        "inputs": [[q.node, q.index, q.tensor] for q in plan.inputs],
        "weights": [[w.node, w.initializer, w.axis] for w in plan.weights],
    }


@dataclass(frozen=True)
class TrainingSummary:
    """What a build repeats of how a QAT model was trained, read typed from the record it carries (a file from
    elsewhere: unknown or mistyped fields are refused, not copied)."""

    epochs: int | None = None
    best_epoch: int | None = None
    fp32_val_accuracy: float | None = None
    ptq_val_accuracy: float | None = None
    qat_val_accuracy: float | None = None
    model_sha256: str | None = None  # the fine-tuned model.pth it was trained from

    @classmethod
    def of(cls, record: Mapping[str, Any], where: str) -> TrainingSummary:
        fields = Fields.of(dict(record), f"{where}: trained scales' record")
        request = fields.section("request")
        return cls(
            epochs=None if request is None else request.get("epochs", int),
            best_epoch=fields.get("best_epoch", int),
            fp32_val_accuracy=fields.get("fp32_val_accuracy", float),
            ptq_val_accuracy=fields.get("ptq_val_accuracy", float),
            qat_val_accuracy=fields.get("qat_val_accuracy", float),
            model_sha256=fields.get("model_sha256", str),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainedScales:
    """Activation ranges by tensor and per-channel weight scales by initializer, fixed while training."""

    ranges: Mapping[str, float]
    weight_scales: Mapping[str, np.ndarray]
    placement: Mapping[str, list[list[Any]]]
    record: Mapping[str, Any]  # how the training went (what the build summary repeats)
    grid: ScaleGrid = ScaleGrid.FP16  # the values the scales took while training (TensorRT's FP16 remainder)

    def to_json(self) -> str:
        return json.dumps({
            "schema": SCHEMA,
            "ranges": {name: float(value) for name, value in self.ranges.items()},
            "weight_scales": {name: [float(s) for s in np.asarray(v, np.float32).ravel()]
                              for name, v in self.weight_scales.items()},
            "placement": dict(self.placement),
            "grid": self.grid.value,
            "record": dict(self.record),
        }, sort_keys=True)  # fmt: skip

    def stamp(self, model: onnx.ModelProto) -> onnx.ModelProto:
        """A copy of `model` carrying these scales in its metadata."""
        out = onnx.ModelProto()
        out.CopyFrom(model)
        kept = [p for p in out.metadata_props if p.key != METADATA_KEY]
        del out.metadata_props[:]
        out.metadata_props.extend(kept)
        out.metadata_props.add(key=METADATA_KEY, value=self.to_json())
        return out

    def check_placement(self, plan: QdqPlan, where: str) -> None:
        """Refuse scales made for another placement (another model, or another edgeres's Q/DQ placer)."""
        current = placement_of(plan)
        for part in ("inputs", "weights"):
            stored = [list(entry) for entry in self.placement.get(part, [])]
            if stored != current[part]:
                missing = [e for e in current[part] if e not in stored]
                extra = [e for e in stored if e not in current[part]]
                first = (missing or extra or [["order"]])[0]
                raise UserInputError(
                    f"{where}: its trained scales were made for another Q/DQ placement ({part}: {len(stored)} "
                    f"stored, {len(current[part])} placed now; first difference {first}); train it again with "
                    "this edgeres"
                )


def _finite_positive(value: object, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise UserInputError(f"{where}: {what} is {value!r}, not a positive finite number")
    return float(value)


def _entry_of(entry: object, kinds: tuple[type, ...]) -> bool:
    return isinstance(entry, list) and len(entry) == len(kinds) and all(
        isinstance(value, kind) and not isinstance(value, bool) for value, kind in zip(entry, kinds, strict=True)
    )


def trained_scales(model: onnx.ModelProto, where: str) -> TrainedScales | None:
    """The scales `model` carries (None: not a QAT model); one line naming `where` when they are malformed."""
    text = next((p.value for p in model.metadata_props if p.key == METADATA_KEY), None)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{where}: its trained scales are not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{where}: its trained scales are not a record")
    if data.get("schema") != SCHEMA:
        raise UserInputError(f"{where}: its trained scales are of another format (schema {data.get('schema')!r})")
    ranges, weights = data.get("ranges"), data.get("weight_scales")
    placement, record = data.get("placement"), data.get("record", {})
    if not isinstance(ranges, dict) or not isinstance(weights, dict) or not isinstance(placement, dict):
        raise UserInputError(f"{where}: its trained scales lack ranges, weight scales or placement")
    parsed_ranges = {str(k): _finite_positive(v, f"the range of {k}", where) for k, v in ranges.items()}
    parsed_weights = {}
    for name, values in weights.items():
        if not isinstance(values, list) or not values:
            raise UserInputError(f"{where}: the weight scales of {name} are not a list of numbers")
        parsed_weights[str(name)] = np.array(
            [_finite_positive(v, f"a weight scale of {name}", where) for v in values], np.float32
        )
    for part, kinds in (("inputs", (str, int, str)), ("weights", (str, str, int))):
        entries = placement.get(part)
        if not isinstance(entries, list) or not all(_entry_of(entry, kinds) for entry in entries):
            raise UserInputError(f"{where}: its trained scales' placement.{part} is not a list of "
                                 f"[{', '.join(k.__name__ for k in kinds)}] entries")  # fmt: skip
    grid = data.get("grid")
    if grid not in {g.value for g in ScaleGrid}:
        raise UserInputError(f"{where}: its trained scales name no known scale grid ({grid!r})")
    return TrainedScales(parsed_ranges, parsed_weights, placement, record if isinstance(record, dict) else {},
                         ScaleGrid(grid))  # fmt: skip


def check_trained_from(path: Path, scales: TrainedScales) -> None:
    """Refuse a QAT model whose fine-tuned checkpoint beside it has changed since it was trained (the float
    epochs went on after the QAT epochs): it no longer belongs to that run."""
    recorded = TrainingSummary.of(scales.record, str(path)).model_sha256
    beside = Path(path).parent / FINETUNE_MODEL_NAME
    if recorded is not None and beside.is_file() and sha256_file(beside) != recorded:
        raise UserInputError(
            f"{path}: was trained from another {FINETUNE_MODEL_NAME} than the one beside it (the fine-tune went on "
            "after its QAT epochs); run the QAT epochs again (`edgeres finetune ... --resume --qat-epochs N`)"
        )

