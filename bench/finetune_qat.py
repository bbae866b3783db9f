"""PTQ against QAT with labels (`finetune --qat-epochs N`) and QAT distilled from the float model, side by side.

The model: a ResNet18 fine-tuned by edgeres on the photo task the tests use (4 classes made from the shipped
photographs, crops at 64x64, from a random checkpoint), once on RGB input and once through a YUYV camera
front-end. PTQ is a build of the fine-tuned model; QAT and QAT-distilled are builds of the model_qat.onnx that
`finetune --qat-epochs` writes (at its own trained scales). Every build uses the same calibration (train.csv) and
evaluation set (val.csv). Printed per variant and model (TensorRT Q/DQ, CPU twin): top-1 accuracy with its 95%
interval, the samples whose prediction differs from PTQ's (paired), logits SQNR against the fine-tuned FP32 model,
the parity gate's worst node, and the QAT time.

    .venv/bin/python bench/finetune_qat.py                    # 5 QAT epochs at the default rate
    .venv/bin/python bench/finetune_qat.py --epochs 3 --lr 3e-5 --inputs rgb
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from edgeres.artifacts.onnx import load_onnx  # noqa: E402
from edgeres.flow.finetune_qat import QAT_MODEL_NAME, QatRequest, finetune_qat  # noqa: E402
from edgeres.flow.options import BuildOptions  # noqa: E402
from edgeres.flow.orchestrator import build  # noqa: E402
from edgeres.frames.contract import InputContract  # noqa: E402
from edgeres.quantize.fidelity import Kernels, model_logits, sqnr_db  # noqa: E402
from edgeres.report.stats import from_fraction  # noqa: E402
from edgeres.samples.encoding import encoder_for  # noqa: E402
from edgeres.samples.holdout import evaluation_holdout  # noqa: E402
from edgeres.train.finetune import FinetuneData, finetune  # noqa: E402
from edgeres.train.options import DEFAULT_QAT_LR  # noqa: E402
from tests.train.conftest import export_at, write_random_checkpoint, write_task  # noqa: E402
from tests.train.test_learning import CAMERA, SIZE, learning_options  # noqa: E402


def val_logits(model_path: Path, val_csv: Path, classes: int, contract: InputContract | None,
               kernels: Kernels = Kernels.RUNTIME) -> np.ndarray:  # fmt: skip
    """The logits of a model on every row of val.csv, encoded as the build encodes them."""
    model = load_onnx(model_path)
    held = evaluation_holdout(val_csv, classes).load(encoder_for(model, contract), 16)
    return np.concatenate(model_logits(model, [x for x, _ in held.batches], kernels))


def logits_sqnr(reference: np.ndarray, other: np.ndarray) -> float:
    return sqnr_db(float(np.sum(reference**2)), float(np.sum((reference - other) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=DEFAULT_QAT_LR)
    parser.add_argument("--inputs", default="rgb,yuyv", help="rgb, yuyv or both, comma-separated")
    parser.add_argument("--val-per-class", type=int, default=30, help="validation crops per class")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        train, val = write_task(folder / "task", val_per_class=args.val_per_class)
        checkpoint = write_random_checkpoint(folder / "random.pth")
        print(f"{'input':<6} {'variant':<14} {'model':<6} {'accuracy (95% CI)':<26} {'vs PTQ':>6} {'SQNR dB':>8} "
              f"{'parity dB':>9} QAT time")  # fmt: skip
        for kind in args.inputs.split(","):
            contract = CAMERA if kind == "yuyv" else None
            options = learning_options(checkpoint, contract)
            run = finetune(FinetuneData(train, val=val), folder / f"ft_{kind}", options)
            fp32 = export_at(run.model, len(run.classes), SIZE, folder / f"fp32_{kind}.onnx", contract)
            sources: dict[str, tuple[Path, float | None, float]] = {"PTQ": (fp32, None, 0.0)}
            for distill in (False, True):
                label = "QAT-distilled" if distill else "QAT"
                copy = folder / f"ft_{kind}_{label}"
                shutil.copytree(run.outdir, copy)
                tick = time.perf_counter()
                done = finetune_qat(replace(run, outdir=copy, model=copy / "model.pth", train_csv=copy / "train.csv",
                                            val_csv=copy / "val.csv"), options,
                                    QatRequest(args.epochs, args.lr, distill), resume=False)  # fmt: skip
                sources[label] = (copy / QAT_MODEL_NAME, done.record["parity"]["sqnr_db"], time.perf_counter() - tick)
            baseline: dict[str, np.ndarray] = {}
            original = val_logits(fp32, run.val_csv, len(run.classes), contract)  # the fine-tuned float model
            for label, (onnx_path, parity, seconds) in sources.items():
                built = BuildOptions(onnx=onnx_path, calib=run.train_csv, eval_csv=run.val_csv, profile_iterations=0,
                                     build_engine=False)  # fmt: skip
                result = build(built, folder / f"b_{kind}_{label}")
                for role, report in result.fidelity.items():
                    kernels = Kernels.REFERENCE if role.value == "int8_tensorrt" else Kernels.RUNTIME
                    logits = val_logits(result.artifacts[role], run.val_csv, len(run.classes), contract, kernels)
                    top1 = logits.argmax(1)
                    baseline.setdefault(role.value, top1)
                    accuracy = report.accuracy
                    shown = "—"
                    if accuracy is not None:
                        shown = from_fraction(accuracy.candidate_top1, report.samples).describe()
                    model = "Q/DQ" if role.value == "int8_tensorrt" else "twin"
                    differ = int(np.sum(top1 != baseline[role.value]))
                    gate = "—" if parity is None else f"{parity:.0f}"
                    sqnr = logits_sqnr(original, logits)
                    print(f"{kind:<6} {label:<14} {model:<6} {shown:<26} {differ:6d} {sqnr:8.2f} "
                          f"{gate:>9} {seconds:.0f} s")  # fmt: skip
            print(f"{kind:<6} FP32 validation accuracy {run.val_accuracy:.1%} on {run.val_samples} images")


if __name__ == "__main__":
    main()
