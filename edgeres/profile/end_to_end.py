"""End-to-end timing: raw camera frame in, top-k out, one frame at a time like a camera loop.

Stages are timed separately: read (copy the frame out of the memory-mapped clip; from a stream, wait for
the frame and read it, so a live camera's frame interval shows there), preprocess (host YUV 4:2:2 -> RGB ->
resize/crop -> normalise; skipped when the network takes raw frames), infer, postprocess (softmax + top-k).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from edgeres.artifacts.tensors import TensorSpec
from edgeres.errors import UserInputError
from edgeres.frames.images import center_crop_resize
from edgeres.frames.normalization import IMAGENET_RGB, PixelNormalization
from edgeres.frames.stream import FrameSource, YuvStream, open_frames, source_name
from edgeres.frames.yuv import YuvFile, yuv422_to_rgb
from edgeres.profile.options import FrameClip
from edgeres.profile.results import EndToEndResult
from edgeres.profile.stats import LatencyStats, frames_per_second
from edgeres.runtime.base import Runner
from edgeres.runtime.inputs import artifact_normalization
from edgeres.runtime.topk import top_k
from edgeres.timing import RunLength


def takes_raw_frames(spec: TensorSpec, clip: FrameClip) -> bool:
    """True when the network's input is the uint8 frame itself (colour conversion inside the model)."""
    return spec.dtype == np.uint8 and len(spec.shape) == 3 and tuple(spec.shape[1:]) == clip.frames.frame_shape


def host_preprocessor(
    spec: TensorSpec, clip: FrameClip, normalization: PixelNormalization = IMAGENET_RGB
) -> Callable[[np.ndarray], np.ndarray]:
    """The host-side conversion from one raw frame to the network's input batch of one."""
    if takes_raw_frames(spec, clip):
        return lambda frame: frame[None]
    if len(spec.shape) != 4 or spec.shape[1] != 3 or spec.shape[2] is None or spec.shape[2] != spec.shape[3]:
        raise UserInputError(
            f"end-to-end mode needs a [N, 3, S, S] image input or the raw {clip.frames.layout.value} frame; "
            f"the model takes '{spec.name}' {spec.describe()}"
        )
    size = int(spec.shape[2])
    dtype = spec.dtype

    def preprocess(frame: np.ndarray) -> np.ndarray:
        rgb = yuv422_to_rgb(frame, clip.frames.layout, clip.colorspace, clip.color_range)
        return normalization.apply(center_crop_resize(rgb, size))[None].astype(dtype, copy=False)

    return preprocess


class ClipFrames:
    """The frames end-to-end runs read: a file's from its first frame for each run, round and round; a stream's
    as they arrive, each run going on where the one before stopped (so several models share one live camera)."""

    def __init__(self, clip: FrameClip, source: FrameSource) -> None:
        self.clip = clip
        self.source = source

    @property
    def name(self) -> str:
        return source_name(self.clip.path)

    @property
    def ended(self) -> bool:
        """A stream that has ended (a file never does: it is read round and round)."""
        return isinstance(self.source, YuvStream) and self.source.ended

    @property
    def frames_read(self) -> int:
        return self.source.count

    def run(self) -> Iterator[np.ndarray]:
        source = self.source
        if isinstance(source, YuvFile):
            frames = source.frames()
            for index in itertools.count():
                yield np.array(frames[index % source.count])
        else:
            yield from source


@contextmanager
def open_clip(clip: FrameClip) -> Iterator[ClipFrames]:
    frames = clip.frames
    with open_frames(clip.path, frames.layout, frames.width, frames.height, clip.wait_s) as source:
        yield ClipFrames(clip, source)


def run_end_to_end(runner: Runner, frames: ClipFrames, run_length: RunLength, warmup: int) -> EndToEndResult | None:
    """Loop over the clip's frames for the run length; per-stage latency per frame. A stream that ends first ends
    the run: None when it left no frame to time after the warm-up."""
    clip = frames.clip
    supply = frames.run()
    preprocess = host_preprocessor(runner.input_spec, clip, artifact_normalization(runner.artifact))
    clock = time.perf_counter
    stages: list[list[float]] = [[], [], [], [], []]
    deadline = clock() + run_length.seconds if run_length.seconds is not None else None
    first_top1 = -1
    index = 0
    while True:
        t0 = clock()
        frame = next(supply, None)
        t1 = clock()
        if frame is None:
            break
        batch = preprocess(frame)
        t2 = clock()
        logits = runner.infer(batch)
        t3 = clock()
        best = top_k(logits, min(clip.top_k, logits.shape[1]))
        t4 = clock()
        if index == 0:
            first_top1 = int(best.indices[0, 0])
        index += 1
        if index <= warmup:
            continue
        for slot, seconds in enumerate((t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
            stages[slot].append(seconds)
        measured = index - warmup
        if (deadline is None and measured >= (run_length.iterations or 1)) or (deadline is not None and t4 >= deadline):
            break
    if not stages[4]:
        return None
    read, pre, infer, post, total = (LatencyStats.from_seconds(s) for s in stages)
    return EndToEndResult(
        clip=str(clip.path),
        frames=len(stages[4]),
        read=read,
        preprocess=pre,
        infer=infer,
        postprocess=post,
        total=total,
        fps=frames_per_second(len(stages[4]), float(np.sum(stages[4]))),
        top1_first_frame=first_top1,
    )
