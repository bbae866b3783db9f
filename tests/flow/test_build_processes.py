"""Builds as real processes racing for one output folder: one owns it, the other is refused before touching
it; a holder killed outright leaves no lock, and what it had replaced is put back by the next owner.

The interleaving is made certain, not hoped for: a process is stopped (SIGSTOP) or killed (SIGKILL) only
once a file it writes at a known point is on disk.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edgeres.artifacts.build_summary import SUMMARY_NAME
from edgeres.artifacts.completion import IN_PROGRESS_NAME, build_complete
from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto

WAIT_S = 120.0


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_with_sidecar(tiny_classifier_proto(10), tmp_path_factory.mktemp("tiny") / "tiny.onnx", "fp32")


def build_args(source: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "edgeres", "build", "--onnx", str(source), "--calib-size", "8", "--no-profile",
        "--min-sqnr", "0", "-o", str(out), *extra,
    ]  # fmt: skip


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=WAIT_S)


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the process ended first: {process.communicate()[0]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the process")
        time.sleep(0.005)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def one_error_line(output: str) -> str:
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in output, output
    return errors[0]


def test_a_second_build_into_a_folder_being_built_is_refused_and_the_first_finishes(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = start(build_args(tiny_onnx, out, "--calib-algo", "max"))
    try:
        wait_for(lambda: (out / IN_PROGRESS_NAME).exists(), first)
        os.kill(first.pid, signal.SIGSTOP)
        during = folder_bytes(out)
        second = run(build_args(tiny_onnx, out, "--calib-algo", "mse", "--no-bias-correction"))
        assert second.returncode == 2
        assert f"process {first.pid} is writing it now" in one_error_line(second.stdout)
        assert folder_bytes(out) == during  # refused before touching anything
        deploy = run([sys.executable, "-m", "edgeres", "deploy", "triton", str(out), "-o", str(tmp_path / "repo")])
        assert deploy.returncode == 2 and "in progress" in one_error_line(deploy.stdout)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert first.wait(WAIT_S) == 0, first.communicate()[0]
    summary = json.loads((out / SUMMARY_NAME).read_text())
    assert summary["options"]["calib_algo"] == "max" and build_complete(out)


def test_a_holder_killed_outright_leaves_no_lock_and_its_replacements_are_put_back(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert run(build_args(tiny_onnx, out, "--calib-algo", "max")).returncode == 0
    before = folder_bytes(out)
    doomed = start(build_args(tiny_onnx, out, "--calib-algo", "max", "--no-bias-correction"))
    wait_for(lambda: any(out.glob(".*.edgeres-previous")), doomed)  # it has begun replacing files
    doomed.kill()
    doomed.wait(WAIT_S)
    assert not build_complete(out)  # what it left is recognisably unfinished
    # the next owner is not blocked by the dead one, puts its replacements back, then refuses on its own
    # grounds (another calibration folder than the cache's): the folder is the build from before
    other_calibration = tmp_path / "calib"
    other_calibration.mkdir()
    from edgeres.frames.images import default_calibration_dir

    for photo in sorted(default_calibration_dir().glob("*.jpg"))[:6]:
        (other_calibration / photo.name).write_bytes(photo.read_bytes())
    refused = run(build_args(tiny_onnx, out, "--calib-algo", "max", "--calib", str(other_calibration)))
    assert refused.returncode == 2 and "calibration cache is stale" in one_error_line(refused.stdout)
    assert folder_bytes(out) == before and build_complete(out)
