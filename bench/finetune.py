"""Training throughput on the CPU: edgeres finetune's training step vs a plain PyTorch loop doing the same work.

Both sides train the same ResNet (same initial weights, every stage trainable, as after `--unfreeze all`'s
warm-up) on the same batches of 224x224 inputs with AdamW and label-smoothed cross-entropy; edgeres's side is
its own code path (edgeres.train.policy: freezing and the two-group optimiser; edgeres.train.trainer.train_step),
the plain side the textbook loop. Rounds alternate between the two so that a machine's drift hits both alike;
the median round counts. The data pipeline (decode, augment, encode: edgeres.train.augment) is timed apart,
one process, on the shipped photographs, to show whether it or the step is the bottleneck.

    .venv/bin/python bench/finetune.py                      # ResNet50, batch 16, 224, 5 rounds of 4 steps
    .venv/bin/python bench/finetune.py --steps 1 --rounds 1 --batch 2 --arch resnet18   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from edgeres.frames.images import default_calibration_dir, list_images  # noqa: E402
from edgeres.model.arch import Arch  # noqa: E402
from edgeres.model.resnet import ResNet, build_model  # noqa: E402
from edgeres.train.augment import SampleTransform  # noqa: E402
from edgeres.train.dataset import Sample  # noqa: E402
from edgeres.train.options import FinetuneOptions, Unfreeze  # noqa: E402
from edgeres.train.policy import apply_freezing, make_optimizer, trainable_stages  # noqa: E402
from edgeres.train.trainer import train_step  # noqa: E402


def edgeres_side(arch: Arch, classes: int, options: FinetuneOptions):  # type: ignore[no-untyped-def]
    model = build_model(arch, classes, seed=0)
    apply_freezing(model, trainable_stages(options, options.warmup_epochs))
    optimizer = make_optimizer(model, options)
    criterion = nn.CrossEntropyLoss(label_smoothing=options.label_smoothing)

    def step(inputs: torch.Tensor, labels: torch.Tensor) -> None:
        train_step(model, optimizer, criterion, inputs, labels)

    return step


def plain_side(arch: Arch, classes: int, options: FinetuneOptions):  # type: ignore[no-untyped-def]
    model: ResNet = build_model(arch, classes, seed=0).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)

    def step(inputs: torch.Tensor, labels: torch.Tensor) -> None:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs), labels, label_smoothing=options.label_smoothing)
        loss.backward()
        optimizer.step()

    return step


def timed(step, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:  # type: ignore[no-untyped-def]
    """Images per second over `batches`."""
    tick = time.perf_counter()
    for inputs, labels in batches:
        step(inputs, labels)
    return sum(len(labels) for _, labels in batches) / (time.perf_counter() - tick)


def pipeline_rate(size: int, count: int) -> float:
    """Training samples per second through decode + augmentation + build's encoder, one process."""
    paths = list_images(default_calibration_dir())
    transform = SampleTransform(size, None, seed=0, train=True)
    tick = time.perf_counter()
    for index in range(count):
        transform(Sample(paths[index % len(paths)], 0), epoch=0, index=index)
    return count / (time.perf_counter() - tick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=Arch.RESNET50.value)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--classes", type=int, default=51)
    parser.add_argument("--steps", type=int, default=4, help="training steps per round and side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    arch = Arch(args.arch)
    options = FinetuneOptions(arch=arch, unfreeze=Unfreeze.ALL, from_scratch=True, size=args.size,
                              batch_size=args.batch)  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    shape = (args.batch, 3, args.size, args.size)
    batches = [
        (torch.randn(shape, generator=generator), torch.randint(0, args.classes, (args.batch,), generator=generator))
        for _ in range(args.steps)
    ]
    sides = {"edgeres": edgeres_side(arch, args.classes, options), "plain": plain_side(arch, args.classes, options)}
    for step in sides.values():  # warm-up: allocator, kernels, optimiser state
        step(*batches[0])
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, step in sides.items():
            rates[name].append(timed(step, batches))
    result = {
        "arch": arch.value, "size": args.size, "batch": args.batch, "steps": args.steps, "rounds": args.rounds,
        "threads": args.threads,
        "edgeres_images_per_s": statistics.median(rates["edgeres"]),
        "plain_images_per_s": statistics.median(rates["plain"]),
        "rounds_images_per_s": rates,
        "data_pipeline_images_per_s": pipeline_rate(args.size, max(8, args.batch)),
    }  # fmt: skip
    result["ratio_edgeres_to_plain"] = result["edgeres_images_per_s"] / result["plain_images_per_s"]
    print(f"{arch.value} {args.size}x{args.size}, batch {args.batch}, {args.threads} thread(s), "
          f"median of {args.rounds} rounds x {args.steps} steps:")  # fmt: skip
    print(f"  edgeres training step   {result['edgeres_images_per_s']:8.2f} images/s")
    print(f"  plain PyTorch loop      {result['plain_images_per_s']:8.2f} images/s")
    print(f"  ratio edgeres / plain   {result['ratio_edgeres_to_plain']:8.3f}")
    print(f"  data pipeline (1 proc)  {result['data_pipeline_images_per_s']:8.2f} images/s (decode+augment+encode)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
