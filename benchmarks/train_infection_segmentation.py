"""Training the thesis' segmenters from scratch on CPU: lung U-Net/ResNet18 and FPN/ResNet18, and an infection
segmenter, with Dice per model and time per epoch.

Data (../shared/data, see reference/data.md): ``v7_covid_lungs`` (300 train / 60 val COVID-19 CXRs with lung masks)
and ``covid_infection/train`` (70 CXRs with lung and infection masks; the last 14 by file name are held out). The
models are cxrzoo's SMP-exact builders (no ImageNet weights: the thesis' encoders started from them, these start
from scratch), fed by ``cxrzoo.data.make_dataset`` with the ``"tahir_segmentation"`` recipe and trained by
``cxrzoo.training.fit_segmenter`` with the thesis' recipe ``"infection_detector_segmentation"`` (cross-entropy on
the logits, Adam) adapted to a CPU budget: learning rate 1e-3 with cosine decay, batch 8, a fixed number of
epochs. Epoch times
are ``fit_segmenter``'s (training plus the validation loss); the Dice scoring after each epoch is not counted.

Baselines measured in the same run: the Dice of a constant prediction (the training set's mean mask, thresholded
at 0.5), and every epoch time as a ratio to the first model's.

Acceptance (issue 7): the lung U-Net/ResNet18 at 128×128 reaches mean val Dice >= 0.94 within 10 minutes on two
idle cores. The script prints the epoch and elapsed training time at which each model first reaches 0.94.

Usage::

    python benchmarks/train_infection_segmentation.py            # full run (about 35 minutes on 2 idle cores)
    python benchmarks/train_infection_segmentation.py --only lungs --sizes 128 --lung-models unet   # the criterion
    python benchmarks/train_infection_segmentation.py --quick    # smoke run: few images, one epoch, 64×64
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CXRZOO_SHARED", REPO.parent / "shared"))
TARGET_DICE = 0.94


def _arrays(dataset):
    xs, ys = [], []
    for x, y in dataset:
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
    return np.concatenate(xs), np.concatenate(ys)


def dice_callback(x_val, y_val, log):
    """A callback scoring the validation set (mean per-image Dice at p > 0.5) after every epoch."""
    import keras

    from cxrzoo.metrics import segmentation_scores

    class ValDice(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.dice, self.seconds = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            # fit's epoch time (training + validation loss), taken before the Dice scoring below
            self.seconds.append(time.perf_counter() - self.start)
            logits = self.model.predict(x_val, batch_size=16, verbose=0)
            self.dice.append(segmentation_scores(y_val, logits, threshold=0.0)["mean_dice"])  # logit 0 ⇔ p = 0.5
            log(
                f"    epoch {epoch + 1:3d}  loss {logs['loss']:.4f}  val_loss {logs.get('val_loss', np.nan):.4f}  "
                f"val mean Dice {self.dice[-1]:.4f}  {self.seconds[-1]:.1f} s, training so far "
                f"{sum(self.seconds) / 60:.1f} min"
            )

    return ValDice()


def train_one(name, builder, train, val, *, size, epochs, batch_size, lr, schedule, log):
    from cxrzoo.data import make_dataset
    from cxrzoo.preprocessing import recipe
    from cxrzoo.training import fit_segmenter

    prep = recipe("tahir_segmentation", size=(size, size))
    train_ds = make_dataset(
        train.images, train.masks, recipe=prep, batch_size=batch_size, shuffle=True, seed=0, cache="memory"
    )
    val_ds = make_dataset(val.images, val.masks, recipe=prep, batch_size=16, shuffle=False, cache="memory")
    x_val, y_val = _arrays(val_ds)
    val_dice = dice_callback(x_val, y_val, log)
    log(
        f"  {name} at {size}×{size}: {len(train)} train / {len(val)} val images, batch {batch_size}, Adam {lr:g}"
        f"{' with cosine decay' if schedule == 'cosine' else ''}"
    )
    # The thesis' recipe (cross-entropy, Adam) with a CPU budget: from scratch a higher rate and batch converge in
    # a few epochs; a fixed number of epochs (no early stopping / LR plateaus) so every model gets the same time.
    rate = lr
    if schedule == "cosine":
        import keras

        rate = keras.optimizers.schedules.CosineDecay(lr, decay_steps=epochs * math.ceil(len(train) / batch_size))
    result = fit_segmenter(
        lambda: builder(input_shape=(size, size, 3)),
        train_ds,
        val_ds,
        recipe="infection_detector_segmentation",
        epochs=epochs,
        learning_rate=rate,
        metrics=[],
        early_stopping=None,
        reduce_lr=None,
        restore_best=False,
        callbacks=[val_dice],
        seed=0,
        verbose=0,
    )
    times = result.epoch_seconds
    cumulative = np.cumsum(times)
    reached = next(((i + 1, float(cumulative[i])) for i, d in enumerate(val_dice.dice) if d >= TARGET_DICE), None)
    row = {
        "name": name,
        "size": size,
        "dice": val_dice.dice[-1],
        "best": max(val_dice.dice),
        "epoch_s": float(np.median(times[1:] or times)),
        "first_epoch_s": times[0],
        "total_s": float(sum(times)),
        "reached": reached,
        "epochs": epochs,
        "baseline": constant_baseline(train_ds, y_val),
    }
    log(f"  {name} at {size}×{size}: " + _summary(row))
    return row


def _summary(r) -> str:
    reached = "no" if r["reached"] is None else f"epoch {r['reached'][0]}, {r['reached'][1] / 60:.1f} min"
    return (
        f"val mean Dice {r['dice']:.4f} (best {r['best']:.4f}), constant-mask baseline {r['baseline']:.4f}, "
        f"{r['epoch_s']:.1f} s/epoch (first {r['first_epoch_s']:.1f}), reached {TARGET_DICE}: {reached}"
    )


def constant_baseline(train_ds, y_val) -> float:
    """Mean val Dice of predicting the training set's mean mask (> 0.5) for every image."""
    from cxrzoo.metrics import segmentation_scores

    total, count = None, 0
    for _, y in train_ds:
        y = np.asarray(y)
        total = y.sum(0) if total is None else total + y.sum(0)
        count += len(y)
    prior = np.broadcast_to(total / count, y_val.shape)
    return segmentation_scores(y_val, prior, threshold=0.5, empty=np.nan)["mean_dice"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few images, one epoch, 64×64")
    parser.add_argument("--lung-epochs", type=int, default=15, help="epochs below 256×256")
    parser.add_argument("--lung-epochs-256", type=int, default=8, help="epochs at 256×256 and above")
    parser.add_argument("--infection-epochs", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="lung model input sizes")
    parser.add_argument("--infection-size", type=int, default=256, help="the thesis' 256×256")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--schedule",
        choices=["constant", "cosine"],
        default="cosine",
        help="learning rate over the run: constant, or cosine decay to 0 at the last epoch",
    )
    parser.add_argument("--only", choices=["lungs", "infection"], default=None)
    parser.add_argument("--lung-models", nargs="+", choices=["unet", "fpn"], default=["unet", "fpn"])
    args = parser.parse_args(argv)

    from cxrzoo.data import read_image_folder
    from cxrzoo.models.segmentation import build_fpn, build_unet

    lungs_root = SHARED / "data" / "v7_covid_lungs"
    infection_root = SHARED / "data" / "covid_infection" / "train"
    if not lungs_root.is_dir() or not infection_root.is_dir():
        print(f"needs {lungs_root} and {infection_root} (../shared/data); not found", file=sys.stderr)
        return 2

    def log(msg):
        print(msg, flush=True)

    lung_train = read_image_folder(lungs_root / "train", masks=("lungs",))
    lung_val = read_image_folder(lungs_root / "val", masks=("lungs",))
    infection_all = read_image_folder(infection_root, masks=("infection",))
    n_inf = len(infection_all)
    inf_train, inf_val = infection_all.subset(range(n_inf - 14)), infection_all.subset(range(n_inf - 14, n_inf))
    sizes, inf_epochs, inf_size = args.sizes, args.infection_epochs, args.infection_size
    lung_epochs = {size: args.lung_epochs if size < 256 else args.lung_epochs_256 for size in sizes}
    if args.quick:
        lung_train, lung_val = lung_train.subset(range(16)), lung_val.subset(range(8))
        inf_train, inf_val = inf_train.subset(range(8)), inf_val.subset(range(4))
        sizes, inf_epochs, inf_size, lung_epochs = [64], 1, 64, {64: 1}

    import tensorflow as tf

    log(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU(s) visible")
    results = []
    if args.only in (None, "lungs"):
        log("Lung segmentation (v7_covid_lungs):")
        for size in sizes:
            for key, name, builder in (
                ("unet", "U-Net/ResNet18", lambda **k: build_unet(encoder="resnet18", **k)),
                ("fpn", "FPN/ResNet18", lambda **k: build_fpn(encoder="resnet18", **k)),
            ):
                if key not in args.lung_models:
                    continue
                results.append(
                    train_one(
                        f"lungs {name}",
                        builder,
                        lung_train,
                        lung_val,
                        size=size,
                        epochs=lung_epochs[size],
                        batch_size=args.batch_size,
                        lr=args.lr,
                        schedule=args.schedule,
                        log=log,
                    )
                )
    if args.only in (None, "infection"):
        log("Infection segmentation (covid_infection, parallel scheme: the plain CXR in):")
        results.append(
            train_one(
                "infection U-Net/ResNet18",
                lambda **k: build_unet(encoder="resnet18", **k),
                inf_train,
                inf_val,
                size=inf_size,
                epochs=inf_epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                schedule=args.schedule,
                log=log,
            )
        )

    first = results[0]["epoch_s"]
    log("")
    log(
        f"| model | input | epochs | val mean Dice (last / best) | constant-mask baseline | s/epoch | ratio to "
        f"first | reached {TARGET_DICE} |"
    )
    log("|---|---|---|---|---|---|---|---|")
    for r in results:
        reached = "no" if r["reached"] is None else f"epoch {r['reached'][0]}, {r['reached'][1] / 60:.1f} min"
        log(
            f"| {r['name']} | {r['size']}×{r['size']} | {r['epochs']} | {r['dice']:.4f} / {r['best']:.4f} | "
            f"{r['baseline']:.4f} | {r['epoch_s']:.1f} (first {r['first_epoch_s']:.1f}) | "
            f"{r['epoch_s'] / first:.2f} | {reached} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
