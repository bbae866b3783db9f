"""Hostile input and faults on the training and export path: each refusal is exit 2 and exactly one `error:` line
naming the problem, no traceback, and the output folder byte for byte as it was before the command.

Every case builds its input in the test: non-finite options, checkpoints holding NaN, infinities, values beyond
float32 or tensors of other shapes, a full disk (injected as tests/fixtures/faults.py does, and a real file-size
limit in a subprocess), sizes beyond memory, an output folder inside the data, class folders whose names cannot
be a line of classes.txt.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from edgeres.cli.app import app
from edgeres.errors import UserInputError
from edgeres.model.arch import Arch
from edgeres.train.checkpoints import RESUME_NAME
from edgeres.train.finetune import FinetuneData, finetune
from edgeres.train.options import FinetuneOptions
from edgeres.train.trainer import TrainHooks
from tests.fixtures.faults import ENOSPC, fail_at_write

QUICK = ["--arch", "resnet18", "--size", "32", "--epochs", "1", "--warmup-epochs", "0", "--workers", "0"]
USER_CLASSES = b"the user's own names\n"


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def refused(result, code: int = 2) -> str:
    """The one `error:` line of a refusal with exit `code`, after checking there is no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "best epoch" not in result.output and "next: edgeres build" not in result.output, result.output
    return errors[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under `folder` (hidden ones included): a file's SHA-256, or 'folder'."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): "folder" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An output folder that already holds the user's files, one of them named like a file the run writes."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me\n")
    (folder / "classes.txt").write_bytes(USER_CLASSES)
    return folder


@pytest.fixture
def data(photo_task: tuple[Path, Path]) -> Path:
    return photo_task[1]  # 4 classes of 8 images: 24 to train on, 8 to validate


def start(data: Path, out: Path, weights: Path, *extra: object):
    return invoke("finetune", data, "-o", out, "--weights", weights, *QUICK, *extra)


# --- 4. non-finite numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--lr", "inf"], "learning rate inf: must be a finite number"),
        (["--lr", "nan"], "learning rate nan: must be a finite number"),
        (["--lr", "-inf"], "learning rate -inf: must be a finite number"),
        (["--lr", "1e400"], "learning rate inf: must be a finite number"),  # beyond a double: parsed as inf
        (["--backbone-lr-scale", "inf"], "backbone rate scale inf: must be a finite number"),
        (["--backbone-lr-scale", "nan"], "backbone rate scale nan: must be a finite number"),
        (["--lr", "1e308", "--backbone-lr-scale", "10"], "backbone learning rate (rate x scale) inf"),
        (["--weight-decay", "inf"], "weight decay inf: must be a finite number"),
        (["--weight-decay", "nan"], "weight decay nan: must be a finite number"),
        (["--label-smoothing", "nan"], "label smoothing nan: must be a finite number"),
        (["--label-smoothing", "-inf"], "label smoothing -inf: must be a finite number"),
        (["--val-fraction", "nan"], "validation fraction nan: must be a finite number"),
        (["--val-fraction", "inf"], "validation fraction inf: must be a finite number"),
        (["--seed", "-1"], "seed -1: must be in 0..4294967295"),
        (["--seed", str(2**64)], f"seed {2**64}: must be in 0..4294967295"),
    ],
)
def test_a_non_finite_or_out_of_range_option_is_refused_by_name(
    extra: list[str], message: str, data: Path, out: Path, random_checkpoint: Path
) -> None:
    before = snapshot(out)
    assert message in refused(start(data, out, random_checkpoint, *extra))
    assert snapshot(out) == before


def _tampered_checkpoint(source: Path, target: Path, change: str) -> Path:
    state = torch.load(source, weights_only=True)
    if change == "nan":
        state["layer1.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    elif change == "inf":
        state["bn1.running_var"][3] = float("inf")
    else:  # float64 values that float32 cannot hold: finite in the file, infinite once loaded
        state = {name: tensor.double() for name, tensor in state.items()}
        state["fc.bias"][7] = 1e300
    torch.save(state, target)
    return target


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("nan", "tensor 'layer1.0.conv1.weight' holds 1 NaN and 0 infinite value(s) of 36864"),
        ("inf", "tensor 'bn1.running_var' holds 0 NaN and 1 infinite value(s) of 64"),
        ("float64", "tensor 'fc.bias' holds 0 NaN and 1 infinite value(s) of 1000"),
    ],
)
def test_a_starting_checkpoint_with_non_finite_weights_is_refused_naming_the_tensor(
    change: str, message: str, data: Path, out: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    weights = _tampered_checkpoint(random_checkpoint, tmp_path / f"{change}.pth", change)
    before = snapshot(out)
    line = refused(start(data, out, weights))
    assert str(weights) in line and message in line
    assert snapshot(out) == before


@pytest.mark.parametrize("change", ["nan", "float64"])
def test_export_of_a_checkpoint_with_non_finite_weights_names_the_tensor(
    change: str, random_checkpoint: Path, tmp_path: Path
) -> None:
    weights = _tampered_checkpoint(random_checkpoint, tmp_path / f"{change}.pth", change)
    line = refused(invoke("export", "--arch", "resnet18", "--weights", weights, "-o", tmp_path / "m" / "m.onnx"))
    assert f"{weights}: tensor '" in line and "infinite value(s)" in line and "ONNX disagrees" not in line, line
    assert not (tmp_path / "m").exists()


def test_export_of_weights_whose_outputs_overflow_float32_says_so(random_checkpoint: Path, tmp_path: Path) -> None:
    """Finite weights, infinite logits: 'max abs error nan' named nothing."""
    state = torch.load(random_checkpoint, weights_only=True)
    for name in ("conv1.weight", "layer1.0.conv1.weight"):
        state[name] = state[name] * 1e25
    torch.save(state, tmp_path / "huge.pth")
    weights = tmp_path / "huge.pth"
    line = refused(invoke("export", "--arch", "resnet18", "--weights", weights, "-o", tmp_path / "m.onnx"))
    assert re.search(r"PyTorch computes \d+ non-finite logit\(s\) of \d+ on the parity batch", line), line
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("batch", ["8", "32"])  # several steps an epoch (the loss), or one (the weights, validation)
def test_training_that_diverges_stops_naming_the_epoch_and_keeps_nothing(
    batch: str, data: Path, out: Path, random_checkpoint: Path
) -> None:
    before = snapshot(out)
    line = refused(start(data, out, random_checkpoint, "--lr", "1e30", "--batch", batch))
    assert re.search(r"training diverged (at|in) epoch 1\b", line) and "lower the learning rate" in line, line
    assert snapshot(out) == before  # no model.pth, no last.pt; the user's classes.txt put back


@pytest.fixture(scope="module")
def finished_run(photo_task: tuple[Path, Path], random_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> Path:  # fmt: skip
    """A run of one epoch, finished: what --resume continues."""
    folder = tmp_path_factory.mktemp("finished") / "run"
    result = start(photo_task[1], folder, random_checkpoint)
    assert result.exit_code == 0, result.output
    return folder


def _resume_copy(finished_run: Path, tmp_path: Path, edit: object = None) -> Path:
    """A copy of the finished run whose last.pt has been passed through `edit(payload)`."""
    folder = tmp_path / "resumed"
    shutil.copytree(finished_run, folder)
    if edit is not None:
        payload = torch.load(folder / RESUME_NAME, weights_only=True)
        edit(payload)  # type: ignore[operator]
        torch.save(payload, folder / RESUME_NAME)
    return folder


def _nan_weight(payload: dict) -> None:
    payload["model"]["layer4.1.bn2.weight"][:] = float("nan")


def _nan_moment(payload: dict) -> None:
    payload["optimizer"]["state"][0]["exp_avg"][0, 0] = float("nan")


def _other_head(payload: dict) -> None:
    payload["model"]["fc.weight"] = torch.zeros(3, 512)
    payload["model"]["fc.bias"] = torch.zeros(3)


def _other_moment(payload: dict) -> None:
    payload["optimizer"]["state"][0]["exp_avg"] = torch.zeros(3, 512)


def _not_a_tensor(payload: dict) -> None:
    payload["model"]["fc.bias"] = 3


def _nan_rate(payload: dict) -> None:
    payload["optimizer"]["param_groups"][0]["eps"] = float("nan")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_nan_weight, "last.pt: tensor 'layer4.1.bn2.weight' holds 512 NaN and 0 infinite value(s) of 512"),
        (_nan_moment, "last.pt: optimiser state 'exp_avg' of 'fc.weight' holds 1 NaN"),
        (_other_head, "last.pt: key 'fc.weight' has shape (3, 512), expected (4, 512)"),
        (_other_moment, "last.pt: optimiser state 'exp_avg' of 'fc.weight' has shape (3, 512), expected (4, 512)"),
        (_nan_rate, "last.pt: optimiser parameter group 0 has eps = nan"),
        (_not_a_tensor, "last.pt: entry 'fc.bias' is a int, not a tensor"),
    ],
)
def test_resuming_a_checkpoint_of_other_shapes_or_non_finite_values_is_refused_by_name(
    edit: object, message: str, finished_run: Path, random_checkpoint: Path, tmp_path: Path, data: Path
) -> None:
    folder = _resume_copy(finished_run, tmp_path, edit)
    before = snapshot(folder)
    line = refused(start(data, folder, random_checkpoint, "--resume", "--epochs", "2"))
    assert message in line, line
    assert snapshot(folder) == before


def test_a_resumed_run_that_diverges_leaves_the_previous_run_as_it_was(
    finished_run: Path, random_checkpoint: Path, tmp_path: Path, data: Path
) -> None:
    """A finite but absurd rate in the saved optimiser (rates are recomputed from it) diverges in epoch 2."""

    def absurd_rate(payload: dict) -> None:
        for group in payload["optimizer"]["param_groups"]:
            group["base_lr"] = 1e30

    folder = _resume_copy(finished_run, tmp_path, absurd_rate)
    before = snapshot(folder)
    line = refused(start(data, folder, random_checkpoint, "--resume", "--epochs", "3"))
    assert re.search(r"training diverged (at|in) epoch 2\b", line), line
    assert snapshot(folder) == before


# --- 5. third-party failures: a full disk, memory, the data loader ----------------------------------------


@pytest.mark.parametrize(("write", "name"), [(4, "model.pth"), (5, "last.pt"), (7, "")])
def test_a_full_disk_is_one_line_and_the_folder_is_left_as_it_was(
    write: int, name: str, data: Path, out: Path, random_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes 1-3 are classes.txt and the CSVs, 4-6 epoch 1's model.pth, last.pt and finetune.json, 7 epoch 2's
    first checkpoint: torch.save writing the file itself said 'RuntimeError: unexpected pos'."""
    before = snapshot(out)
    fail_at_write(monkeypatch, write, ENOSPC)
    line = refused(start(data, out, random_checkpoint, "--epochs", "2"))
    assert "No space left on device: the disk is full" in line and "nothing half-written" in line, line
    assert f"{out / name}: not written" in line if name else re.search(r"(model\.pth|last\.pt): not written", line)
    assert snapshot(out) == before


def test_a_full_disk_in_a_resumed_run_leaves_the_previous_run_as_it_was(
    finished_run: Path, random_checkpoint: Path, tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _resume_copy(finished_run, tmp_path)
    before = snapshot(folder)
    fail_at_write(monkeypatch, 5, ENOSPC)  # classes.txt, the CSVs, then into epoch 2's checkpoints
    line = refused(start(data, folder, random_checkpoint, "--resume", "--epochs", "3"))
    assert "the disk is full" in line, line
    assert snapshot(folder) == before


def _address_space_after_import() -> int:
    """Bytes of address space a fresh interpreter holds once finetune's modules are imported (VmPeak)."""
    probe = "import torch, cv2, edgeres.cli.app, edgeres.train.finetune; print(open('/proc/self/status').read())"
    status = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return int(next(line for line in status.splitlines() if line.startswith("VmPeak:")).split()[1]) * 1024


def finetune_limited(limits: str, *args: object) -> str:
    """`edgeres finetune ARGS` in a shell with `limits` (ulimit options) set; its one `error:` line, after
    checking exit 2 and no traceback. SIGXFSZ is ignored, so a write past `ulimit -f` fails instead of killing."""
    shell = ["bash", "-c", f'trap "" XFSZ; ulimit {limits}; exec "$@"', "bash"]
    command = [*shell, sys.executable, "-m", "edgeres", "finetune", *map(str, args)]
    env = dict(os.environ, OMP_NUM_THREADS="1", EDGERES_DEBUG="0")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    return errors[0]


def test_a_real_file_size_limit_is_one_line(data: Path, out: Path, random_checkpoint: Path) -> None:
    """No injection: the kernel refuses the write past 4 MB (EFBIG; a ResNet18 checkpoint is 45 MB), as a full
    disk refuses it (ENOSPC)."""
    before = snapshot(out)
    line = finetune_limited("-f 4096", data, "-o", out, "--weights", random_checkpoint, *QUICK)
    assert f"{out / 'model.pth'}: not written (File too large)" in line, line
    assert snapshot(out) == before


@pytest.mark.parametrize(
    "extra",
    [
        ["--from-scratch", "--arch", "resnet50", "--size", "4000"],  # 32 GB for one image, 760 GB for the batch
        ["--from-scratch", "--size", "100000"],  # 20 TB for one image: OpenCV's resize failed first
    ],
)
def test_a_size_beyond_memory_is_refused_before_anything_is_written(extra: list[str], data: Path, out: Path) -> None:
    """In a process capped at 2 GB above its imports: were the estimate missing, the run fails there, instead of
    taking a shared machine's memory."""
    before = snapshot(out)
    cap_kb = (_address_space_after_import() + (2 << 30)) // 1024
    line = finetune_limited(f"-v {cap_kb}", data, "-o", out, *QUICK[2:], *extra)  # QUICK without its --arch
    assert re.search(r"training resnet50 on \d+ image\(s\) of \d+x\d+ at a time needs about .* of memory", line), line
    assert snapshot(out) == before


def test_torch_running_out_of_memory_mid_training_is_one_line(data: Path, out: Path, random_checkpoint: Path) -> None:
    """A real allocation failure (an address-space limit 1 GB above the imports; a 512 px step needs about 4 GB,
    which the up-front estimate, reading the machine's free memory, lets through): torch's 'DefaultCPUAllocator:
    can't allocate memory' was an internal error."""
    before = snapshot(out)
    cap_kb = (_address_space_after_import() + (1 << 30)) // 1024
    line = finetune_limited(f"-v {cap_kb}", data, "-o", out, "--weights", random_checkpoint, *QUICK, "--size", "512",
                            "--unfreeze", "all")  # fmt: skip
    assert "training epoch 1 ran out of memory (DefaultCPUAllocator: can't allocate memory" in line, line
    assert snapshot(out) == before


def test_an_image_whose_name_is_not_utf8_is_skipped_and_counted(
    data: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    """OpenCV 5.1 crashed the process (SIGSEGV) opening such a path; train.csv could not name it either."""
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    os.rename(os.fsencode(copy / "brick" / "000.jpg"), os.fsencode(copy / "brick") + b"/\xff.jpg")
    result = start(copy, tmp_path / "out", random_checkpoint, "--min-per-class", "5")
    assert result.exit_code == 0, result.output
    assert "1 unreadable image(s) skipped" in result.output
    skipped = json.loads((tmp_path / "out" / "finetune.json").read_text())["data"]["skipped"]
    assert [s["reason"] for s in skipped] == ["its path is not valid UTF-8"]


def _quick_options(checkpoint: Path, **changes: object) -> FinetuneOptions:
    base: dict[str, object] = dict(arch=Arch.RESNET18, weights=checkpoint, size=32, epochs=2, warmup_epochs=0,
                                   batch_size=8, min_per_class=5)  # fmt: skip
    return FinetuneOptions(**(base | changes))  # type: ignore[arg-type]


def test_an_image_that_vanishes_during_training_is_one_line_from_a_loader_process(
    data: Path, out: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    """An error in a DataLoader worker reaches the main process with the worker's traceback in its message."""
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    victims = sorted(copy.rglob("*.jpg"))

    def remove_all(epoch: int, step: int) -> None:
        for path in victims:
            path.unlink(missing_ok=True)

    before = snapshot(out)
    with pytest.raises(UserInputError) as caught:
        finetune(FinetuneData(copy), out, _quick_options(random_checkpoint), workers=1,
                 hooks=TrainHooks(on_step=remove_all))  # fmt: skip
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message, message
    assert re.search(r"\.jpg: image file not found$", message), message
    assert snapshot(out) == before


def test_an_interrupt_before_the_first_epoch_lands_leaves_the_folder_as_it_was(
    data: Path, out: Path, random_checkpoint: Path
) -> None:
    """Only a finished epoch is worth keeping: classes.txt and the CSVs alone are not a run."""

    def interrupt(epoch: int, step: int) -> None:
        raise KeyboardInterrupt

    before = snapshot(out)
    with pytest.raises(KeyboardInterrupt):
        finetune(FinetuneData(data), out, _quick_options(random_checkpoint), hooks=TrainHooks(on_step=interrupt))
    assert snapshot(out) == before


def _png_claiming(width: int, height: int) -> bytes:
    """A complete PNG whose header claims width x height (its pixel data is a few bytes)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idat + chunk(b"IEND", b"")


def test_a_picture_claiming_100000x100000_is_skipped_and_counted(
    data: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    """OpenCV 5 raises cv2.error on such a header; finetune must skip the file as unreadable, naming it."""
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    (copy / "brick" / "bomb.png").write_bytes(_png_claiming(100_000, 100_000))
    result = start(copy, tmp_path / "out", random_checkpoint)
    assert result.exit_code == 0, result.output
    assert "1 unreadable image(s) skipped" in result.output
    skipped = json.loads((tmp_path / "out" / "finetune.json").read_text())["data"]["skipped"]
    assert [Path(s["path"]).name for s in skipped] == ["bomb.png"]


# --- 6. outputs mixed with inputs -------------------------------------------------------------------------


def test_an_output_inside_a_training_class_folder_is_refused_naming_the_class(
    data: Path, random_checkpoint: Path
) -> None:
    before = snapshot(data)
    line = refused(start(data, data / "astronaut" / "run", random_checkpoint))
    assert "inside class folder 'astronaut' of the training data" in line and "curves.png" in line, line
    assert snapshot(data) == before


def test_an_output_equal_to_the_training_folder_is_refused(data: Path, random_checkpoint: Path) -> None:
    before = snapshot(data)
    assert "the output folder is the training data folder" in refused(start(data, data, random_checkpoint))
    assert snapshot(data) == before


def test_an_output_inside_the_validation_folder_is_refused(photo_task: tuple[Path, Path], random_checkpoint: Path,
                                                           tmp_path: Path) -> None:  # fmt: skip
    train, val = photo_task
    before = snapshot(val)
    line = refused(start(train, val / "grass" / "out", random_checkpoint, "--val", val))
    assert "inside class folder 'grass' of the validation data" in line, line
    assert snapshot(val) == before


def test_an_output_reached_through_a_link_into_the_data_is_refused(
    data: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    (tmp_path / "shortcut").symlink_to(data / "coffee")
    before = snapshot(data)
    assert "inside class folder 'coffee'" in refused(start(data, tmp_path / "shortcut" / "out", random_checkpoint))
    assert snapshot(data) == before


def _csv_task(data: Path, folder: Path, csv_name: str, names_name: str) -> tuple[Path, Path]:
    folder.mkdir(exist_ok=True)
    rows = ["path,label"] + [f"{p},{p.parent.name}" for p in sorted(data.rglob("*.jpg"))]
    (folder / csv_name).write_text("\n".join(rows) + "\n")
    (folder / names_name).write_text("astronaut\nbrick\ncoffee\ngrass\n")
    return folder / csv_name, folder / names_name


@pytest.mark.parametrize("overwritten", ["train.csv", "classes.txt", "model.pth"])
def test_an_input_that_is_one_of_the_runs_own_outputs_is_refused(
    overwritten: str, data: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    csv_name = "train.csv" if overwritten == "train.csv" else "labels.csv"
    names_name = "classes.txt" if overwritten == "classes.txt" else "names.txt"
    labels, names = _csv_task(data, out, csv_name, names_name)
    weights = out / "model.pth" if overwritten == "model.pth" else random_checkpoint
    if overwritten == "model.pth":
        shutil.copy(random_checkpoint, weights)
    before = snapshot(out)
    line = refused(invoke("finetune", labels, "--classes", names, "-o", out, "--weights", weights, *QUICK))
    assert f"is the run's own output {out / overwritten}" in line, line
    assert snapshot(out) == before


@pytest.mark.parametrize(
    "name",
    ["two\nlines", "carriage\rreturn", "line\u2028separator", "next\x85line", " ", " padded", "semi;colon",
     "tab\there"],
)  # fmt: skip
def test_a_class_folder_that_cannot_be_one_line_of_classes_txt_is_refused_by_name(
    name: str, data: Path, out: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    (copy / "grass").rename(copy / name)
    before = snapshot(out)
    line = refused(start(copy, out, random_checkpoint))
    assert f"class folder {name!r} cannot be one line of classes.txt" in line, line
    assert snapshot(out) == before


def test_a_class_folder_named_in_bytes_that_are_not_utf8_is_refused(
    data: Path, out: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    os.rename(os.fsencode(copy / "grass"), os.fsencode(copy) + b"/gr\xffss")
    before = snapshot(out)
    line = refused(start(copy, out, random_checkpoint))
    assert "class folder 'gr\\udcffss' cannot be one line of classes.txt" in line, line
    assert snapshot(out) == before


# --- one process owns the output folder ------------------------------------------------------------------------


def test_a_second_finetune_into_a_folder_being_written_is_refused_and_the_first_finishes(
    data: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    """Real processes; the first is stopped (SIGSTOP) once its classes.txt, written inside the lock, is on disk."""
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "run"
    args = [sys.executable, "-m", "edgeres", "finetune", str(data), "-o", str(folder), "--weights",
            str(random_checkpoint), *QUICK]  # fmt: skip
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (folder / "classes.txt").exists():
            assert first.poll() is None, first.communicate()[0]
            assert time.monotonic() < deadline, "the first run never wrote classes.txt"
            time.sleep(0.005)
        os.kill(first.pid, signal.SIGSTOP)
        during = snapshot(folder)
        second = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        errors = [line for line in second.stdout.splitlines() if line.startswith("error:")]
        assert second.returncode == 2 and len(errors) == 1, second.stdout
        assert f"process {first.pid} is writing it now" in errors[0] and "Traceback" not in second.stdout
        assert snapshot(folder) == during
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert first.wait(300) == 0, first.communicate()[0]
    assert (folder / "model.pth").is_file()


# --- resuming takes the run's own options ---------------------------------------------------------------------


def test_resume_takes_the_runs_options_and_compares_only_those_typed(
    data: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    assert start(data, folder, random_checkpoint).exit_code == 0  # resnet18, size 32, 1 epoch, no warm-up
    resumed = invoke("finetune", data, "-o", folder, "--resume", "--epochs", "2", "--workers", "0")
    assert resumed.exit_code == 0, resumed.output
    report = json.loads((folder / "finetune.json").read_text())
    assert report["options"]["arch"] == "resnet18" and report["options"]["size"] == 32
    assert report["options"]["epochs"] == 2 and report["resumed_after_epoch"] == 1
    before = snapshot(folder)
    line = refused(invoke("finetune", data, "-o", folder, "--resume", "--epochs", "3", "--lr", "0.5"))
    assert "lr" in line and "0.5" in line
    assert snapshot(folder) == before
