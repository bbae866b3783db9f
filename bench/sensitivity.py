"""Cost of the INT8 sensitivity pass against one plain held-out evaluation, ResNet50 and EfficientNet-Lite0, one run.

The pass measures 3 + 2 x layers whole models (edgeres.quantize.sensitivity); a plain evaluation is what
`edgeres build` does once per model for its fidelity report: one onnxruntime session over the INT8 CPU
twin and the held-out samples. Both reuse one calibration (not timed). The ratio says how many plain
evaluations the pass costs; the pass's time per variant says what building a variant adds.
ResNet50 has random weights (latency does not depend on them); Lite0 has its trained ImageNet weights
(tests/fixtures/efficientnet_lite0.py).

    .venv/bin/python bench/sensitivity.py [--models resnet50,lite0] [--holdout 12] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fixtures, for the trained Lite0

from edgeres.export.onnx_export import torch_to_onnx
from edgeres.frames.images import default_calibration_dir, imagenet_batch, list_images, read_rgb
from edgeres.model.resnet import build_model
from edgeres.quantize.bias_correction import corrected_biases, weighted_inputs
from edgeres.quantize.calibrate import collect_statistics, ranges_from_statistics
from edgeres.quantize.cpu_twin import exact_weight_type
from edgeres.quantize.fidelity import HeldOutEvaluation
from edgeres.quantize.histogram import CalibAlgo, CalibOptions
from edgeres.quantize.qdq import plan_qdq
from edgeres.quantize.sensitivity import (
    QuantizedVariants,
    analyse_sensitivity,
    network_layers,
)
from edgeres.samples.reader import derive_variant

CALIB_SAMPLES = 16


def model_named(name: str) -> onnx.ModelProto:
    if name == "resnet50":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch_to_onnx(build_model())
    from tests.fixtures.efficientnet_lite0 import load_efficientnet_lite0

    return torch_to_onnx(load_efficientnet_lite0())


def samples(count: int, offset: int) -> np.ndarray:
    """`count` model inputs from the shipped photographs (crops/flips after the originals)."""
    photos = [read_rgb(p) for p in list_images(default_calibration_dir())]
    rng = np.random.default_rng(offset)
    pictures = [derive_variant(p, v, rng) for v in range(offset, offset + 4) for p in photos]
    return imagenet_batch(pictures[:count])


def bench(name: str, holdout: int, repeats: int) -> None:
    model = model_named(name)
    plan = plan_qdq(model)
    calibration = samples(CALIB_SAMPLES, 1)
    batches = [calibration[i : i + 8] for i in range(0, CALIB_SAMPLES, 8)]
    tensors = list(dict.fromkeys(plan.activations + plan.cpu_extra))
    stats = collect_statistics(model, batches, tensors, CalibOptions(), means_for=weighted_inputs(model, plan))
    ranges = ranges_from_statistics(stats, CalibAlgo.MSE, CalibOptions())
    biases = corrected_biases(model, plan, ranges, {k: v.mean for k, v in stats.means.items()})
    held = samples(holdout, 5)
    logits = HeldOutEvaluation(model, [(held[i : i + 8], None) for i in range(0, holdout, 8)])
    variants = QuantizedVariants(model, plan, ranges, biases, exact_weight_type())
    layers = network_layers(model, plan)
    twin = variants.keeping()
    plain = []
    for _ in range(repeats):
        tick = time.perf_counter()
        logits.measure(twin)
        plain.append(time.perf_counter() - tick)
    tick = time.perf_counter()
    report = analyse_sensitivity(variants, logits, layers)
    sensitivity = time.perf_counter() - tick
    variants_measured = 3 + 2 * len(layers)
    plain_s = statistics.median(plain)
    print(
        f"{name}: {len(layers)} layers, {holdout} held-out samples; plain evaluation {plain_s:.2f} s (median of "
        f"{repeats}); sensitivity pass {sensitivity:.1f} s = {sensitivity / plain_s:.0f}x a plain evaluation "
        f"({variants_measured} variants, {sensitivity / variants_measured:.2f} s each = "
        f"{sensitivity / variants_measured / plain_s:.1f}x); all INT8 {report.int8.sqnr_db:.1f} dB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,lite0")
    parser.add_argument("--holdout", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for name in args.models.split(","):
        if name not in ("resnet50", "lite0"):
            parser.error(f"unknown model {name!r}: resnet50 or lite0")
        bench(name, args.holdout, args.repeats)


if __name__ == "__main__":
    main()
