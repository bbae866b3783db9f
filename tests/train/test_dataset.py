"""Listing, read-checking and splitting training data; hostile inputs generated here."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeres.errors import UserInputError
from edgeres.train.dataset import load_dataset, stratified_split


def write_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        path = folder / f"{index:02d}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))
        paths.append(path)
    return paths


def test_class_names_are_the_sorted_folder_names(tmp_path: Path) -> None:
    for name, count in (("mug", 5), ("cup", 6), ("bowl", 7)):
        write_images(tmp_path / name, count)
    data = load_dataset(tmp_path, min_per_class=5)
    assert data.classes == ("bowl", "cup", "mug") and data.counts() == [7, 6, 5]


def test_unreadable_and_truncated_images_are_skipped_and_counted(tmp_path: Path) -> None:
    write_images(tmp_path / "a", 5)
    paths = write_images(tmp_path / "b", 7)
    paths[0].write_bytes(b"not an image at all")
    paths[1].write_bytes(paths[2].read_bytes()[:-40])  # a PNG cut short: no IEND chunk
    data = load_dataset(tmp_path, min_per_class=5)
    assert data.counts() == [5, 5]
    assert sorted(s.path.name for s in data.skipped) == ["00.png", "01.png"]
    assert "truncated PNG" in {s.path.name: s.reason for s in data.skipped}["01.png"]
    assert "2 unreadable file(s) skipped" in data.describe()


def test_a_class_with_too_few_images_is_an_error_naming_it(tmp_path: Path) -> None:
    write_images(tmp_path / "plenty", 6)
    write_images(tmp_path / "rare_teapot", 2)
    with pytest.raises(UserInputError, match=r"class 'rare_teapot' has 2 readable image\(s\); at least 5"):
        load_dataset(tmp_path, min_per_class=5)


def test_unreadable_images_count_against_the_class_minimum(tmp_path: Path) -> None:
    write_images(tmp_path / "a", 5)
    for path in write_images(tmp_path / "b", 5)[:2]:
        path.write_bytes(b"\x00" * 10)
    with pytest.raises(UserInputError, match="class 'b' has 3 readable"):
        load_dataset(tmp_path, min_per_class=5)


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="0 class folder"):
        load_dataset(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(UserInputError, match="no images found"):
        load_dataset(tmp_path)


def test_missing_data_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="nowhere: training data not found"):
        load_dataset(tmp_path / "nowhere")


def test_csv_with_class_names_and_numbers(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "img", 4)
    (tmp_path / "names.txt").write_text("cat\ndog\n")
    (tmp_path / "data.csv").write_text(f"path,label\nimg/{paths[0].name},cat\nimg/{paths[1].name},1\n"
                                       f"{paths[2]},dog\nimg/{paths[3].name},0\n")  # fmt: skip
    data = load_dataset(tmp_path / "data.csv", tmp_path / "names.txt", min_per_class=2)
    assert data.classes == ("cat", "dog") and [s.label for s in data.samples] == [0, 1, 1, 0]


def test_csv_with_an_unknown_label_names_the_line(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "img", 2)
    (tmp_path / "names.txt").write_text("cat\ndog\n")
    (tmp_path / "data.csv").write_text(f"{paths[0]},cat\n{paths[1]},hamster\n")
    with pytest.raises(UserInputError, match=r"data.csv: line 2: label 'hamster' is not one of the 2 class names"):
        load_dataset(tmp_path / "data.csv", tmp_path / "names.txt")


def test_csv_without_its_class_name_file(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a.png,cat\n")
    with pytest.raises(UserInputError, match="needs its class-name file"):
        load_dataset(tmp_path / "data.csv")
    with pytest.raises(UserInputError, match=r"names\.txt: class-name file not found"):
        load_dataset(tmp_path / "data.csv", tmp_path / "names.txt")


def test_split_is_stratified_seeded_and_disjoint(tmp_path: Path) -> None:
    for name, count in (("a", 10), ("b", 20)):
        write_images(tmp_path / name, count)
    samples = load_dataset(tmp_path).samples
    split = stratified_split(samples, 0.2, seed=3)
    assert sorted(s.label for s in split.val) == [0, 0] + [1] * 4
    assert not {s.path for s in split.val} & {s.path for s in split.train}
    assert len(split.train) + len(split.val) == 30
    assert stratified_split(list(reversed(samples)), 0.2, seed=3) == split
    assert stratified_split(samples, 0.2, seed=4).val != split.val


def test_split_keeps_at_least_one_image_each_side(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_images(tmp_path / name, 2)
    split = stratified_split(load_dataset(tmp_path).samples, 0.9, seed=0)
    assert len(split.val) == 2 and len(split.train) == 2
