"""Checks of this Python install that need no GPU: edgeres itself, onnxruntime (and a real session), and
the temp folder edgeres writes scratch files to."""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgeres import __version__
from edgeres.doctor.check import Outcome, failed, gib, passed
from edgeres.doctor.package_data import PACKAGE_DIR
from edgeres.doctor.tiny_model import BATCH, CLASSES, INPUT_NAME, sample_batch, tiny_classifier

# The temp folder must hold what edgeres writes there: `edgeres export` writes the FP32 ONNX there first
# (ResNet50: 25.6 M float32 weights, 98 MiB; ResNet152 twice that), `edgeres profile` onnxruntime's layer
# traces, the doctor its tiny engines. 1 GiB holds those several times over, e.g. two builds at once.
MIN_TEMP_FREE_BYTES = 1 << 30
ONNXRUNTIME_INSTALL = "pip install --force-reinstall 'onnxruntime>=1.18' (on Jetson: NVIDIA's onnxruntime-gpu wheel)"


def check_edgeres() -> Outcome:
    """Which edgeres (a checkout or an installed wheel) runs under which Python."""
    python = f"Python {platform.python_version()} ({sys.executable})"
    return passed(f"edgeres {__version__} at {PACKAGE_DIR}, {python}")


def check_onnxruntime() -> Outcome:
    """onnxruntime imports; its version and the execution providers this build has."""
    try:
        import onnxruntime as ort  # here, not at the top: a broken onnxruntime is this check's FAIL, not a crash
    except ImportError as exc:
        return failed(f"onnxruntime does not import: {exc}", ONNXRUNTIME_INSTALL)
    return passed(f"onnxruntime {ort.__version__}, providers: {', '.join(ort.get_available_providers())}")


def check_onnxruntime_session() -> Outcome:
    """The doctor's tiny model really runs in a CPU session and gives finite logits of the right shape."""
    from edgeres.artifacts.ort_session import PASS_THREADS, cpu_session

    outputs = cpu_session(tiny_classifier(), threads=PASS_THREADS).run(None, {INPUT_NAME: sample_batch()})
    logits = np.asarray(outputs[0])
    if logits.shape != (BATCH, CLASSES):
        return failed(f"the tiny model gave logits of shape {list(logits.shape)}, not {[BATCH, CLASSES]}",
                      ONNXRUNTIME_INSTALL)  # fmt: skip
    if not np.isfinite(logits).all():
        return failed(f"the tiny model gave {int(np.sum(~np.isfinite(logits)))} non-finite logits", ONNXRUNTIME_INSTALL)
    return passed(f"tiny Conv-Relu-GlobalAveragePool-Gemm model ran on the CPU: {BATCH}x{CLASSES} logits, all finite")


def temp_folder() -> Path:
    """The temp folder: $TMPDIR when set (even one Python would silently pass over), else tempfile's choice."""
    chosen = os.environ.get("TMPDIR", "")
    return Path(chosen) if chosen else Path(tempfile.gettempdir())


def check_temp_folder(folder: Path | None = None, min_free_bytes: int = MIN_TEMP_FREE_BYTES) -> Outcome:
    """A file can be created and removed in `folder` (default: `temp_folder()`), which has room to spare."""
    from_environment = folder is None and bool(os.environ.get("TMPDIR"))
    folder = temp_folder() if folder is None else Path(folder)
    named = f"TMPDIR={folder}" if from_environment else str(folder)
    fix = f"set TMPDIR to a writable folder with {gib(min_free_bytes)} free, e.g. mkdir -p ~/tmp && export TMPDIR=~/tmp"
    if not folder.exists():
        return failed(f"{named} does not exist", fix)
    if not folder.is_dir():
        return failed(f"{named} is not a folder", fix)
    try:
        handle, name = tempfile.mkstemp(prefix="edgeres-doctor-", dir=folder)
        try:
            os.write(handle, b"edgeres doctor")
        finally:
            os.close(handle)
            os.remove(name)
    except OSError as exc:
        return failed(f"{named}: cannot create a file ({exc.strerror or exc})", fix)
    free = shutil.disk_usage(folder).free
    if free < min_free_bytes:
        return failed(f"{named}: {gib(free)} free, under the {gib(min_free_bytes)} a build's scratch files need", fix)
    return passed(f"{named}: writable, {gib(free)} free")
