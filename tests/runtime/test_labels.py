"""Class names: the shipped ImageNet list is in class-index order; custom files must match the model."""

from pathlib import Path

import pytest
import torch

from edgeres.artifacts.class_names import (
    IMAGENET_CLASS_COUNT,
    class_names_for,
    imagenet_class_names,
    parse_class_names,
    read_class_names,
)
from edgeres.errors import UserInputError
from edgeres.frames.images import imagenet_batch
from tests.fixtures.efficientnet_lite0 import load_efficientnet_lite0


def test_imagenet_list_has_the_standard_names_at_known_indices():
    names = imagenet_class_names()
    assert len(names) == IMAGENET_CLASS_COUNT
    # Class indices of the ILSVRC-2012 devkit order (synsets sorted by WordNet id).
    assert names[0] == "tench"
    assert names[1] == "goldfish"
    assert names[207] == "golden retriever"
    assert names[281] == "tabby"
    assert names[967] == "espresso"
    assert names[999] == "toilet tissue"


def test_a_trained_network_prints_the_right_names_for_real_photographs(real_images):
    """The strongest check of the order: real ImageNet weights name real photographs through this list."""
    names = imagenet_class_names()
    model = load_efficientnet_lite0()
    with torch.inference_mode():
        logits = model(torch.from_numpy(imagenet_batch([real_images["chelsea"], real_images["coffee"]])))
    top5 = [[names[int(i)] for i in row] for row in logits.topk(5, dim=1).indices]
    assert {"tabby", "tiger cat", "Egyptian cat"} & set(top5[0][:2]), top5[0]
    assert top5[1][0] == "espresso", top5[1]


def test_custom_file_for_an_n_class_model(tmp_path: Path):
    path = tmp_path / "parts.txt"
    path.write_text("bolt\nnut\nwasher\n\n\n", encoding="utf-8")
    names = class_names_for(3, path)
    assert names.names == ("bolt", "nut", "washer")
    assert names.source == str(path)


def test_count_mismatch_names_the_file_and_both_counts(tmp_path: Path):
    path = tmp_path / "parts.txt"
    path.write_text("bolt\nnut\n", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"parts\.txt: 2 class names for a model with 3 classes"):
        class_names_for(3, path)


def test_a_1000_line_custom_file_replaces_the_imagenet_names(tmp_path: Path):
    path = tmp_path / "mine.txt"
    path.write_text("\n".join(f"item {i}" for i in range(1000)), encoding="utf-8")
    assert class_names_for(1000, path)[999] == "item 999"


def test_non_imagenet_count_without_a_file_is_refused():
    with pytest.raises(UserInputError, match="51 classes"):
        class_names_for(51)


def test_blank_line_inside_the_list_is_refused():
    with pytest.raises(UserInputError, match="line 2 is blank"):
        parse_class_names("cat\n\ndog\n", "animals.txt")


def test_semicolon_in_a_name_is_refused_because_deepstream_splits_on_it():
    with pytest.raises(UserInputError, match=r"line 1 .*';'"):
        parse_class_names("cat;dog\n", "animals.txt")


def test_missing_and_non_utf8_files_are_user_errors(tmp_path: Path):
    with pytest.raises(UserInputError, match="not found"):
        read_class_names(tmp_path / "absent.txt")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserInputError, match="not UTF-8"):
        read_class_names(latin)


def test_byte_order_mark_and_windows_line_ends_are_accepted(tmp_path: Path):
    path = tmp_path / "win.txt"
    path.write_bytes("\ufeffcat\r\ndog\r\n".encode())
    assert read_class_names(path).names == ("cat", "dog")
