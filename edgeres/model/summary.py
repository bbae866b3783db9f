"""Stage-by-stage table of a ResNet: output shape, parameters and multiply-accumulates."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgeres.model.resnet import ResNet, check_forward_fits


@dataclass(frozen=True)
class LayerRow:
    name: str
    output_shape: tuple[int, ...]
    parameters: int
    macs: int


def _module_macs(module: nn.Module, output: torch.Tensor) -> int:
    """MACs of one leaf module for batch 1 (conv and linear; BN, ReLU, pooling count as zero)."""
    if isinstance(module, nn.Conv2d):
        kernel = module.kernel_size[0] * module.kernel_size[1] * (module.in_channels // module.groups)
        return int(output[0].numel() * kernel)
    if isinstance(module, nn.Linear):
        return int(module.in_features * module.out_features)
    return 0


def summarize(model: ResNet, size: int = 224) -> list[LayerRow]:
    """Run one zero image through the model and account each top-level stage.

    A size whose forward pass would not fit in the available memory is refused first (`check_forward_fits`).
    """
    check_forward_fits(model.arch, model.num_classes, size)
    rows: list[LayerRow] = []
    x = torch.zeros(1, 3, size, size)
    with torch.inference_mode():
        for name, stage in model.stages():
            macs = 0

            def count(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
                nonlocal macs
                macs += _module_macs(module, output)

            hooks = [m.register_forward_hook(count) for m in stage.modules() if not list(m.children())]
            x = stage(torch.flatten(x, 1) if name == "fc" else x)
            for hook in hooks:
                hook.remove()
            params = sum(p.numel() for p in stage.parameters())
            rows.append(LayerRow(name, tuple(x.shape[1:]), params, macs))
    return rows

