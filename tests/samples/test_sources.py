"""A sample source an API user writes (the SampleSource protocol) feeds calibration, the held-out set and a
whole build, as the built-in folder and CSV sources do; the held-out set refuses what does not fit in memory."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from edgeres.artifacts.build_summary import SUMMARY_NAME
from edgeres.artifacts.tensors import TensorSpec
from edgeres.errors import ResourceLimitError, UserInputError
from edgeres.flow.options import BuildOptions
from edgeres.flow.orchestrator import build
from edgeres.quantize.cache import StaleCacheError
from edgeres.quantize.histogram import CalibAlgo
from edgeres.samples.calibration import CalibrationSet
from edgeres.samples.encoding import encoder_for
from edgeres.samples.holdout import Holdout
from edgeres.samples.sources import Picture, SampleItem, SampleSource, Skipped, SourceKind, Unreadable
from tests.conftest import real_image
from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto

NAMES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "hubble_deep_field")


@dataclass(frozen=True)
class InMemoryPhotos:
    """Photographs a camera app already holds in memory; one name cannot be read."""

    broken: str = "camera"
    brighten: int = 0  # added to every pixel: other data under the same item names
    name: str = "in-memory photographs"
    kind: SourceKind = SourceKind.CUSTOM

    def items(self, skipped: list[Skipped]) -> list[SampleItem]:
        return [SampleItem(Path(name), label=str(index % 3)) for index, name in enumerate(NAMES)]

    def read(self, item: SampleItem) -> Picture:
        if item.path.name == self.broken:
            raise Unreadable("sensor dropout")
        photo = real_image(item.path.name)
        return Picture(np.clip(photo.astype(np.int16) + self.brighten, 0, 255).astype(np.uint8))

    def fingerprint(self, items: Sequence[SampleItem], header: str) -> str:
        digest = hashlib.sha256(header.encode())
        for item in items:
            if item.path.name != self.broken:
                digest.update(self.read(item).pixels.tobytes())
        return digest.hexdigest()


def test_a_user_source_keeps_the_protocol_and_calibrates() -> None:
    source = InMemoryPhotos()
    assert isinstance(source, SampleSource)
    encoder = encoder_for(TensorSpec("input", np.dtype(np.float32), (None, 3, 32, 32)))
    calibration = CalibrationSet(source, encoder, calib_size=8)
    batches = list(calibration.batches(4))
    assert [b.shape for b in batches] == [(4, 3, 32, 32), (4, 3, 32, 32)]
    summary = calibration.summary
    assert (summary.originals, summary.derived) == (5, 3)  # five readable, three flips/crops of them
    assert [s.reason for s in summary.skipped] == ["sensor dropout"]
    assert summary.source == "in-memory photographs" and summary.kind is SourceKind.CUSTOM


def test_a_user_source_feeds_a_whole_build(tmp_path: Path) -> None:
    model = save_with_sidecar(tiny_classifier_proto(3), tmp_path / "tiny.onnx", "fp32")
    source = InMemoryPhotos()
    options = BuildOptions(onnx=model, calib=source, calib_algo=CalibAlgo.MAX, calib_size=4, profile_iterations=0)
    result = build(options, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / SUMMARY_NAME).read_text())
    assert summary["options"]["calib"] == "in-memory photographs"
    assert summary["holdout"]["labelled"] is True  # the source's labels reach the held-out set
    assert result.fidelity and all(r.accuracy is not None for r in result.fidelity.values())


def test_held_out_samples_that_do_not_fit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import edgeres.errors

    monkeypatch.setattr(edgeres.errors, "available_memory_bytes", lambda: 300 * 2**20)
    source = InMemoryPhotos()
    holdout = Holdout(source, tuple(source.items([])[:4]), derived=8)
    big = encoder_for(TensorSpec("input", np.dtype(np.float32), (None, 3, 2048, 2048)))  # 48 MiB a sample
    with pytest.raises(ResourceLimitError, match="held-out samples"):
        holdout.load(big, batch_size=4)


def test_other_data_from_a_user_source_is_never_served_stale_ranges(tmp_path: Path) -> None:
    """The cache is keyed on the source's own fingerprint of its content, not on file names."""
    model = save_with_sidecar(tiny_classifier_proto(3), tmp_path / "tiny.onnx", "fp32")
    source = InMemoryPhotos()
    options = BuildOptions(onnx=model, calib=source, calib_algo=CalibAlgo.MAX, calib_size=4, profile_iterations=0)
    build(options, tmp_path / "out")
    again = build(options, tmp_path / "out")
    assert any(note.startswith("reused calibration cache") for note in again.notes)
    with pytest.raises(StaleCacheError, match="stale"):
        build(replace(options, calib=InMemoryPhotos(brighten=40)), tmp_path / "out")


def test_an_object_that_is_not_a_source_is_refused_by_name() -> None:
    encoder = encoder_for(TensorSpec("input", np.dtype(np.float32), (None, 3, 32, 32)))
    with pytest.raises(UserInputError, match=r"^list is not a sample source: it has no name, kind, items, read"):
        CalibrationSet([Path("a.jpg")], encoder, calib_size=2)  # type: ignore[arg-type]
