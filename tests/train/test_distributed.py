"""`edgeres finetune` as several processes (DistributedDataParallel over gloo on the CPU, launched by torchrun).

The equivalence: with BatchNorm frozen (a warm-up epoch trains the head alone), two processes of batch b step
exactly as one process of batch 2b does: the same draws in each global batch, the same augmentation per draw,
gradients averaged. Then a real 2-process run learns the photo task, only rank 0 writes, --resume continues
it, and SIGTERM to the launcher keeps the last good checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from edgeres.errors import UserInputError
from edgeres.train.checkpoints import MODEL_NAME, RESUME_NAME, ResumeState
from edgeres.train.distributed import launched_by_torchrun, shard, unshard

QUICK = ["--arch", "resnet18", "--size", "32", "--workers", "0", "--device", "cpu", "--seed", "3"]
SINGLE_FILES = {"model.pth", "last.pt", "classes.txt", "train.csv", "val.csv", "finetune.json", "curves.png",
                "report.html"}  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return env | {"OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "MASTER_ADDR": "127.0.0.1"}


def torchrun(processes: int, *args: str) -> subprocess.CompletedProcess[str]:
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={processes}",
                "--master-addr=127.0.0.1", f"--master-port={free_port()}"]  # fmt: skip
    command = [*launcher, "-m", "edgeres", "finetune", *args]
    return subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=600)


def edgeres(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgeres", "finetune", *args], capture_output=True, text=True,
                          env=environment(), timeout=600)  # fmt: skip


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("count", [1, 7, 12, 13])
def test_shards_of_a_global_batch_are_that_batch(world: int, count: int) -> None:
    draws = list(range(count))
    shares = [shard(draws, rank, world, pad=True) for rank in range(world)]
    assert len({len(share) for share in shares}) == 1  # every rank takes as many steps
    batch = 2
    padded = draws + [draws[i % count] for i in range(-count % world)]
    for step in range(-(-len(shares[0]) // batch)):
        mine = sorted(x for share in shares for x in share[step * batch : (step + 1) * batch])
        assert mine == sorted(padded[step * batch * world : (step + 1) * batch * world])
    plain = [shard(draws, rank, world, pad=False) for rank in range(world)]
    assert unshard(plain) == draws  # validation: every sample once, back in order


def test_the_launcher_is_recognised_by_its_environment() -> None:
    names = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "1"}
    assert launched_by_torchrun(names) and not launched_by_torchrun({"RANK": "0"})


def test_devices_relaunches_only_the_finetune_command_line() -> None:
    from edgeres.cli.finetune import relaunch_arguments

    assert relaunch_arguments(["finetune", "d", "--devices", "2", "-o", "o"]) == ["finetune", "d", "-o", "o"]
    assert relaunch_arguments(["finetune", "d", "--devices=4"]) == ["finetune", "d"]
    with pytest.raises(UserInputError, match="run torchrun yourself"):
        relaunch_arguments(["-m", "pytest"])


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / MODEL_NAME, weights_only=True)


def test_two_processes_of_batch_b_step_as_one_process_of_batch_2b(
    photo_task: tuple[Path, Path], random_checkpoint: Path, tmp_path: Path
) -> None:
    train = photo_task[0]
    common = [str(train), "--weights", str(random_checkpoint), *QUICK, "--epochs", "1", "--warmup-epochs", "1"]
    one = edgeres(*common, "-o", str(tmp_path / "one"), "--batch", "16")
    assert one.returncode == 0, one.stdout + one.stderr
    two = torchrun(2, *common, "-o", str(tmp_path / "two"), "--batch", "8")
    assert two.returncode == 0, two.stdout + two.stderr
    record = json.loads((tmp_path / "two" / "finetune.json").read_text())
    assert record["split"]["train"] % 2 == 0  # no padding draw: the two runs see the same draws
    assert record["distributed"] == {"world_size": 2, "backend": "gloo", "global_batch": 16}
    single, double = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert single.keys() == double.keys() and "fc.weight" in double  # torchvision's names, not DDP's "module."
    moved = (single["fc.weight"] - torch.load(random_checkpoint, weights_only=True)["fc.weight"][:4]).abs().max()
    assert moved > 1e-3  # the head trained
    for name, tensor in single.items():
        assert torch.allclose(tensor.float(), double[name].float(), atol=1e-5, rtol=1e-4), name
    epochs_one = json.loads((tmp_path / "one" / "finetune.json").read_text())["epochs"][0]
    epochs_two = record["epochs"][0]
    assert epochs_two["val_accuracy"] == epochs_one["val_accuracy"]
    assert epochs_two["train_loss"] == pytest.approx(epochs_one["train_loss"], rel=1e-4)


Run = tuple[Path, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def two_process_run(photo_task: tuple[Path, Path], random_checkpoint: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> Run:  # fmt: skip
    """`edgeres finetune --devices 2`: the relaunch through torch.distributed.run, learning the photo task."""
    train, val = photo_task
    out = tmp_path_factory.mktemp("ddp") / "run"
    done = edgeres(str(train), "--val", str(val), "-o", str(out), "--weights", str(random_checkpoint), *QUICK,
                   "--size", "64", "--epochs", "4", "--warmup-epochs", "1", "--unfreeze", "all", "--lr", "2e-3",
                   "--backbone-lr-scale", "1.0", "--batch", "8", "--devices", "2")  # fmt: skip
    return out, done


def test_devices_2_learns_and_only_rank_0_writes_or_prints(two_process_run: Run) -> None:
    out, done = two_process_run
    assert done.returncode == 0, done.stdout + done.stderr
    assert {p.name for p in out.iterdir()} == SINGLE_FILES
    assert done.stdout.count("best epoch") == 1 and done.stdout.count(f"wrote {out / MODEL_NAME}") == 1
    assert "distributed: 2 processes (gloo), batch 8 per process, global batch 16" in done.stdout
    record = json.loads((out / "finetune.json").read_text())
    assert record["val_accuracy"] >= 0.5, record["epochs"]  # chance is 0.25 (tests/train/test_learning.py)
    assert len(record["validation_predictions"]) == record["split"]["val"]  # each sample counted once


def test_resume_continues_a_two_process_run(two_process_run: Run, photo_task: tuple[Path, Path],
                                            random_checkpoint: Path) -> None:  # fmt: skip
    out, _ = two_process_run
    train, val = photo_task
    done = torchrun(2, str(train), "--val", str(val), "-o", str(out), "--weights", str(random_checkpoint), *QUICK,
                    "--size", "64", "--epochs", "5", "--resume")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((out / "finetune.json").read_text())
    assert record["resumed_after_epoch"] == 4 and [e["epoch"] for e in record["epochs"]] == [1, 2, 3, 4, 5]


def test_sigterm_to_the_launcher_keeps_the_last_good_checkpoint(
    photo_task: tuple[Path, Path], random_checkpoint: Path, tmp_path: Path
) -> None:
    args = [sys.executable, "-m", "edgeres", "finetune", str(photo_task[0]), "-o", str(tmp_path), "--weights",
            str(random_checkpoint), *QUICK, "--epochs", "50", "--batch", "8", "--devices", "2"]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment())
    deadline = time.monotonic() + 180
    while not (tmp_path / RESUME_NAME).exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert (tmp_path / RESUME_NAME).exists(), process.communicate(timeout=60)[0]
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0, output
    assert ResumeState.load(tmp_path / RESUME_NAME).epochs_done >= 1
    assert torch.load(tmp_path / MODEL_NAME, weights_only=True)
    assert not list(tmp_path.glob(".edgeres-*"))  # no half-written file


def test_sync_bn_is_refused_where_it_cannot_run(photo_task: tuple[Path, Path], random_checkpoint: Path,
                                                tmp_path: Path) -> None:  # fmt: skip
    """SyncBatchNorm is CUDA-only: on the CPU, alone or as 2 gloo processes, the flag is one line."""
    args = [str(photo_task[0]), "-o", str(tmp_path / "o"), "--weights", str(random_checkpoint), *QUICK, "--sync-bn"]
    for done in (edgeres(*args), torchrun(2, *args)):
        assert done.returncode != 0
        assert "error: --sync-bn: SyncBatchNorm needs several processes on CUDA devices" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr.split("error: --sync-bn")[0]
    assert not (tmp_path / "o").exists()
