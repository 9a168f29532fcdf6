"""Lung segmentation training on real CXRs: Res-CR-Net from scratch, and fine-tuning the published weights.

Data: ../shared/data/v7_covid_lungs (300 training and 60 validation COVID-19 CXRs with human V7 lung masks, the
annotation protocol of CXR-Net's "V7" Module 1). Images go through the authors' preparation
(``recipe("cxrnet")``: bilinear resize to 300×340, 8-bit global histogram equalization, /255); masks become the
two channels ``[lungs, non_lungs]`` Res-CR-Net predicts. The metric is the mean over the 60 validation images of
the per-image Dice of the lung channel thresholded at 0.5 (:func:`cxrzoo.metrics.dice_score`).

(a) **From scratch at 150×170** (the prepared images area-downsampled 2×): ``build_res_cr_net(input_shape=(150,
    170, 1))`` (CXR-Net Module 1's architecture, 59,941 parameters), trained with
    :func:`cxrzoo.training.fit_segmenter` and Module 1's loss (contour-weighted Tanimoto) and optimizer (Adam), with
    the tunable parts tuned for a 15-minute budget on 2 CPU cores: batch 4 (more steps per epoch than the authors'
    12), peak learning rate 3e-3 with cosine decay to 0 over the run, no augmentation (a regularizer that only slows
    convergence at 4 epochs). Target: mean val Dice >= 0.90 within 15 minutes (training plus per-epoch
    validation; data preparation is timed separately).
(b) **Fine-tuning the published ``res_cr_net.v7_lungs`` at 300×340**: zero-shot val Dice first, then training at
    a low learning rate with the BatchNormalization layers frozen (their published statistics; batches of 4 are
    too small to re-estimate them), reported side by side. Target: above the zero-shot value.

Per-epoch lines give the epoch's training time, the validation time, the mean and pooled val Dice, and the
cumulative time.

    python benchmarks/train_lung_segmentation.py              # (a) and (b), full
    python benchmarks/train_lung_segmentation.py --part a     # only (a)
    python benchmarks/train_lung_segmentation.py --quick      # smoke test: 24/12 images, 1 epoch each
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CXRZOO_SHARED", REPO.parent / "shared"))
DICE_TARGET = 0.90
BUDGET_SECONDS = 15 * 60
FULL, HALF = (300, 340), (150, 170)


def load_split(root: Path, limit: int | None):
    """Prepared images (N, 300, 340, 1) in [0, 1] and binary lung masks (N, 300, 340)."""
    from cxrzoo.data import read_image_folder
    from cxrzoo.preprocessing import read_image, recipe

    samples = read_image_folder(root, masks=("lungs",))
    prep = recipe("cxrnet")
    xs, ms = [], []
    for image, (mask,) in list(zip(samples.images, samples.masks))[:limit]:
        x, (m,) = prep.prepare(read_image(image, native_depth=True), [read_image(mask)])
        xs.append(x)
        ms.append(m > 127)
    return np.stack(xs), np.stack(ms)


def at_size(x, lungs, size):
    """Images and two-channel [lungs, non_lungs] targets at ``size`` (area resampling, masks re-binarized)."""
    from cxrzoo.preprocessing import resize

    if size == FULL:
        small_x, small_m = x, lungs.astype(np.float32)
    else:
        small_x = np.stack([resize(a, size, "area") for a in x])
        small_m = np.stack([resize(m.astype(np.float32), size, "area") for m in lungs]) >= 0.5
    small_m = small_m.astype(np.float32)
    return small_x.astype(np.float32), np.stack([small_m, 1.0 - small_m], axis=-1)


def val_dice(model, x, y, batch_size=6):
    from cxrzoo.metrics import dice_score

    p = model.predict(x, batch_size=batch_size, verbose=0)[..., 0]
    truth = y[..., 0].astype(np.uint8)
    return float(np.mean(dice_score(truth, p))), float(dice_score(truth, p, per_image=False))


def make_reporter(x_val, y_val, label, start):
    import keras

    cpu_start = time.process_time()

    class Report(keras.callbacks.Callback):
        """Prints each epoch's timing and validation Dice (validation time included in the cumulative time)."""

        def __init__(self):
            super().__init__()
            self.rows = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            train_s = time.perf_counter() - self.t0
            t1 = time.perf_counter()
            mean, pooled = val_dice(self.model, x_val, y_val)
            val_s = time.perf_counter() - t1
            total = time.perf_counter() - start
            # process CPU seconds: on a shared machine, CPU / 2 cores bounds the idle wall time from below
            cpu = time.process_time() - cpu_start
            self.rows.append(
                dict(
                    epoch=epoch + 1,
                    train_s=train_s,
                    val_s=val_s,
                    mean=mean,
                    pooled=pooled,
                    total=total,
                    cpu=cpu,
                    loss=float(logs["loss"]),
                )
            )
            print(
                f"  [{label}] epoch {epoch + 1}: train {train_s:6.1f} s, val {val_s:5.1f} s, loss "
                f"{logs['loss']:.4f}, val Dice mean {mean:.4f} / pooled {pooled:.4f}, cumulative {total:6.1f} s "
                f"(process CPU {cpu:6.1f} s)",
                flush=True,
            )

    return Report()


def part_a(train, val, args):
    import keras

    import cxrzoo
    from cxrzoo.training import fit_segmenter

    x, y = at_size(*train, HALF)
    xv, yv = at_size(*val, HALF)
    steps = args.epochs * int(np.ceil(len(x) / args.batch_size))
    keras.utils.set_random_seed(args.seed)
    model = cxrzoo.build_res_cr_net(input_shape=HALF + (1,))
    print(
        f"(a) Res-CR-Net from scratch at {HALF[0]}x{HALF[1]}: {len(x)} train / {len(xv)} val, "
        f"{model.count_params():,} parameters, batch {args.batch_size}, Adam peak lr {args.lr} cosine over "
        f"{steps} steps, {args.epochs} epochs",
        flush=True,
    )
    start = time.perf_counter()
    report = make_reporter(xv, yv, "a", start)
    schedule = keras.optimizers.schedules.CosineDecay(args.lr, decay_steps=steps)
    fit_segmenter(
        model,
        (x, y),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=schedule,
        augment=None,
        restore_best=False,
        early_stopping=None,
        callbacks=[report],
        seed=args.seed,
        verbose=0,
    )
    rows = report.rows
    reached = next((r for r in rows if r["mean"] >= DICE_TARGET), None)
    final = rows[-1]
    print(
        f"(a) final mean val Dice {final['mean']:.4f} (pooled {final['pooled']:.4f}) after {final['total']:.0f} s; "
        + (
            f"reached {DICE_TARGET} at epoch {reached['epoch']} after {reached['total']:.0f} s "
            f"({reached['total'] / BUDGET_SECONDS:.2f}x the 15-minute budget)"
            if reached
            else f"did NOT reach {DICE_TARGET}"
        ),
        flush=True,
    )
    return rows


def part_b(train, val, args):
    import keras

    import cxrzoo
    from cxrzoo.training import fit_segmenter, set_trainable

    x, y = at_size(*train, FULL)
    xv, yv = at_size(*val, FULL)
    model = cxrzoo.build_res_cr_net(weights="res_cr_net.v7_lungs")
    t0 = time.perf_counter()
    zero_mean, zero_pooled = val_dice(model, xv, yv)
    print(
        f"(b) published res_cr_net.v7_lungs at {FULL[0]}x{FULL[1]}, zero-shot: val Dice mean {zero_mean:.4f} / "
        f"pooled {zero_pooled:.4f} ({time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    frozen = set_trainable(model, False, layers=lambda path: path.endswith("_bn"))
    print(
        f"(b) fine-tuning {len(x)} images, batch {args.batch_size}, Adam lr {args.finetune_lr}, "
        f"{args.finetune_epochs} epoch(s), {len(frozen)} BatchNormalization layers frozen",
        flush=True,
    )
    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()
    report = make_reporter(xv, yv, "b", start)
    fit_segmenter(
        model,
        (x, y),
        epochs=args.finetune_epochs,
        batch_size=args.batch_size,
        learning_rate=args.finetune_lr,
        augment=None,
        restore_best=False,
        early_stopping=None,
        callbacks=[report],
        seed=args.seed,
        verbose=0,
    )
    final = report.rows[-1]
    verdict = "above" if final["mean"] > zero_mean else "NOT above"
    print(
        f"(b) val Dice mean: zero-shot {zero_mean:.4f} -> fine-tuned {final['mean']:.4f} ({verdict} zero-shot); "
        f"pooled {zero_pooled:.4f} -> {final['pooled']:.4f}",
        flush=True,
    )
    return zero_mean, report.rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "v7_covid_lungs")
    parser.add_argument("--part", choices=("a", "b", "both"), default="both")
    parser.add_argument("--epochs", type=int, default=4, help="(a) epochs")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3, help="(a) peak learning rate (cosine decay to 0)")
    parser.add_argument("--finetune-epochs", type=int, default=1)
    parser.add_argument("--finetune-lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="24 train / 12 val images, one epoch each")
    args = parser.parse_args(argv)
    if not (args.data / "train").is_dir():
        raise SystemExit(f"{args.data} not found (set CXRZOO_SHARED or --data)")
    if (SHARED / "weights").is_dir():  # the offline mirror of the published weights
        os.environ.setdefault("CXRZOO_WEIGHTS_PATH", str(SHARED / "weights"))
    if args.quick:
        args.epochs, args.finetune_epochs = 1, 1
    limit_train, limit_val = (24, 12) if args.quick else (None, None)

    t0 = time.perf_counter()
    train = load_split(args.data / "train", limit_train)
    val = load_split(args.data / "val", limit_val)
    print(
        f"data: {len(train[0])} train / {len(val[0])} val images prepared in {time.perf_counter() - t0:.1f} s "
        f"(recipe 'cxrnet'; not counted below)",
        flush=True,
    )
    if args.part in ("a", "both"):
        part_a(train, val, args)
    if args.part in ("b", "both"):
        part_b(train, val, args)


if __name__ == "__main__":
    main()
