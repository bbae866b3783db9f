"""Raw frames that arrive on a pipe: standard input (`-`), a FIFO, `/dev/stdin`, read one frame at a time.

A capture chain hands its frames over on a pipe (`gst-launch-1.0 v4l2src ! ... ! fdsink`, `ffmpeg -f v4l2 ...
-f rawvideo -`, `v4l2-ctl --stream-to=-`): its length is unknown until it ends and it cannot be memory-mapped,
so frames are read as they arrive. `open_frames` picks: a regular file stays the memory-mapped `YuvFile`.
Waiting is bounded (`wait_s`): a FIFO nobody writes to, or a producer that stalls, is a one-line error, not a
hang. A last frame cut short is reported in one warning and left unused; the complete frames before it count.
"""

from __future__ import annotations

import collections
import io
import os
import select
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgeres.errors import UserInputError, check_fits_in_memory
from edgeres.frames.yuv import YuvFile, YuvLayout, check_size, frame_bytes, frame_shape, open_yuv

STDIN = "-"  # the path that means standard input
STDIN_NAME = "standard input"
# Seconds a stream may stay silent, before its first frame or between two: long enough for a capture
# pipeline to start a camera, short enough that a FIFO nobody opened does not look like a hang.
DEFAULT_WAIT_S = 10.0


class PartialFrameWarning(UserWarning):
    """A stream ended inside a frame: those bytes were not used."""


def source_name(path: Path) -> str:
    """How messages name a source of frames: `-` is standard input."""
    return STDIN_NAME if str(path) == STDIN else str(path)


def is_stream(path: Path) -> bool:
    """`-`, a FIFO, a socket or a character device: something written into as it is read, not a file."""
    if str(path) == STDIN:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)


class YuvStream:
    """Frames of one layout and size read from a file descriptor in order, as they arrive.

    `count` is the number of complete frames read so far; `leftover` the bytes of a last frame cut short.
    """

    def __init__(self, fd: int, name: str, layout: YuvLayout, width: int, height: int, wait_s: float | None) -> None:
        check_size(width, height)
        if wait_s is not None and not wait_s > 0:
            raise UserInputError(f"wait of {wait_s} s for a stream's frames: must be more than 0")
        self.name, self.layout, self.width, self.height, self.wait_s = name, layout, width, height, wait_s
        self.count = 0
        self.leftover = 0
        self.ended = False
        self._file = io.FileIO(fd, "rb", closefd=True)
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN | select.POLLPRI)

    @property
    def frame_bytes(self) -> int:
        return frame_bytes(self.width, self.height)

    def read(self) -> np.ndarray | None:
        """The next frame [rows, cols], or None once the stream has ended."""
        if self.ended:
            return None
        size = self.frame_bytes
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            self._wait(got)
            try:
                read = self._file.readinto(view[got:])
            except OSError as exc:
                raise UserInputError(f"{self.name}: cannot read frames ({exc.strerror or exc})") from None
            if read is None:  # a non-blocking descriptor with nothing to read after all
                continue
            if read == 0:
                self._end(got)
                return None
            got += read
        self.count += 1
        return np.frombuffer(buffer, np.uint8).reshape(frame_shape(self.layout, self.width, self.height))

    def __iter__(self) -> Iterator[np.ndarray]:
        while (frame := self.read()) is not None:
            yield frame

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` from the stream's start (negative counts from its end, so it is read to the end);
        the frames before it are read and dropped."""
        if 0 <= index < self.count:
            raise UserInputError(f"{self.name}: frame {index} was already read")
        if index >= 0:
            for frame in self:
                if self.count - 1 == index:
                    return frame
        else:
            check_fits_in_memory(-index * self.frame_bytes, f"the last {-index} frame(s) of {self.name}")
            last: collections.deque[np.ndarray] = collections.deque(maxlen=-index)
            last.extend(self)
            if len(last) == -index:
                return last[0]
        raise UserInputError(f"{self.name}: frame index {index} out of range (the stream had {self.count} frames)")

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> YuvStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _wait(self, got: int) -> None:
        """Until there is something to read (or the writer left); at most `wait_s`."""
        if self.wait_s is None or self._poll.poll(self.wait_s * 1e3):
            return
        if self.count == 0 and got == 0:
            raise UserInputError(
                f"{self.name}: no frame data within {self.wait_s:g} s (nothing writes to it, or the producer "
                "has not started)"
            )
        raise UserInputError(f"{self.name}: no frame data for {self.wait_s:g} s after {self.count} frame(s)")

    def _end(self, got: int) -> None:
        self.ended, self.leftover = True, got
        if got:
            warnings.warn(
                PartialFrameWarning(
                    f"{self.name}: the stream ended {got} bytes into a frame of {self.frame_bytes} bytes; those "
                    f"{got} bytes were left unused, the {self.count} complete frame(s) before them were used"
                ),
                stacklevel=4,
            )


def open_stream(
    path: Path, layout: YuvLayout, width: int, height: int, wait_s: float | None = DEFAULT_WAIT_S
) -> YuvStream:
    """`-` (standard input, left open for others) or a FIFO or device path, as a YuvStream; a terminal is refused."""
    name = source_name(path)
    if str(path) == STDIN:
        try:
            fd = os.dup(0)
        except OSError:
            raise UserInputError(f"{STDIN_NAME} is closed: pipe the raw frames into it") from None
    else:
        # Non-blocking: opening a FIFO for reading would otherwise wait for a writer, unbounded.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        os.set_blocking(fd, True)  # this descriptor only; `wait_s` bounds the waits from here
    if os.isatty(fd):
        os.close(fd)
        raise UserInputError(f"{name} is a terminal, not frames: pipe the raw frames into it")
    return YuvStream(fd, name, layout, width, height, wait_s)


FrameSource = YuvFile | YuvStream


@contextmanager
def open_frames(
    path: Path, layout: YuvLayout, width: int, height: int, wait_s: float | None = DEFAULT_WAIT_S
) -> Iterator[FrameSource]:
    """Raw frames from `path`: a regular file memory-mapped (its length checked first), `-`, a FIFO or a
    device read as they arrive (closed after the block)."""
    if not is_stream(Path(path)):
        yield open_yuv(Path(path), layout, width, height)
        return
    with open_stream(Path(path), layout, width, height, wait_s) as stream:
        yield stream
