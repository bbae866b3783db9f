"""ResNet18/34/50/101/152 with torchvision's parameter names, and safe checkpoint loading.

Defined here rather than imported from torchvision, which only ships as a multi-GB CUDA pair.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from edgeres.errors import CheckpointError, ClassCountMismatch, UserInputError, check_fits_in_memory
from edgeres.model.arch import DEFAULT_ARCH, DEFAULT_NUM_CLASSES, Arch

# (block kind, blocks per stage) as in He et al. 2015, Table 1.
_LAYOUT: dict[Arch, tuple[str, tuple[int, int, int, int]]] = {
    Arch.RESNET18: ("basic", (2, 2, 2, 2)),
    Arch.RESNET34: ("basic", (3, 4, 6, 3)),
    Arch.RESNET50: ("bottleneck", (3, 4, 6, 3)),
    Arch.RESNET101: ("bottleneck", (3, 4, 23, 3)),
    Arch.RESNET152: ("bottleneck", (3, 8, 36, 3)),
}

DEFAULT_SEED = 0

# Parameters of each network without its fc layer (torchvision's totals minus 1000 x (features + 1)).
_BACKBONE_PARAMETERS: dict[Arch, int] = {
    Arch.RESNET18: 11_176_512,
    Arch.RESNET34: 21_284_672,
    Arch.RESNET50: 23_508_032,
    Arch.RESNET101: 42_500_160,
    Arch.RESNET152: 58_143_808,
}
FLOAT_BYTES = 4
# float32 activations alive at once per input pixel: the image (3) plus about three of the largest
# feature maps (64 x (S/2)^2 = 16 S^2 each, the stem's and layer1's).
ACTIVATION_FLOATS_PER_PIXEL = 3 + 3 * 16
# Bytes that a training step keeps for the backward pass per input pixel of each image, every stage
# trainable: measured with torch.autograd.graph.saved_tensors_hooks (parameters excluded) at 64 and 160 px,
# rounded up (ResNet50: 1766 and 1721). At 224 px a ResNet50 keeps about 89 MB per image.
_TRAINING_BYTES_PER_PIXEL: dict[Arch, int] = {
    Arch.RESNET18: 460,
    Arch.RESNET34: 660,
    Arch.RESNET50: 1780,
    Arch.RESNET101: 2640,
    Arch.RESNET152: 3700,
}


def feature_width(arch: Arch) -> int:
    """Features entering the fc layer: 512 for ResNet18/34, 2048 for the bottleneck ResNets."""
    return 512 if _LAYOUT[Arch(arch)][0] == "basic" else 2048


def model_bytes(arch: Arch, num_classes: int) -> int:
    """float32 bytes of the model's parameters: the backbone plus fc's num_classes x (features + 1)."""
    return FLOAT_BYTES * (_BACKBONE_PARAMETERS[Arch(arch)] + num_classes * (feature_width(arch) + 1))


def activation_bytes(size: int, batch: int = 1) -> int:
    """Estimated float32 activation bytes of a forward pass on `batch` images of size x size."""
    return FLOAT_BYTES * ACTIVATION_FLOATS_PER_PIXEL * batch * size * size


def training_activation_bytes(arch: Arch, size: int, batch: int) -> int:
    """Estimated bytes a training step on `batch` images of size x size keeps for its backward pass, plus the
    forward pass's working set."""
    per_pixel = _TRAINING_BYTES_PER_PIXEL[Arch(arch)] + FLOAT_BYTES * ACTIVATION_FLOATS_PER_PIXEL
    return per_pixel * batch * size * size


def check_model_fits(arch: Arch, num_classes: int) -> None:
    """Refuse a model whose parameters alone exceed the available memory (e.g. 10**12 classes)."""
    check_fits_in_memory(model_bytes(arch, num_classes), f"{Arch(arch).value} with {num_classes:,} classes")


def check_forward_fits(arch: Arch, num_classes: int, size: int, batch: int = 1) -> None:
    """Refuse a forward pass (model + activations) that exceeds the available memory (e.g. a 100000 px input)."""
    check_model_fits(arch, num_classes)
    estimate = model_bytes(arch, num_classes) + activation_bytes(size, batch)
    check_fits_in_memory(estimate, f"a {Arch(arch).value} forward pass on {batch} image(s) of {size}x{size}")


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_ch, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (carries the stride: the "v1.5" variant) -> 1x1, inner width = out width / 4."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = _conv1x1(in_ch, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, width * self.expansion)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, arch: Arch = DEFAULT_ARCH, num_classes: int = DEFAULT_NUM_CLASSES) -> None:
        super().__init__()
        if num_classes < 1:
            raise UserInputError(f"num_classes must be at least 1, got {num_classes}")
        check_model_fits(arch, num_classes)
        kind, blocks = _LAYOUT[Arch(arch)]
        block: type[BasicBlock] | type[Bottleneck] = BasicBlock if kind == "basic" else Bottleneck
        self.arch = Arch(arch)
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_ch = 64
        stages = []
        for index, (width, count) in enumerate(zip((64, 128, 256, 512), blocks, strict=True)):
            stride = 1 if index == 0 else 2
            stage, in_ch = self._make_stage(block, in_ch, width, count, stride)
            stages.append(stage)
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(in_ch, num_classes)
        self._init_weights()

    @staticmethod
    def _make_stage(
        block: type[BasicBlock] | type[Bottleneck], in_ch: int, width: int, count: int, stride: int
    ) -> tuple[nn.Sequential, int]:
        out_ch = width * block.expansion
        downsample = None
        if stride != 1 or in_ch != out_ch:
            downsample = nn.Sequential(_conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))
        layers: list[nn.Module] = [block(in_ch, width, stride, downsample)]
        layers += [block(out_ch, width, 1, None) for _ in range(count - 1)]
        return nn.Sequential(*layers), out_ch

    def _init_weights(self) -> None:
        """Kaiming init, last BN of each block zeroed: what torchvision does with zero_init_residual."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def stages(self) -> list[tuple[str, nn.Module]]:
        """The network's top-level pieces in execution order (for summaries)."""
        return [
            ("stem", nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool)),
            ("layer1", self.layer1),
            ("layer2", self.layer2),
            ("layer3", self.layer3),
            ("layer4", self.layer4),
            ("avgpool", self.avgpool),
            ("fc", self.fc),
        ]

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_model(arch: Arch = DEFAULT_ARCH, num_classes: int = 1000, seed: int = DEFAULT_SEED) -> ResNet:
    """A randomly initialised model, reproducible from `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ResNet(arch, num_classes)
    return model.eval()


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """Tensors of a `.pth`/`.pt` (loaded with weights_only=True) or `.safetensors` checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: checkpoint file not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise UserInputError(f"{path}: reading .safetensors needs the 'safetensors' package") from exc
        try:
            return dict(load_file(str(path)))
        except Exception as exc:  # safetensors raises its own error types for malformed files
            raise CheckpointError(f"{path}: not a valid safetensors file ({exc})") from exc
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: refused to load: only plain tensors are accepted (weights_only=True): {first_line}"
        ) from exc
    return _unwrap_state_dict(loaded, path)


WRAPPER_PREFIXES = ("module.", "model.")


def _unwrap_state_dict(loaded: object, path: Path) -> dict[str, Tensor]:
    """Accept a bare state_dict or the common {'state_dict': ...}/{'model': ...} wrappers."""
    if isinstance(loaded, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            inner = loaded.get(key)
            if isinstance(inner, Mapping):
                loaded = inner
                break
    if not isinstance(loaded, Mapping) or not loaded:
        raise CheckpointError(f"{path}: no state_dict found (expected a mapping of parameter names to tensors)")
    state: dict[str, Tensor] = {}
    names = [str(name) for name in loaded]
    # DataParallel saves "module.conv1.weight", PyTorch Lightning "model.conv1.weight": one prefix on every key.
    prefix = next((p for p in WRAPPER_PREFIXES if names and all(n.startswith(p) for n in names)), "")
    for name, value in loaded.items():
        if not isinstance(value, Tensor):
            raise CheckpointError(f"{path}: entry '{name}' is a {type(value).__name__}, not a tensor")
        state[str(name).removeprefix(prefix)] = value
    return state


def checkpoint_num_classes(state: Mapping[str, Tensor]) -> int | None:
    weight = state.get("fc.weight")
    return int(weight.shape[0]) if weight is not None and weight.ndim == 2 else None


def non_finite(tensor: Tensor, dtype: torch.dtype | None = None) -> str | None:
    """How `tensor` (as `dtype`, e.g. the model's float32) fails to be finite; None when it is finite."""
    if not (tensor.is_floating_point() or tensor.is_complex()):
        return None
    values = tensor if dtype is None else tensor.to(dtype)
    finite = torch.isfinite(values)
    if bool(finite.all()):
        return None
    nans = int(torch.isnan(values).sum())
    return f"holds {nans} NaN and {int((~finite).sum()) - nans} infinite value(s) of {values.numel()}"


def first_non_finite(state: Mapping[str, Tensor]) -> str | None:
    """The first tensor of `state` with a NaN or an infinity, named and described; None when all are finite."""
    for name, tensor in state.items():
        problem = non_finite(tensor)
        if problem is not None:
            return f"tensor '{name}' {problem}"
    return None


def check_state_dict(model: nn.Module, state: Mapping[str, Tensor], source: Path | str = "checkpoint") -> None:
    """Refuse `state` unless it holds exactly the model's tensors, each of its shape, dense and finite.

    A NaN or an infinity (or a float64 value that float32 cannot hold) would load silently and make every
    output NaN; a tensor of another shape would fail inside torch with a message that names neither file.
    """
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise CheckpointError(f"{source}: missing key '{key}' (expected shape {tuple(tensor.shape)})")
        value, shape = state[key], tuple(tensor.shape)
        if not isinstance(value, Tensor):
            raise CheckpointError(f"{source}: entry '{key}' is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != shape:
            raise CheckpointError(f"{source}: key '{key}' has shape {tuple(value.shape)}, expected {shape}")
        if value.layout != torch.strided or value.is_complex():
            raise CheckpointError(f"{source}: key '{key}' is a {value.layout} {value.dtype} tensor, expected real")
        problem = non_finite(value, tensor.dtype)
        if problem is not None:
            raise CheckpointError(
                f"{source}: tensor '{key}' {problem}; a model with non-finite weights computes nothing meaningful"
            )
    extra = [key for key in state if key not in expected]
    if extra:
        raise CheckpointError(f"{source}: unexpected key '{extra[0]}' ({len(extra)} unexpected in all)")


def load_weights(model: ResNet, state: Mapping[str, Tensor], source: Path | str = "checkpoint") -> None:
    """Load `state` strictly; the first problem found is raised naming the key and the shapes."""
    found_classes = checkpoint_num_classes(state)
    if found_classes is not None and found_classes != model.num_classes:
        raise ClassCountMismatch(
            found_classes,
            f"{source}: checkpoint has {found_classes} classes (fc.weight {tuple(state['fc.weight'].shape)}), "
            f"model has {model.num_classes}; build the model with {found_classes} classes to use it"
        )
    check_state_dict(model, state, source)
    model.load_state_dict(dict(state), strict=True)


def torchvision_cache_checkpoint(arch: Arch) -> Path | None:
    """A torchvision checkpoint already in the local hub cache, if any; nothing is downloaded."""
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    matches = sorted(cache.glob(f"{Arch(arch).value}-*.pth")) if cache.is_dir() else []
    return matches[-1] if matches else None


def load_model(
    arch: Arch = DEFAULT_ARCH,
    weights: Path | None = None,
    num_classes: int | None = None,
    seed: int = DEFAULT_SEED,
    use_cache: bool = True,
) -> tuple[ResNet, str | None]:
    """The model plus the path of the weights it carries (None: random weights, and a warning).

    `num_classes` None means DEFAULT_NUM_CLASSES (ImageNet-1k); a checkpoint with another count is refused,
    naming the count.
    """
    if weights is None and use_cache:
        weights = torchvision_cache_checkpoint(arch)
    if weights is None:
        model = build_model(arch, num_classes or DEFAULT_NUM_CLASSES, seed)
        warnings.warn(
            f"no weights given: {Arch(arch).value} is randomly initialised (seed {seed}); "
            "its outputs are meaningless. Give a trained checkpoint for meaningful outputs.",
            RandomWeightsWarning,
            stacklevel=2,
        )
        return model, None
    state = read_state_dict(weights)
    classes = num_classes or DEFAULT_NUM_CLASSES
    model = build_model(arch, classes, seed)
    load_weights(model, state, weights)
    return model.eval(), str(weights)


class RandomWeightsWarning(UserWarning):
    """Raised as a warning when a model is built without trained weights."""

