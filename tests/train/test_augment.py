"""Validation samples are exactly what build feeds its model; training samples are augmented before that."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeres.frames.contract import InputContract
from edgeres.frames.images import default_calibration_dir, read_rgb
from edgeres.frames.yuv import YuvLayout
from edgeres.frontend.host import reference_input
from edgeres.samples.encoding import encoder_for
from edgeres.train.augment import AugmentBounds, SampleTransform, augment, network_encoder
from edgeres.train.dataset import Sample

PHOTO = default_calibration_dir() / "chelsea.jpg"


def test_rgb_validation_sample_is_builds_encoding() -> None:
    rgb = read_rgb(PHOTO)
    encoder = network_encoder(64, None)
    expected = encoder_for(encoder.model).from_rgb(rgb)
    got = SampleTransform(64, None, seed=0, train=False)(Sample(Path(PHOTO), 0), epoch=0, index=0)
    assert got.shape == (3, 64, 64) and np.array_equal(got, expected)


def test_camera_validation_sample_is_the_frame_through_the_host_front_end() -> None:
    contract = InputContract(YuvLayout.UYVY, 160, 120, size=64)
    frame = network_encoder(64, contract).from_rgb(read_rgb(PHOTO))
    assert frame.dtype == np.uint8 and frame.shape == contract.frame_shape
    got = SampleTransform(64, contract, seed=0, train=False)(Sample(Path(PHOTO), 0), epoch=0, index=0)
    assert np.array_equal(got, reference_input(frame[None], contract)[0])


def test_training_samples_are_augmented_reproducibly_per_draw() -> None:
    transform = SampleTransform(64, None, seed=0, train=True)
    sample = Sample(Path(PHOTO), 0)
    first = transform(sample, epoch=1, index=4)
    assert np.array_equal(first, transform(sample, epoch=1, index=4))
    assert not np.array_equal(first, transform(sample, epoch=2, index=4))
    assert not np.array_equal(first, SampleTransform(64, None, 0, train=False)(sample, 1, 4))


def test_augmentation_stays_within_its_bounds() -> None:
    rgb = read_rgb(PHOTO)
    bounds = AugmentBounds(scale=(0.5, 0.5), ratio=(1.0, 1.0), brightness=0.0, contrast=0.0, saturation=0.0)
    out = augment(rgb, np.random.default_rng(0), bounds)
    area = out.shape[0] * out.shape[1] / (rgb.shape[0] * rgb.shape[1])
    assert out.dtype == np.uint8 and abs(area - 0.5) < 0.02 and abs(out.shape[0] - out.shape[1]) <= 1
