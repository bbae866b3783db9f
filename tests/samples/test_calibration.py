"""Calibration data: readers, seeded sampling, skipping unreadable files, derived samples, encoding."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from edgeres.artifacts.tensors import TensorSpec
from edgeres.errors import UserInputError
from edgeres.frames.contract import FrameFormat, InputContract
from edgeres.frames.images import cover_resize, read_rgb
from edgeres.frames.yuv import YuvLayout, rgb_to_yuv422, write_yuv
from edgeres.samples.calibration import CalibrationSet
from edgeres.samples.encoding import encoder_for
from edgeres.samples.sources import SourceKind


def model_input_spec(name: str, dtype: str, shape: tuple[int | None, ...]) -> TensorSpec:
    return TensorSpec(name, np.dtype(dtype), shape)


RGB_MODEL = model_input_spec("input", "float32", (None, 3, 32, 32))
PHOTOS = {"astronaut": skdata.astronaut, "chelsea": skdata.chelsea, "coffee": skdata.coffee, "rocket": skdata.rocket}


def small(rgb: np.ndarray, width: int = 96) -> np.ndarray:
    height = round(rgb.shape[0] * width / rgb.shape[1]) // 2 * 2
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def write_photos(folder: Path, nested: bool = True) -> list[Path]:
    """The four scikit-image photographs as PNGs, half of them in a sub-folder."""
    paths = []
    for index, (name, load) in enumerate(PHOTOS.items()):
        path = folder / ("sub" if nested and index % 2 else "") / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(small(load()), cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def drain(calib: CalibrationSet, batch: int = 4) -> list[np.ndarray]:
    return list(calib.batches(batch))


def test_image_folder_is_read_recursively_and_batched(tmp_path: Path) -> None:
    write_photos(tmp_path)
    calib = CalibrationSet(tmp_path, encoder_for(RGB_MODEL), calib_size=3)
    batches = drain(calib, batch=2)
    assert [b.shape for b in batches] == [(2, 3, 32, 32), (1, 3, 32, 32)]
    assert batches[0].dtype == np.float32
    assert calib.summary.kind is SourceKind.IMAGE_FOLDER
    assert (calib.summary.candidates, calib.summary.originals, calib.summary.derived) == (4, 3, 0)


def test_corrupt_files_are_skipped_and_counted(tmp_path: Path) -> None:
    write_photos(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (tmp_path / "empty.png").write_bytes(b"")
    calib = CalibrationSet(tmp_path, encoder_for(RGB_MODEL), calib_size=6)
    samples = sum(len(b) for b in drain(calib))
    summary = calib.summary
    assert samples == 6 and summary.originals == 4 and summary.derived == 2
    assert sorted(s.path.name for s in summary.skipped) == ["broken.jpg", "empty.png"]
    assert "2 unreadable file(s) skipped" in summary.describe() and "flips/crops of those" in summary.describe()
    drain(calib)  # a second pass recounts rather than accumulates
    assert len(calib.summary.skipped) == 2


def test_empty_folder_and_all_corrupt_folder_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="no calibration images found"):
        CalibrationSet(tmp_path, encoder_for(RGB_MODEL), calib_size=4)
    (tmp_path / "a.jpg").write_bytes(b"junk")
    (tmp_path / "b.png").write_bytes(b"junk")
    calib = CalibrationSet(tmp_path, encoder_for(RGB_MODEL), calib_size=4)
    with pytest.raises(UserInputError, match="none of the 2 file"):
        drain(calib)
    with pytest.raises(UserInputError, match=r"neither a folder nor a \.csv"):
        CalibrationSet(tmp_path / "missing", encoder_for(RGB_MODEL), calib_size=4)
    with pytest.raises(UserInputError, match="at least 1"):
        CalibrationSet(tmp_path, encoder_for(RGB_MODEL), calib_size=0)


def test_seeded_shuffle_is_reproducible_and_seed_dependent(tmp_path: Path) -> None:
    write_photos(tmp_path)
    orders = {
        seed: [p.path.name for p in CalibrationSet(tmp_path, encoder_for(RGB_MODEL), 4, seed).pool]
        for seed in range(6)
    }
    again = [p.path.name for p in CalibrationSet(tmp_path, encoder_for(RGB_MODEL), 4, 3).pool]
    assert orders[3] == again
    assert len({tuple(order) for order in orders.values()}) > 1
    first = np.concatenate(drain(CalibrationSet(tmp_path, encoder_for(RGB_MODEL), 2, seed=3)))
    second = np.concatenate(drain(CalibrationSet(tmp_path, encoder_for(RGB_MODEL), 2, seed=3)))
    np.testing.assert_array_equal(first, second)


def test_derived_samples_differ_from_the_originals(tmp_path: Path) -> None:
    write_photos(tmp_path)
    samples = np.concatenate(drain(CalibrationSet(tmp_path, encoder_for(RGB_MODEL), calib_size=12)))
    flat = samples.reshape(len(samples), -1)
    distinct = {flat[i].tobytes() for i in range(len(flat))}
    assert len(distinct) == 12  # 4 originals, 4 mirrors, 4 crops: all different inputs


def test_fixed_batch_model_gets_whole_batches(tmp_path: Path) -> None:
    write_photos(tmp_path)
    fixed = model_input_spec("input", "float32", (4, 3, 32, 32))
    calib = CalibrationSet(tmp_path, encoder_for(fixed), calib_size=5)
    assert [len(b) for b in drain(calib, batch=2)] == [4, 4]


def test_csv_reader_with_header_labels_bad_rows_and_missing_files(tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "imgs", nested=False)
    rows = ["path,label", *(f"imgs/{p.name},{i}" for i, p in enumerate(paths)), "imgs/absent.png,7", "a,b,c", ""]
    (tmp_path / "set.csv").write_text("\n".join(rows) + "\n")
    calib = CalibrationSet(tmp_path / "set.csv", encoder_for(RGB_MODEL), calib_size=5)
    assert calib.kind is SourceKind.CSV
    assert sorted(item.label or "" for item in calib.pool) == ["0", "1", "2", "3", "7"]
    assert sum(len(b) for b in drain(calib)) == 5
    reasons = [s.reason for s in calib.summary.skipped]
    assert any("line 7" in r for r in reasons) and any("not found" in r for r in reasons)
    assert calib.summary.originals == 4 and calib.summary.derived == 1


def test_csv_of_only_header_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "set.csv").write_text("path,label\n")
    with pytest.raises(UserInputError, match="no calibration rows"):
        CalibrationSet(tmp_path / "set.csv", encoder_for(RGB_MODEL), calib_size=2)


def yuv_folder(tmp_path: Path, layout: YuvLayout, width: int = 64, height: int = 48) -> np.ndarray:
    """Two files of camera frames made from real photographs, plus one file of the wrong size."""
    pictures = np.stack([cover_resize(load(), width, height) for load in PHOTOS.values()])
    frames = rgb_to_yuv422(pictures, layout)
    write_yuv(tmp_path / "cam" / "a.yuv", frames[:3], layout)
    write_yuv(tmp_path / "b.yuv", frames[3:], layout)
    (tmp_path / "torn.yuv").write_bytes(bytes(1000))
    return frames


@pytest.mark.parametrize("layout", list(YuvLayout))
def test_yuv_folder_frames_pass_through_untouched_to_a_frame_model(tmp_path: Path, layout: YuvLayout) -> None:
    frames = yuv_folder(tmp_path, layout)
    rows, cols = frames.shape[1:]
    encoder = encoder_for(model_input_spec("frames", "uint8", (None, rows, cols)), InputContract(layout, 64, 48))
    calib = CalibrationSet(tmp_path, encoder, calib_size=4, raw=FrameFormat(layout, 64, 48))
    got = np.concatenate(drain(calib))
    assert calib.summary.kind is SourceKind.YUV_FOLDER and calib.summary.candidates == 4
    assert [s.path.name for s in calib.summary.skipped] == ["torn.yuv"]
    assert sorted(g.tobytes() for g in got) == sorted(f.tobytes() for f in frames)


def test_yuv_frames_feed_an_rgb_model_decoded(tmp_path: Path) -> None:
    yuv_folder(tmp_path, YuvLayout.NV16)
    calib = CalibrationSet(tmp_path, encoder_for(RGB_MODEL), calib_size=6, raw=FrameFormat(YuvLayout.NV16, 64, 48))
    samples = np.concatenate(drain(calib))
    assert samples.shape == (6, 3, 32, 32) and calib.summary.derived == 2
    assert -2.2 < samples.min() < 0 < samples.max() < 2.7  # ImageNet-normalised range


def test_yuv_folder_without_format_is_refused(tmp_path: Path) -> None:
    yuv_folder(tmp_path, YuvLayout.YUYV)
    with pytest.raises(UserInputError, match="layout and size"):
        CalibrationSet(tmp_path, encoder_for(RGB_MODEL), calib_size=2)


def test_photos_become_the_camera_encoding_for_a_frame_model(tmp_path: Path) -> None:
    paths = write_photos(tmp_path, nested=False)
    layout = YuvLayout.UYVY
    encoder = encoder_for(model_input_spec("frames", "uint8", (None, 1, 40, 2 * 56)), InputContract(layout, 56, 40))
    assert encoder.frame_size == (56, 40)
    calib = CalibrationSet(tmp_path, encoder, calib_size=4)
    got = {g.tobytes() for g in np.concatenate(drain(calib))}
    expected = {rgb_to_yuv422(cover_resize(read_rgb(p), 56, 40), layout)[None].tobytes() for p in paths}
    assert got == expected


def test_frame_model_without_camera_encoding_is_refused() -> None:
    with pytest.raises(UserInputError, match="YUV layout"):
        encoder_for(model_input_spec("frames", "uint8", (None, 48, 128)))


def test_fingerprint_follows_file_contents_and_options(tmp_path: Path) -> None:
    paths = write_photos(tmp_path)
    base = CalibrationSet(tmp_path, encoder_for(RGB_MODEL), 4).fingerprint()
    assert CalibrationSet(tmp_path, encoder_for(RGB_MODEL), 4).fingerprint() == base
    assert CalibrationSet(tmp_path, encoder_for(RGB_MODEL), 5).fingerprint() != base
    assert CalibrationSet(tmp_path, encoder_for(RGB_MODEL), 4, seed=9).fingerprint() != base
    cv2.imwrite(str(paths[0]), cv2.cvtColor(small(skdata.coffee(), 80), cv2.COLOR_RGB2BGR))
    assert CalibrationSet(tmp_path, encoder_for(RGB_MODEL), 4).fingerprint() != base


def test_default_source_is_the_shipped_photographs() -> None:
    calib = CalibrationSet(None, encoder_for(RGB_MODEL), calib_size=16)
    assert sum(len(b) for b in drain(calib, 8)) == 16
    assert calib.summary.originals == calib.summary.candidates == 11 and calib.summary.derived == 5


def test_contract_size_must_match_a_fixed_frame_model() -> None:
    model = model_input_spec("frames", "uint8", (None, 48, 128))  # a 64x48 YUYV frame
    assert encoder_for(model, InputContract(YuvLayout.YUYV, 64, 48)).frame_size == (64, 48)
    with pytest.raises(UserInputError, match="contract says 96x48"):
        encoder_for(model, InputContract(YuvLayout.YUYV, 96, 48))


@pytest.mark.parametrize("suffix", [".yuyv", ".raw", ".YUY2"])
def test_raw_frames_named_as_capture_tools_name_them_are_read(tmp_path: Path, suffix: str) -> None:
    frames = yuv_folder(tmp_path, YuvLayout.YUYV)
    for path in list(tmp_path.rglob("*.yuv")):
        path.rename(path.with_suffix(suffix))
    calib = CalibrationSet(tmp_path, encoder_for(RGB_MODEL), calib_size=4, raw=FrameFormat(YuvLayout.YUYV, 64, 48))
    assert calib.summary.candidates == len(frames)
    with pytest.raises(UserInputError, match=r"holds raw frames; give their layout and size as FORMAT:WxH"):
        CalibrationSet(tmp_path, encoder_for(RGB_MODEL), calib_size=2)
