"""Property tests: the frame parser, the converters and the front-end on random sizes and bytes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeres.errors import UserInputError
from edgeres.export.parity import run_onnx
from edgeres.frames.contract import InputContract, ResizeMode
from edgeres.frames.yuv import (
    ColorRange,
    ColorSpace,
    YuvLayout,
    frame_bytes,
    frame_shape,
    join_planes,
    open_yuv,
    rgb_to_yuv422,
    size_of,
    split_planes,
    yuv422_to_rgb,
    yuv422_to_rgb_float,
)
from edgeres.frontend.graph import frontend_graph
from edgeres.frontend.host import reference_input

layouts = st.sampled_from(list(YuvLayout))
spaces = st.sampled_from(list(ColorSpace))
ranges = st.sampled_from(list(ColorRange))
widths = st.integers(1, 24).map(lambda half: 2 * half)
heights = st.integers(1, 20)


@st.composite
def random_frames(draw: st.DrawFn) -> tuple[YuvLayout, int, int, np.ndarray]:
    layout, width, height, count = draw(layouts), draw(widths), draw(heights), draw(st.integers(1, 3))
    data = draw(st.binary(min_size=count * frame_bytes(width, height), max_size=count * frame_bytes(width, height)))
    return layout, width, height, np.frombuffer(data, np.uint8).reshape(count, *frame_shape(layout, width, height))


@given(random_frames())
def test_planes_split_and_join_back_exactly(case):
    layout, width, height, frames = case
    assert size_of(frames, layout) == (width, height)
    y, u, v = split_planes(frames, layout)
    assert y.shape[-2:] == (height, width) and u.shape[-2:] == v.shape[-2:] == (height, width // 2)
    np.testing.assert_array_equal(join_planes(y, u, v, layout), frames)


@given(random_frames(), spaces, ranges)
def test_conversion_stays_in_range_and_is_layout_independent(case, colorspace, color_range):
    layout, width, height, frames = case
    rgb = yuv422_to_rgb_float(frames, layout, colorspace, color_range)
    assert rgb.shape == (len(frames), height, width, 3) and rgb.min() >= 0 and rgb.max() <= 255
    other = YuvLayout.NV16 if layout is not YuvLayout.NV16 else YuvLayout.YUYV
    moved = join_planes(*split_planes(frames, layout), other)
    np.testing.assert_array_equal(yuv422_to_rgb(moved, other, colorspace, color_range),
                                  yuv422_to_rgb(frames, layout, colorspace, color_range))  # fmt: skip


@given(layouts, widths, heights, spaces, ranges, st.integers(0, 2**32 - 1))
def test_encoding_gives_legal_codes_and_pair_constant_images_survive(layout, width, height, space, rng_range, seed):
    rng = np.random.default_rng(seed)
    pairs = np.repeat(rng.integers(0, 256, (height, width // 2, 3), dtype=np.uint8), 2, axis=1)
    frames = rgb_to_yuv422(pairs, layout, space, rng_range)
    y, u, v = split_planes(frames, layout)
    if rng_range is ColorRange.LIMITED:
        assert y.min() >= 16 and y.max() <= 235 and min(u.min(), v.min()) >= 16 and max(u.max(), v.max()) <= 240
    back = yuv422_to_rgb(frames, layout, space, rng_range)
    assert np.abs(back.astype(int) - pairs).max() <= (2 if rng_range is ColorRange.LIMITED else 1)


@given(layouts, widths, heights, st.integers(0, 4000))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_raw_file_accepted_exactly_when_whole_frames(layout, width, height, length):
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.yuv"
        clip.write_bytes(bytes(range(256)) * (length // 256) + bytes(length % 256))
        per_frame = frame_bytes(width, height)
        if length and length % per_frame == 0:
            opened = open_yuv(clip, layout, width, height)
            assert opened.count == length // per_frame
            last = opened.frame(opened.count - 1)
            assert last.tobytes() == clip.read_bytes()[-per_frame:]
        else:
            try:
                open_yuv(clip, layout, width, height)
            except UserInputError as error:
                assert f"{length} bytes" in str(error) and f"{per_frame} bytes each" in str(error)
            else:
                raise AssertionError("a partial frame was accepted")


@given(st.binary(max_size=64), st.sampled_from([np.float32, np.int16, np.uint16]))
def test_malformed_arrays_raise_user_input_error(data, dtype):
    array = np.frombuffer(data[: len(data) // 4 * 4], np.uint8).astype(dtype)
    for candidate in (array, array.reshape(1, -1)):
        try:
            size_of(candidate, YuvLayout.YUYV)
        except UserInputError:
            continue
        raise AssertionError(f"{candidate.dtype} {candidate.shape} accepted")


@given(random_frames(), st.sampled_from(list(ResizeMode)), st.integers(8, 40))
@settings(max_examples=15, deadline=None)
def test_fused_graph_equals_host_path_on_any_frame(case, mode, size):
    layout, width, height, frames = case
    contract = InputContract(layout, width, height, resize=mode, size=size)
    host = reference_input(frames, contract)
    graph = run_onnx(frontend_graph(contract).SerializeToString(), frames)
    assert host.shape == (len(frames), 3, size, size)
    assert np.abs(graph - host).max() <= 1e-5
