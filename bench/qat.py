"""PTQ against label-free QAT (`build --int8 --qat-epochs N`) on a model edgeres trains here, side by side.

The model: a ResNet18 fine-tuned by edgeres on the photo task the tests use (4 classes made from the shipped
photographs, crops at 64x64, from a random checkpoint), exported at 64x64. Each variant is a real build on the
same calibration samples (train.csv) and held-out set (val.csv); the script prints each one's logits SQNR against
FP32, top-1 agreement and the disagreement count for the TensorRT Q/DQ model and the CPU twin, the accuracy with
its 95% interval, and the time QAT took.

    .venv/bin/python bench/qat.py                              # QAT 3 and 10 epochs at the default rate
    .venv/bin/python bench/qat.py --epochs 5 --lrs 1e-6,1e-5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edgeres.flow.options import DEFAULT_QAT_LR, BuildOptions  # noqa: E402
from edgeres.flow.orchestrator import build  # noqa: E402
from edgeres.quantize.histogram import CalibAlgo  # noqa: E402
from edgeres.report.stats import from_fraction  # noqa: E402
from edgeres.train.finetune import FinetuneData, finetune  # noqa: E402
from tests.train.conftest import export_at, write_random_checkpoint, write_task  # noqa: E402
from tests.train.test_learning import SIZE, learning_options  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", default="3,10", help="QAT epochs to try, comma-separated")
    parser.add_argument("--lrs", default=str(DEFAULT_QAT_LR), help="QAT learning rates to try, comma-separated")
    parser.add_argument("--calib-size", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        train, val = write_task(folder / "task")
        checkpoint = write_random_checkpoint(folder / "random.pth")
        run = finetune(FinetuneData(train, val=val), folder / "ft", learning_options(checkpoint))
        onnx = export_at(run.model, len(run.classes), SIZE, folder / "fp32.onnx")
        variants = [(0, DEFAULT_QAT_LR)] + [(int(e), float(lr)) for e in args.epochs.split(",")
                                            for lr in args.lrs.split(",")]  # fmt: skip
        print(f"ResNet18 {SIZE}x{SIZE}, fine-tuned: validation accuracy {run.val_accuracy:.1%}")
        print(f"{'variant':<24} {'model':<8} {'SQNR dB':>8} {'agree':>7} {'differ':>6} {'accuracy (95% CI)':<28} time")
        for epochs, lr in variants:
            options = BuildOptions(onnx=onnx, calib=run.train_csv, eval_csv=run.val_csv, calib_algo=CalibAlgo.MSE,
                                   calib_size=args.calib_size, profile_iterations=0, build_engine=False,
                                   qat_epochs=epochs, qat_lr=lr)  # fmt: skip
            tick = time.perf_counter()
            result = build(options, folder / f"build_{epochs}_{lr}")
            seconds = time.perf_counter() - tick
            label = "PTQ" if epochs == 0 else f"QAT {epochs} ep, lr {lr:g}"
            for role, report in result.fidelity.items():
                agreement = from_fraction(report.top1_agreement, report.samples)
                accuracy = report.accuracy
                shown = "—" if accuracy is None else from_fraction(accuracy.candidate_top1, report.samples).describe()
                model = "Q/DQ" if role.value == "int8_tensorrt" else "twin"
                print(f"{label:<24} {model:<8} {report.sqnr_db:8.2f} {agreement.value:7.1%} "
                      f"{report.samples - agreement.hits:6d} {shown:<28} {seconds:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
