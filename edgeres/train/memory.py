"""The memory a training run needs, estimated and checked before any image is read or any file written.

Unchecked, `--size 4000` fails inside torch ("DefaultCPUAllocator: can't allocate memory") and `--size 100000`
inside OpenCV's resize, both after the run's first files were written.
"""

from __future__ import annotations

import torch

from edgeres.errors import ResourceLimitError, check_fits_in_memory
from edgeres.frames.yuv import conversion_bytes
from edgeres.model.resnet import FLOAT_BYTES, model_bytes, training_activation_bytes
from edgeres.train.options import FinetuneOptions, OptimizerKind

# Tensors the optimiser keeps per parameter: AdamW's two moments, SGD's momentum.
OPTIMIZER_STATES = {OptimizerKind.ADAMW: 2, OptimizerKind.SGD: 1}


def device_bytes(options: FinetuneOptions, num_classes: int, batch: int) -> int:
    """Where the model trains: parameters, gradients and optimiser state, plus one step's activations."""
    weights = model_bytes(options.arch, num_classes)
    return weights * (2 + OPTIMIZER_STATES[options.optimizer]) + training_activation_bytes(
        options.arch, options.size, batch
    )


def host_bytes(options: FinetuneOptions, num_classes: int, batch: int, workers: int) -> int:
    """On the host besides: the checkpoints serialised before they are written, a batch of network inputs
    (and its collated copy), and per loading process one sample's encoding (a camera frame's conversion)."""
    weights = model_bytes(options.arch, num_classes)
    saving = weights * (1 + OPTIMIZER_STATES[options.optimizer])
    inputs = 2 * FLOAT_BYTES * 3 * options.size * options.size * batch
    frame = options.contract
    per_sample = conversion_bytes(frame.width, frame.height) if frame is not None else 0
    return saving + inputs + per_sample * max(1, workers)


def _gigabytes(count: int) -> str:
    return f"{count / 1e9:.1f} GB"


def check_training_fits(
    options: FinetuneOptions, num_classes: int, batch: int, device: torch.device, workers: int
) -> None:
    """Refuse a run whose estimate exceeds the available memory: the host's, and a GPU's free memory."""
    what = f"training {options.arch.value} on {batch} image(s) of {options.size}x{options.size} at a time"
    on_device = device_bytes(options, num_classes, batch)
    on_host = host_bytes(options, num_classes, batch, workers)
    if device.type != "cuda":
        check_fits_in_memory(on_device + on_host, what)
        return
    free, _ = torch.cuda.mem_get_info(device)
    if on_device > free:
        raise ResourceLimitError(
            f"{what} needs about {_gigabytes(on_device)} of GPU memory, {_gigabytes(free)} is free on {device}"
        )
    check_fits_in_memory(on_host, f"{what} (host side)")
