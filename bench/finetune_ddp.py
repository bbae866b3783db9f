"""Training images/s of `edgeres finetune` as 1 process and as N processes (--devices N, gloo on the CPU).

Both runs train the same photo task (made from the shipped photographs, as tests/train does) with the same
global batch: one process with batch N x b, N processes with batch b each. Every stage trains after a
one-epoch warm-up. The script reads the img/s each run's epoch lines print and shows the ratio. On a CPU the N
processes share the machine's cores (each torchrun process gets OMP_NUM_THREADS=1), so this measures the
launcher and the gradient exchange, not a speed-up a machine with N GPUs would give.

    .venv/bin/python bench/finetune_ddp.py                  # 2 processes, ResNet18 at 64x64, 3 epochs
    .venv/bin/python bench/finetune_ddp.py --processes 2 --size 96 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.train.conftest import write_random_checkpoint, write_task  # noqa: E402


def run(processes: int, batch: int, folder: Path, data: Path, weights: Path, args: argparse.Namespace) -> float:
    """Median images/s of the epochs after the warm-up."""
    out = folder / f"run{processes}"
    command = [sys.executable, "-m", "edgeres", "finetune", str(data), "-o", str(out), "--weights", str(weights),
               "--arch", "resnet18", "--size", str(args.size), "--epochs", str(args.epochs), "--warmup-epochs", "1",
               "--unfreeze", "all", "--batch", str(batch), "--device", "cpu", "--workers", "0"]  # fmt: skip
    if processes > 1:
        command += ["--devices", str(processes)]
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo")
    subprocess.run(command, check=True, capture_output=True, env=env)
    epochs = json.loads((out / "finetune.json").read_text())["epochs"]
    return statistics.median(epoch["images_per_s"] for epoch in epochs[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8, help="per process")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        train, _ = write_task(folder / "task")
        weights = write_random_checkpoint(folder / "random.pth")
        one = run(1, args.batch * args.processes, folder, train, weights, args)
        many = run(args.processes, args.batch, folder, train, weights, args)
    print(f"cores: {os.cpu_count()}; ResNet18 {args.size}x{args.size}, global batch {args.batch * args.processes}")
    print(f"1 process:  {one:.1f} images/s")
    print(f"{args.processes} processes: {many:.1f} images/s ({many / one:.2f}x)")


if __name__ == "__main__":
    main()
