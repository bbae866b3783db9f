"""The short profile `edgeres build` prints after writing an artifact: batch 1, a few calls, no layer pass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeres.profile.dispatch import profile_artifact
from edgeres.profile.options import ProfileOptions, RunLength
from edgeres.profile.results import ArtifactProfile


@dataclass(frozen=True)
class QuickProfile:
    """The short profile `edgeres build` prints after writing an artifact."""

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


def quick_profile(path: Path, iterations: int = 20) -> QuickProfile:
    """Batch 1, a few iterations, no per-layer pass: a first idea of speed right after a build."""
    options = ProfileOptions(batches=(1,), run_length=RunLength(iterations=iterations), warmup=3, layers=False)
    return QuickProfile(profile_artifact(Path(path), options))
