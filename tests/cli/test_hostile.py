"""Hostile input and faults: every refusal is one line `error: ...` and exit code 2 (130 when interrupted).

Each case builds its own hostile input in tmp_path: a folder where a file goes, an output under a regular
file, a 300-character name, random bytes as a model, a 0-byte or code-carrying checkpoint, rich markup in
paths and values, absurd sizes. Nothing may be left in the output location.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from edgeres.cli import paths
from edgeres.cli.app import app
from edgeres.cli.reporting import DEBUG_ENV, reports_errors, say, warn, wrote
from edgeres.errors import ResourceLimitError, UserInputError
from edgeres.frames.contract import InputContract
from edgeres.frames.images import NETWORK_SIZE
from edgeres.frames.yuv import YuvLayout, rgb_to_yuv422
from edgeres.model.arch import Arch
from edgeres.profile.options import SAMPLE_BYTES, ProfileOptions

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
LONG_NAME = "n" * 300


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def refused(result, code: int = 2) -> str:
    """The one `error:` line of a refusal with exit `code`, after checking there is no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def nothing_written(folder: Path, *kept: Path) -> None:
    left = sorted(p for p in folder.rglob("*") if p not in kept and not any(k in p.parents for k in kept))
    assert left == [], left


@pytest.fixture
def work(tmp_path: Path, monkeypatch) -> Path:
    """An empty working folder, torchvision's cache pointed inside it (random weights, nothing downloaded)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / ".torch"))
    (tmp_path / ".torch").mkdir()
    return tmp_path


@pytest.fixture
def image(work: Path) -> Path:
    path = work / "in.png"
    cv2.imwrite(str(path), np.full((32, 32, 3), 120, np.uint8))
    return path


@pytest.fixture
def clip(work: Path) -> Path:
    """One 4x2 YUYV frame."""
    path = work / "clip.yuv"
    path.write_bytes(bytes(range(16)))
    return path


# --- outputs that can never be written, refused before any work ---------------------------------------


def _folder(work: Path) -> Path:
    (work / "taken").mkdir()
    return work / "taken"


def _under_file(work: Path) -> Path:
    (work / "plain").write_text("x")
    return work / "plain" / "out"


def _long(work: Path) -> Path:
    return work / f"{LONG_NAME}.onnx"


FILE_OUTPUTS = {"a folder": _folder, "under a regular file": _under_file, "a 300-character name": _long}
FILE_CAUSES = {"a folder": "is a folder", "under a regular file": "is a file, not a folder",
               "a 300-character name": "File name too long"}  # fmt: skip


@pytest.mark.parametrize("kind", FILE_OUTPUTS)
def test_export_refuses_an_output_file_it_cannot_write(work: Path, kind: str):
    output = FILE_OUTPUTS[kind](work)
    line = refused(invoke("export", "--arch", "resnet18", "-o", output))
    assert FILE_CAUSES[kind] in line
    assert "meaningless" not in line  # refused before the model was built
    nothing_written(work, work / ".torch", work / "taken", work / "plain")


@pytest.mark.parametrize("kind", FILE_OUTPUTS)
def test_frames_encode_refuses_an_output_file_it_cannot_write(work: Path, image: Path, kind: str):
    output = FILE_OUTPUTS[kind](work)
    assert FILE_CAUSES[kind] in refused(invoke("frames", "encode", image, "-o", output, "--format", "yuyv:32x32"))
    nothing_written(work, work / ".torch", work / "taken", work / "plain", image)


@pytest.mark.parametrize("kind", FILE_OUTPUTS)
def test_frames_decode_refuses_an_output_file_it_cannot_write(work: Path, clip: Path, kind: str):
    output = FILE_OUTPUTS[kind](work)
    assert FILE_CAUSES[kind] in refused(invoke("frames", "decode", clip, "--format", "yuyv:4x2", "-o", output))
    nothing_written(work, work / ".torch", work / "taken", work / "plain", clip)


@pytest.mark.parametrize("kind", FILE_OUTPUTS)
def test_profile_refuses_a_json_report_it_cannot_write(work: Path, kind: str):
    output = FILE_OUTPUTS[kind](work)
    assert FILE_CAUSES[kind] in refused(invoke("profile", work / "absent.onnx", "--json", output))


def test_profile_refuses_a_plot_folder_that_is_a_file(work: Path):
    (work / "plots").write_text("x")
    assert "is a file, expected a folder" in refused(invoke("profile", work / "absent.onnx", "--plot", work / "plots"))


def test_profile_refuses_a_plot_folder_under_a_file(work: Path):
    output = _under_file(work)
    assert "is a file, not a folder" in refused(invoke("profile", work / "absent.onnx", "--plot", output))


def test_build_refuses_an_output_folder_that_is_a_file(work: Path):
    (work / "out").write_text("x")
    assert "is a file, expected a folder" in refused(invoke("build", "-o", work / "out"))
    assert (work / "out").read_text() == "x"


def test_build_refuses_an_output_folder_under_a_file(work: Path):
    assert "is a file, not a folder" in refused(invoke("build", "-o", _under_file(work)))
    nothing_written(work, work / ".torch", work / "plain")


def test_build_refuses_a_300_character_folder_name(work: Path):
    assert "File name too long" in refused(invoke("build", "-o", work / LONG_NAME))
    nothing_written(work, work / ".torch")


def test_engine_refuses_a_folder_named_like_an_engine(work: Path):
    (work / "r50.engine").mkdir()
    line = refused(invoke("engine", work / "m.onnx", "-o", work / "r50.engine"))
    assert "is a folder" in line


def test_an_output_under_proc_is_one_line(work: Path, image: Path):
    """/proc takes no new files: the OSError of the write is one line naming the path and its cause."""
    line = refused(invoke("frames", "encode", image, "-o", "/proc/edgeres-hostile/clip.yuv", "--format", "yuyv:32x32"))
    assert "/proc/edgeres-hostile" in line


def test_the_path_checks_accept_what_can_be_written(work: Path):
    paths.check_output_file(work / "new" / "deeper" / "model.onnx")
    paths.check_output_dir(work / "new" / "folder")
    paths.check_output_dir(work)
    with pytest.raises(UserInputError, match="is a file, expected a folder"):
        paths.check_output_dir(_under_file(work).parent)


# --- the error boundary: expected failures are exit 2, anything else is a bug, exit 1 ------------------


def _raiser(exc: BaseException) -> typer.Typer:
    def command() -> None:
        raise exc

    probe = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    probe.command()(reports_errors(command))
    return probe


def _cv2_error() -> BaseException:
    try:
        cv2.cvtColor(np.zeros((2, 2, 7), np.uint8), cv2.COLOR_BGR2RGB)
    except cv2.error as exc:
        return exc
    raise AssertionError("cv2 accepted 7 channels")


def _decode_error() -> BaseException:
    import onnx

    try:
        onnx.ModelProto().ParseFromString(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    except Exception as exc:
        return exc
    raise AssertionError("random bytes parsed as ONNX")


def _json_error() -> BaseException:
    try:
        json.loads('{"options": ')
    except json.JSONDecodeError as exc:
        return exc
    raise AssertionError("malformed JSON parsed")


EXPECTED = {
    "ENOSPC": (lambda: OSError(28, os.strerror(28), "out/model.onnx"), "out/model.onnx: No space left on device"),
    "EACCES": (lambda: PermissionError(13, os.strerror(13), "/etc/x"), "/etc/x: Permission denied"),
    "ENAMETOOLONG": (lambda: OSError(36, os.strerror(36), "n" * 300), "File name too long"),
    "IsADirectory": (lambda: IsADirectoryError(21, os.strerror(21), "out"), "out: Is a directory"),
    "MemoryError": (lambda: MemoryError(), "out of memory"),
    "cv2.error": (_cv2_error, "OpenCV"),
    "DecodeError": (_decode_error, "not a valid protobuf message"),
    "JSONDecodeError": (_json_error, "malformed JSON"),
}


@pytest.mark.parametrize("kind", EXPECTED)
def test_an_expected_failure_is_one_line_exit_2(kind: str, monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    make, text = EXPECTED[kind]
    assert text in refused(runner.invoke(_raiser(make()), []))


@pytest.mark.parametrize("exc", [KeyError("fc.weight"), AttributeError("'list' object has no attribute 'get'"),
                                 TypeError("string indices must be integers")])  # fmt: skip
def test_an_unexpected_exception_is_one_line_saying_it_is_a_bug(exc: Exception, monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    line = refused(runner.invoke(_raiser(exc), []), code=1)
    assert "bug" in line and type(exc).__name__ in line and f"{DEBUG_ENV}=1" in line


def test_edgeres_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv(DEBUG_ENV, "1")
    result = runner.invoke(_raiser(KeyError("x")), [])
    assert result.exit_code == 1 and "Traceback" in result.output and "KeyError" in result.output


def test_ctrl_c_is_one_interrupted_line_exit_130():
    result = runner.invoke(_raiser(KeyboardInterrupt()), [])
    assert result.exit_code == 130
    assert [line for line in result.output.splitlines() if line] == ["interrupted: no partial artifact was left behind"]


def test_the_sigterm_handler_is_restored_after_a_command():
    before = signal.getsignal(signal.SIGTERM)
    runner.invoke(_raiser(UserInputError("x")), [])
    assert signal.getsignal(signal.SIGTERM) == before


def test_sigterm_during_an_export_is_exit_130_with_no_partial_file(tmp_path: Path):
    """SIGTERM after the command has started (its random-weights warning is out, ~3 s in): exit 130."""
    out = tmp_path / "out"
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch-home"), "NO_COLOR": "1", "COLUMNS": "400"}
    process = subprocess.Popen(
        [sys.executable, "-m", "edgeres", "export", "-o", str(out / "model.onnx")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert process.stderr is not None
    first = process.stderr.readline()  # the command is running: the model is being built
    assert first.startswith("warning: no weights given"), first
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout + first + stderr
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if line.strip()] == [
        "interrupted: no partial artifact was left behind"
    ]
    assert not (list(out.rglob("*.partial")) if out.exists() else [])
    assert not (out / "model.onnx").exists()


# --- user text is printed literally, never as markup -----------------------------------------------------


@pytest.mark.parametrize("name", ["[/].onnx", "[bold red]x[/].onnx", "x[/bold].onnx", ":smile:.onnx"])
def test_markup_in_a_path_is_printed_literally(work: Path, name: str):
    assert refused(invoke("info", name)) == f"error: {name}: file not found"


def test_markup_in_an_engine_batch_is_printed_literally(work: Path):
    line = refused(invoke("build", "--batch", "a:smile:c", "-o", work / "out"))
    assert "a:smile:c" in line and "😄" not in line


def test_an_emoji_code_in_profile_batches_stays_text(work: Path):
    line = refused(invoke("profile", "x.onnx", "--batch", ":thumbs_up:,[/]"))
    assert ":thumbs_up:,[/]" in line and "👍" not in line


def test_markup_in_an_output_name_under_a_file_is_literal(work: Path):
    (work / "[bold]f").write_text("x")  # then "[/]m.onnx" under it: a folder "[" holding "]m.onnx"
    line = refused(invoke("export", "--arch", "resnet18", "-o", f"{work}/[bold]f/[/]m.onnx"))
    assert "[bold]f/[/]m.onnx" in line


def test_markup_in_a_weights_path_is_literal(work: Path):
    assert "[bold]w[/bold].pth: checkpoint file not found" in refused(
        invoke("export", "--weights", "[bold]w[/bold].pth")
    )


def test_markup_in_a_frame_format_is_literal(work: Path, clip: Path):
    assert "'[b]yuyv:4x2'" in refused(invoke("frames", "info", clip, "--format", "[b]yuyv:4x2"))


def test_markup_in_a_clip_name_is_literal_in_the_table_title(work: Path):
    clip = work / "[red]clip[i].yuv"
    clip.write_bytes(bytes(16))
    result = invoke("frames", "info", clip.name, "--format", "yuyv:4x2")
    assert result.exit_code == 0, result.output
    assert "[red]clip[i].yuv: 1 yuyv frame(s)" in " ".join(result.output.split())


def test_say_wrote_and_warn_print_markup_literally():
    def command() -> None:
        say("[bold]a[/bold] :smile:")
        wrote("[/]b")
        warn("[red]c")

    probe = typer.Typer(add_completion=False)
    probe.command()(reports_errors(command))
    result = runner.invoke(probe, [])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["[bold]a[/bold] :smile:", "wrote [/]b", "warning: [red]c"]


# --- sizes that cannot fit in memory, refused up front with the estimate --------------------------------


def test_summary_refuses_a_size_beyond_memory(work: Path):
    line = refused(invoke("summary", "--size", 100_000))
    assert "100000x100000" in line and "TB of memory" in line and "available" in line


@pytest.mark.parametrize("command", [("summary",), ("export", "-o", "m.onnx")])
def test_a_trillion_classes_are_refused(work: Path, command: tuple[str, ...]):
    line = refused(invoke(*command, "--num-classes", 10**12))
    assert "1,000,000,000,000 classes" in line and "PB of memory" in line
    nothing_written(work, work / ".torch")


def test_frames_encode_refuses_frames_beyond_memory(work: Path, image: Path):
    line = refused(invoke("frames", "encode", image, "-o", work / "c.yuv", "--format", "yuyv:100000x100000"))
    assert "100000x100000" in line and "GB of memory" in line
    assert not (work / "c.yuv").exists()


def test_export_refuses_a_frame_input_beyond_memory(work: Path):
    line = refused(invoke("export", "--input", "yuyv:100000x100000", "-o", work / "m.onnx"))
    assert "100000x100000" in line
    nothing_written(work, work / ".torch")


def test_profile_refuses_a_batch_beyond_memory_before_loading(work: Path, monkeypatch):
    monkeypatch.setattr("edgeres.errors.available_memory_bytes", lambda: 8 << 30)
    line = refused(invoke("profile", work / "absent.onnx", "--batch", "1,4096"))
    assert "batch 4096" in line and "8.6 GB is available" in line


def test_the_library_refuses_absurd_sizes_for_api_users(monkeypatch):
    from edgeres.model.resnet import ResNet, activation_bytes, model_bytes

    with pytest.raises(ResourceLimitError, match="classes"):
        ResNet(Arch.RESNET18, 10**12)
    with pytest.raises(ResourceLimitError, match="100000x100000"):
        InputContract(YuvLayout.YUYV, 100_000, 100_000)
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (100_000, 100_000, 3))  # a view: no memory behind it
    with pytest.raises(ResourceLimitError):
        rgb_to_yuv422(huge, YuvLayout.YUYV)
    monkeypatch.setattr("edgeres.errors.available_memory_bytes", lambda: 8 << 30)
    with pytest.raises(ResourceLimitError, match="batch 4096"):
        ProfileOptions(batches=(4096,))
    assert activation_bytes(NETWORK_SIZE) == SAMPLE_BYTES  # profiling's per-sample estimate is the model's
    assert model_bytes(Arch.RESNET50, 1000) == 4 * 25_557_032  # torchvision's parameter count


# --- messages that name the real cause --------------------------------------------------------------------


def test_an_empty_checkpoint_is_an_empty_file(work: Path):
    (work / "empty.pth").write_bytes(b"")
    line = refused(invoke("export", "--arch", "resnet18", "--weights", "empty.pth", "-o", "m.onnx"))
    assert "empty.pth: empty file" in line and "weights_only" not in line
    nothing_written(work, work / ".torch", work / "empty.pth")


def test_a_code_carrying_pickle_is_refused_and_never_runs(work: Path):
    marker = work / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (work / "evil.pth").write_bytes(pickle.dumps({"fc.weight": Payload()}))
    line = refused(invoke("export", "--arch", "resnet18", "--weights", "evil.pth", "-o", "m.onnx"))
    assert "refused to load" in line
    assert not marker.exists()
    assert not (work / "m.onnx").exists()


def test_random_bytes_as_a_checkpoint_are_one_line(work: Path):
    (work / "noise.pth").write_bytes(np.random.default_rng(1).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    assert "noise.pth" in refused(invoke("export", "--arch", "resnet18", "--weights", "noise.pth", "-o", "m.onnx"))


def test_random_bytes_as_safetensors_are_one_line(work: Path):
    (work / "noise.safetensors").write_bytes(b"\xff" * 64)
    line = refused(invoke("export", "--arch", "resnet18", "--weights", "noise.safetensors", "-o", "m.onnx"))
    assert "noise.safetensors" in line


def test_build_from_random_bytes_as_onnx_is_one_line(work: Path):
    (work / "random.bin").write_bytes(np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    line = refused(invoke("build", "--onnx", "random.bin", "-o", work / "out", "--no-profile"))
    assert "random.bin" in line
    assert not list((work / "out").rglob("*")) if (work / "out").exists() else True


@pytest.mark.parametrize("option", ["--calib-size", "--calib-batch"])
def test_a_negative_count_is_a_one_line_bad_value(work: Path, option: str):
    assert option in refused(invoke("build", option, -1, "-o", work / "out"))


def test_negative_profile_iterations_are_a_bad_value(work: Path):
    assert "iterations -1" in refused(invoke("profile", "x.onnx", "--iterations", -1))


def test_a_usage_error_is_one_line(work: Path):
    assert refused(invoke("export", "--no-such-option")).startswith("error: No such option")
