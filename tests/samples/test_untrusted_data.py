"""Calibration and evaluation data are checked, not trusted: truncated and tiny images, bad CSV labels,
edited calibration caches, gates that cannot be met or failed (NaN, infinity)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from edgeres.errors import UserInputError
from edgeres.frames.images import read_rgb
from edgeres.quantize.cache import CacheKey, CalibCache, cache_digest, read_cache, write_cache
from edgeres.quantize.gate import FidelityGate
from edgeres.samples.calibration import CalibrationSet
from edgeres.samples.encoding import encoder_for
from tests.samples.test_calibration import RGB_MODEL, write_photos


def encoded(suffix: str, width: int = 64, height: int = 48) -> bytes:
    picture = cv2.resize(cv2.cvtColor(skdata.coffee(), cv2.COLOR_RGB2BGR), (width, height))
    ok, data = cv2.imencode(suffix, picture)
    assert ok
    return data.tobytes()


# --- images ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "keep", "reason"),
    [
        (".jpg", 0.5, "truncated JPEG"),
        (".jpg", 0.95, "truncated JPEG"),
        (".png", 0.5, "truncated PNG"),
        (".png", 0.99, "truncated PNG"),
    ],
)
def test_truncated_image_is_refused_not_decoded_grey(tmp_path: Path, suffix: str, keep: float, reason: str):
    data = encoded(suffix)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(UserInputError, match=reason):
        read_rgb(path)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_whole_image_files_still_read(tmp_path: Path, suffix: str):
    path = tmp_path / f"whole{suffix}"
    path.write_bytes(encoded(suffix) + (b"\0" * 16 if suffix == ".jpg" else b""))  # padding after EOI is fine
    assert read_rgb(path).shape == (48, 64, 3)


@pytest.mark.parametrize(("width", "height"), [(1, 1), (15, 64), (64, 8)])
def test_image_too_small_to_mean_anything_is_refused(tmp_path: Path, width: int, height: int):
    path = tmp_path / "tiny.png"
    path.write_bytes(encoded(".png", width, height))
    with pytest.raises(UserInputError, match=f"{width}x{height} image is too small"):
        read_rgb(path)


def test_truncated_and_tiny_images_are_skipped_and_counted_in_calibration(tmp_path: Path):
    write_photos(tmp_path, nested=False)
    whole = encoded(".jpg")
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "dot.png").write_bytes(encoded(".png", 1, 1))
    calib = CalibrationSet(tmp_path, encoder_for(RGB_MODEL), calib_size=6)
    list(calib.batches(2))
    reasons = {s.path.name: s.reason for s in calib.summary.skipped}
    assert "truncated JPEG" in reasons["cut.jpg"] and "too small" in reasons["dot.png"]
    assert calib.summary.originals == 4


# --- CSV labels --------------------------------------------------------------------------------


def labelled_csv(folder: Path, labels: list[str]) -> Path:
    paths = write_photos(folder, nested=False)
    rows = ["path,label"] + [f"{p.name},{label}" if label else p.name for p, label in zip(paths, labels, strict=False)]
    csv = folder / "labels.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        (["0", "1", "cat", "2"], "line 4: label 'cat' is not a class number"),
        (["0", "-1", "1", "2"], "line 3: label '-1' is not a class number"),
        (["0", "1", "2.5", "2"], "line 4: label '2.5' is not a class number"),
        (["0", "1", "", "2"], "line 4: some rows have a label and others not"),
    ],
)
def test_bad_csv_labels_are_errors_naming_the_row(tmp_path: Path, labels: list[str], reason: str):
    csv = labelled_csv(tmp_path, labels)
    with pytest.raises(UserInputError, match=reason):
        CalibrationSet(csv, encoder_for(RGB_MODEL), calib_size=2)


def test_csv_label_outside_the_models_classes_is_an_error(tmp_path: Path):
    csv = labelled_csv(tmp_path, ["0", "1", "5", "2"])
    with pytest.raises(UserInputError, match=r"label 5 of coffee\.png is outside 0\.\.4"):
        CalibrationSet(csv, encoder_for(RGB_MODEL), calib_size=2, num_classes=5)
    assert CalibrationSet(csv, encoder_for(RGB_MODEL), calib_size=2, num_classes=6).kind.value == "csv"


# --- calibration cache -------------------------------------------------------------------------

KEY = CacheKey("a" * 64, "b" * 64, "mse", "{}", "default")


def written_cache(tmp_path: Path) -> Path:
    path = tmp_path / "calibration_cache.json"
    write_cache(path, CalibCache(KEY, {"conv": 2.5, "relu": np.float32(1.25)}, 8))  # type: ignore[dict-item]
    assert read_cache(path).ranges == {"conv": 2.5, "relu": 1.25}
    return path


def edit(path: Path, change, redigest: bool = False) -> None:
    payload = json.loads(path.read_text())
    change(payload)
    if redigest:  # a careful forger: the sanity checks must still catch the ranges
        ranges = {name: entry["amax"] for name, entry in payload["tensors"].items()}
        payload["digest"] = cache_digest(payload["key"], ranges, payload["samples"])
    path.write_text(json.dumps(payload))


def times_1000(payload: dict) -> None:
    for entry in payload["tensors"].values():
        entry["amax"] *= 1000
        entry["scale"] *= 1000


def set_conv(amax: float, scale: float | None = None):
    def change(payload: dict) -> None:
        payload["tensors"]["conv"] = {"amax": amax, "scale": amax / 127 if scale is None else scale}

    return change


@pytest.mark.parametrize(
    ("change", "redigest", "reason"),
    [
        (times_1000, False, "do not match its digest"),
        (lambda p: p.pop("digest"), False, "do not match its digest"),
        (lambda p: p.update(samples=9), False, "do not match its digest"),
        (set_conv(math.nan), True, "range nan"),
        (set_conv(math.inf), True, "range inf"),
        (set_conv(-2.5), True, "range -2.5"),
        (set_conv(0.0), True, "range 0.0"),
        (set_conv(2.5, scale=1.0), True, "scale 1.0 is not its amax"),
    ],
)
def test_edited_calibration_cache_is_refused(tmp_path: Path, change, redigest: bool, reason: str):
    path = written_cache(tmp_path)
    edit(path, change, redigest)
    with pytest.raises(UserInputError, match=reason):
        read_cache(path)


# --- the gate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sqnr", "agreement", "reason"),
    [
        (math.nan, None, "SQNR nan dB: must be a finite number"),
        (math.inf, None, "SQNR inf dB: must be a finite number"),
        (-math.inf, None, "SQNR -inf dB: must be a finite number"),
        (None, math.nan, "agreement nan: must be a fraction"),
        (None, math.inf, "agreement inf: must be a fraction"),
    ],
)
def test_gate_that_no_model_can_meet_or_fail_is_refused(sqnr: float | None, agreement: float | None, reason: str):
    with pytest.raises(UserInputError, match=reason):
        FidelityGate(min_sqnr_db=sqnr, min_agreement=agreement)
