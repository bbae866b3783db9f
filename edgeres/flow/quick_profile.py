"""The short CPU profile `edgeres build` prints: FP32 vs the INT8/FP16 onnxruntime model at batch 1."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from edgeres.artifacts.kinds import ArtifactRole
from edgeres.frames.contract import InputContract
from edgeres.frames.images import default_calibration_dir, list_images, read_rgb
from edgeres.frames.yuv import rgb_to_yuv422, write_yuv
from edgeres.profile.dispatch import profile_artifact
from edgeres.profile.options import FrameClip, ProfileOptions, RunLength
from edgeres.profile.quick import QuickProfile, quick_profile
from edgeres.quantize.encoding import cover_resize


def quick_profile_of(path: Path, iterations: int, contract: InputContract | None) -> QuickProfile:
    """profile.quick_profile, or for a frame-input model the same short run given a one-frame clip (the
    profiler takes a frame model's size from a clip)."""
    if contract is None:
        return quick_profile(path, iterations)
    c = contract
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "frame.yuv"
        picture = cover_resize(read_rgb(list_images(default_calibration_dir())[0]), c.width, c.height)
        write_yuv(clip, rgb_to_yuv422(picture, c.layout, c.colorspace, c.color_range), c.layout)
        frames = FrameClip(clip, c.frame_format, c.colorspace, c.color_range)
        options = ProfileOptions(run_length=RunLength(iterations=iterations), warmup=3, layers=False, clip=frames)
        return QuickProfile(profile_artifact(path, options))


def quick_profiles(
    artifacts: Mapping[ArtifactRole, Path],
    roles: Sequence[ArtifactRole],
    iterations: int,
    contract: InputContract | None,
) -> tuple[str, ...]:
    """One line per model (batch 1, `iterations` timed calls) and the speed ratio to the first (FP32)."""
    profiles = {role: quick_profile_of(artifacts[role], iterations, contract) for role in roles}
    lines = [f"{role.value}: {p.describe()}" for role, p in profiles.items()]
    first = roles[0]
    base = profiles[first].profile.batches[0].sync.median_ms
    for role in roles[1:]:
        median = profiles[role].profile.batches[0].sync.median_ms
        lines.append(
            f"{role.value} vs {first.value}: {base / median:.2f}x the speed at batch 1 ({iterations} calls, CPU)"
        )
    return tuple(lines)
