"""Fine-tuning on several processes with PyTorch's own engine: DistributedDataParallel, launched by `torchrun`.

edgeres adds no launcher or rendezvous of its own. `torchrun --nproc-per-node N -m edgeres finetune ...` (or
`--nnodes ... --rdzv-...` across machines) sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address in each
process's environment; `edgeres finetune --devices N` runs exactly that on one machine (torch.distributed.run).

What each rank does (edgeres.train.trainer):
- the epoch's draw order comes from (seed, epoch) alone, the same on every rank, class-balanced or not; rank r
  takes every world-th draw from position r (what torch's DistributedSampler does to its indices), padded with
  the first draws so every rank takes as many steps. Rank r's k-th batch of b plus the others' k-th batches
  are exactly the draws a single process with batch world x b takes as its k-th batch;
- a draw's augmentation is seeded by its position in that global order, so no two ranks repeat one and a
  distributed run augments as a single process would;
- DDP averages the gradients, so the global batch's mean loss is what the step follows;
- validation: each rank takes its share of the samples once (no padding), and their predictions and summed
  losses are gathered, so every sample is counted exactly once;
- the best epoch and early stopping are decided on rank 0 and broadcast; only rank 0 writes a file or prints.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from edgeres.errors import UserInputError

T = TypeVar("T")
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
GROUP_TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job."""

    rank: int
    world_size: int
    local_rank: int
    backend: str  # "nccl" on CUDA, "gloo" on the CPU

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self, batch_size: int) -> str:
        return (
            f"distributed: {self.world_size} processes ({self.backend}), batch {batch_size} per process, global "
            f"batch {batch_size * self.world_size}; the learning rate is used as given, not scaled with the "
            "global batch"
        )


def launched_by_torchrun(environ: dict[str, str] | None = None) -> bool:
    """True inside a process torchrun started (its rank and world are in the environment)."""
    env = os.environ if environ is None else environ
    return all(name in env for name in LAUNCHER_VARIABLES)


def _whole(env: dict[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise UserInputError(f"environment {name}={env[name]!r}: not a whole number (torchrun sets it)") from None


def join(device: torch.device) -> tuple[Distributed, torch.device]:
    """Join the torchrun job this process belongs to: NCCL on CUDA (each process its LOCAL_RANK's GPU), gloo on
    the CPU. Returns where this process trains."""
    env = dict(os.environ)
    rank, world, local = _whole(env, "RANK"), _whole(env, "WORLD_SIZE"), _whole(env, "LOCAL_RANK")
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise UserInputError(f"LOCAL_RANK {local}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=GROUP_TIMEOUT)
    return Distributed(rank, world, local, backend), device


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(draws: Sequence[T], rank: int, world: int, pad: bool) -> list[T]:
    """Rank `rank`'s share: every `world`-th draw from position `rank`; with `pad`, the first draws repeated so
    every rank has as many (the steps of DDP must match)."""
    items = list(draws)
    if pad and items:
        items += [items[i % len(items)] for i in range(-len(items) % world)]
    return items[rank::world]


def unshard(shares: Sequence[Sequence[T]]) -> list[T]:
    """The inverse of `shard` without padding: rank r's i-th item back at position i * world + r."""
    world = len(shares)
    total = sum(len(share) for share in shares)
    return [shares[position % world][position // world] for position in range(total)]


def gathered(value: T, group: Distributed | None) -> list[T]:
    """`value` from every rank, in rank order (just `[value]` in a single process)."""
    if group is None:
        return [value]
    values: list[Any] = [None] * group.world_size
    dist.all_gather_object(values, value)
    return values


def summed(value: float, group: Distributed | None) -> float:
    """The sum of `value` over the ranks (float64)."""
    if group is None:
        return value
    total = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(total)
    return float(total.item())


def from_main(value: T, group: Distributed | None) -> T:
    """Rank 0's `value` on every rank."""
    if group is None:
        return value
    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@contextmanager
def main_holds(lock: AbstractContextManager[Any], group: Distributed | None) -> Iterator[None]:
    """Rank 0 enters `lock` (the output folder's); every rank learns whether it could, so a refusal there ends
    every rank with the same line instead of leaving them waiting for rank 0."""
    if group is None:
        with lock:
            yield
        return
    held = lock if group.is_main else nullcontext()
    try:
        held.__enter__()
    except UserInputError as exc:
        from_main(str(exc), group)
        raise
    refusal = from_main(None, group)
    if refusal is not None:
        raise UserInputError(refusal)
    try:
        yield
    except BaseException as exc:
        if not held.__exit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        held.__exit__(None, None, None)


def relaunch(processes: int, arguments: Sequence[str]) -> int:
    """Run `edgeres <arguments>` as `processes` processes on this machine through torch.distributed.run (what
    `torchrun --standalone --nproc-per-node N -m edgeres ...` does) and return its exit code. Ctrl-C and
    SIGTERM reach the launcher, which stops every process (each keeps its last good checkpoint)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "edgeres", *arguments]  # fmt: skip
    child = subprocess.Popen(command, start_new_session=True)

    def forward(number: int, _frame: object) -> None:
        child.send_signal(number)

    previous = {number: signal.signal(number, forward) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
