"""The gallery draws a held-out sample back from what the model was fed."""

from __future__ import annotations

import numpy as np

from edgeres.frames.contract import InputContract, InputSpec
from edgeres.frames.normalization import ChannelOrder, PixelNormalization
from edgeres.frames.yuv import YuvLayout, rgb_to_yuv422, yuv422_to_rgb
from edgeres.report.gallery import sample_picture


def test_an_rgb_sample_is_drawn_through_the_inverse_of_its_normalisation() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    for normalization in (PixelNormalization(), PixelNormalization((0.5, 0.4, 0.3), (0.2, 0.3, 0.1), ChannelOrder.BGR)):
        spec = InputSpec.rgb("input", 8, normalization)
        assert np.array_equal(sample_picture(normalization.apply(rgb), spec), rgb)
        assert np.array_equal(sample_picture(normalization.apply(rgb).transpose(1, 2, 0), spec), rgb)  # NHWC


def test_a_camera_sample_is_drawn_by_decoding_its_frame() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    contract = InputContract(YuvLayout.UYVY, 64, 48)
    frame = rgb_to_yuv422(rgb, contract.layout, contract.colorspace, contract.color_range)
    picture = sample_picture(frame, InputSpec.frames(contract))
    assert np.array_equal(picture, yuv422_to_rgb(frame, contract.layout, contract.colorspace, contract.color_range))


def test_the_sqnr_profile_shades_exactly_the_layers_kept_in_float() -> None:
    """'conv1' is the stem, not every block's conv1; a block path takes the layers inside it."""
    from edgeres.quantize.fidelity import LayerSqnr
    from edgeres.report.figures import kept_positions

    names = ["/conv1/Conv", "/layer1/layer1.0/conv1/Conv", "/layer1/layer1.0/conv2/Conv", "/layer2/layer2.0/conv1/Conv"]
    layers = [LayerSqnr(f"{name}_output_0", 30.0) for name in names]
    assert kept_positions(layers, ["conv1"]) == [0]
    assert kept_positions(layers, ["layer1.0"]) == [1, 2]
    assert kept_positions(layers, ["/layer2/layer2.0/conv1/Conv"]) == [3]
    assert kept_positions(layers, []) == []
