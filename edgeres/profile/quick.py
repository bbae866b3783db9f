"""The short CPU profile `edgeres build` prints after writing its models: batch 1, a few calls, no layer pass,
one line per model and the speed ratio of each to the first."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgeres.artifacts.kinds import ArtifactRole
from edgeres.frames.contract import InputContract
from edgeres.frames.yuv import rgb_to_yuv422, write_yuv
from edgeres.profile.dispatch import profile_artifact
from edgeres.profile.options import FrameClip, ProfileOptions
from edgeres.profile.results import ArtifactProfile
from edgeres.runtime.kinds import RuntimeKind
from edgeres.timing import RunLength

QUICK_WARMUP = 3
GREY = 128


@dataclass(frozen=True)
class QuickProfile:
    """The short profile of one model, as `edgeres build` prints it."""

    profile: ArtifactProfile

    def describe(self) -> str:
        first = self.profile.batches[0]
        memory = self.profile.memory
        text = (
            f"{Path(self.profile.path).name} on {self.profile.backend}: batch {first.batch} median "
            f"{first.sync.median_ms:.2f} ms, p99 {first.sync.p99_ms:.2f} ms ({first.sync_fps:.1f} frames/s "
            f"synchronous), {memory.artifact_bytes / 1e6:.1f} MB on disk"
        )
        return text + ("; unstable run, see `edgeres profile`" if first.unstable else "")


def one_frame_clip(path: Path, contract: InputContract) -> FrameClip:
    """Write a clip of one mid-grey frame in the contract's format: the profiler takes a frame model's size from
    a clip, and its batch timings run on synthetic input, so the pixels need not come from a photograph."""
    grey = np.full((contract.height, contract.width, 3), GREY, dtype=np.uint8)
    write_yuv(path, rgb_to_yuv422(grey, contract.layout, contract.colorspace, contract.color_range), contract.layout)
    return FrameClip(path, contract.frame_format, contract.colorspace, contract.color_range)


def quick_profile(
    path: Path, iterations: int = 20, contract: InputContract | None = None, runtime: RuntimeKind = RuntimeKind.AUTO
) -> QuickProfile:
    """Batch 1, `iterations` timed calls on `runtime`, no per-layer pass: a first idea of speed right after a build.

    A model that takes camera frames (`contract`) is given a one-frame clip, which also times it end to end."""
    options = ProfileOptions(batches=(1,), run_length=RunLength(iterations=iterations), warmup=QUICK_WARMUP,
                             layers=False, runtime=runtime)  # fmt: skip
    if contract is None:
        return QuickProfile(profile_artifact(Path(path), options))
    with tempfile.TemporaryDirectory() as folder:
        clip = one_frame_clip(Path(folder) / "frame.yuv", contract)
        return QuickProfile(profile_artifact(Path(path), replace(options, clip=clip)))


@dataclass(frozen=True)
class QuickProfiles:
    """The build's short profile: the lines it prints, and each model's batch-1 call times (for the report)."""

    lines: tuple[str, ...] = ()
    backend: str = ""  # the first model's
    samples_ms: Mapping[ArtifactRole, tuple[float, ...]] = field(default_factory=dict)
    backends: Mapping[ArtifactRole, str] = field(default_factory=dict)  # each model's

    def as_dict(self) -> dict[str, object]:
        """The build summary's quick_profile section."""
        samples = {role.value: list(times) for role, times in self.samples_ms.items()}
        backends = {role.value: backend for role, backend in self.backends.items()}
        return {"backend": self.backend, "batch": 1, "samples_ms": samples, "backends": backends}


def quick_profiles(
    artifacts: Mapping[ArtifactRole, Path],
    roles: Sequence[ArtifactRole],
    iterations: int,
    contract: InputContract | None,
    runtimes: Mapping[ArtifactRole, RuntimeKind] | None = None,
) -> QuickProfiles:
    """One line per model (on its runtime in `runtimes`, else by its kind) and the speed ratio of each later one
    to the first (FP32)."""
    chosen = runtimes or {}
    profiles = {role: quick_profile(artifacts[role], iterations, contract, chosen.get(role, RuntimeKind.AUTO))
                for role in roles}  # fmt: skip
    lines = [f"{role.value}: {p.describe()}" for role, p in profiles.items()]
    first = roles[0]
    base = profiles[first].profile.batches[0].sync.median_ms
    for role in roles[1:]:
        median = profiles[role].profile.batches[0].sync.median_ms
        lines.append(
            f"{role.value} vs {first.value}: {base / median:.2f}x the speed at batch 1 ({iterations} calls, CPU)"
        )
    samples = {role: p.profile.batches[0].samples_ms for role, p in profiles.items()}
    backends = {role: p.profile.backend for role, p in profiles.items()}
    return QuickProfiles(tuple(lines), profiles[first].profile.backend, samples, backends)
