"""CXR-Net Module 2's protocol end to end: 6-fold patient-disjoint cross-validation of a member, joined 3 ways.

**Task: clearly-labelled synthetic, on real CXRs.** The public V7 images are all COVID-19 positive, so they carry
no real negatives. Each real CXR (../shared/data/v7_covid_lungs, with its human lung mask) yields two cases:
``added_opacity`` (class 0, CXR-Net's "positive" index) — the image with one smooth synthetic opacity (a Gaussian
bump of +20..45 gray levels, sigma 6-12% of the height, confined to the lungs) — and ``original`` (class 1), the
image unchanged. Both cases of an image share its group id, the stand-in for a patient: a fold that trained on one
of them must not validate on the other. The numbers measure the machinery (folds, training, joining, metrics),
not COVID-19 detection.

Protocol (paper 000 §2.2, reference cxrnet.md §2, §5): the authors' preparation (``recipe("cxrnet")``), X
standardized with their training-set mean and std, M the lung mask; one WST (J=2, L=6) + pooled mask gives the
members' input (``build_cxrnet_classifier``'s ``wst_features``); :func:`cxrzoo.training.cross_validate` trains a
fresh ``build_cxrnet_member`` per fold with Module 2's recipe (Adam 0.002 AMSGrad, cross-entropy, balanced class
weights, batch 13; fewer epochs than the paper's 200), patient-disjoint by construction; the six fold models are
joined with :func:`cxrzoo.training.ensemble` by feature-map averaging (CXR-Net's rule), logit averaging and
probability averaging, and evaluated on held-out images (the V7 validation split, never seen in cross-validation).
Metrics with 95% CIs by the thesis' formula; for the AUC also DeLong's interval clustered by image (Obuchowski;
``cxrzoo.metrics.auc_ci``) and a bootstrap over images (:mod:`cxrzoo.metrics`).

Images are area-downsampled to 150×170 before the WST (a 37×42 map instead of 75×85) to keep the run short on
2 CPU cores; ``--size 300`` uses the paper's 300×340.

    python benchmarks/cv_ensemble.py            # 300 train images (600 cases), 60 test images (120 cases)
    python benchmarks/cv_ensemble.py --quick    # 48 / 12 images, 2 epochs: a smoke test
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
LABELS = ["added_opacity", "original"]
MODES = ("feature_average", "logit_average", "probability_average")


def load_cases(root: Path, limit: int | None, size, rng, first_id: int = 0):
    """(X, M, labels, image ids): two cases per real CXR, with and without a synthetic opacity."""
    from cxrzoo.data import read_image_folder
    from cxrzoo.preprocessing import CXRNET_MEAN, CXRNET_STD, read_image, recipe, resize

    samples = read_image_folder(root, masks=("lungs",))
    prep = recipe("cxrnet")
    yy, xx = np.mgrid[:300, :340]
    xs, ms, labels, ids = [], [], [], []
    for k, (image, (mask,)) in enumerate(list(zip(samples.images, samples.masks))[:limit]):
        x, (m,) = prep.prepare(read_image(image, native_depth=True), [read_image(mask)])
        gray, lungs = x[..., 0] * 255.0, (m > 127).astype(np.float32)
        cy, cx = np.argwhere(lungs > 0)[rng.integers(0, int(lungs.sum()))]
        sigma = rng.uniform(0.06, 0.12) * 300
        bump = rng.uniform(20, 45) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2)) * lungs
        for label, img in ((0, np.clip(gray + bump, 0, 255)), (1, gray)):
            standardized = ((img - CXRNET_MEAN) / CXRNET_STD).astype(np.float32)
            if size != (300, 340):
                standardized, mask_in = resize(standardized, size, "area"), resize(lungs, size, "area")
            else:
                mask_in = lungs
            xs.append(standardized[..., None])
            ms.append(mask_in[..., None])
            labels.append(label)
            ids.append(first_id + k)
    return np.stack(xs), np.stack(ms), np.asarray(labels), np.asarray(ids)


def wst_features(x, m, batch_size=8):
    import keras

    import cxrzoo

    front_of = cxrzoo.build_cxrnet_classifier(members=1, input_shape=x.shape[1:])
    front = keras.Model(front_of.inputs, front_of.get_layer("wst_features").output, name="wst_front")
    return front.predict([x, m], batch_size=batch_size, verbose=0)


def binary_summary(y, prob, groups=None, bootstrap=0):
    """Accuracy; sensitivity, specificity, AUC of class 0 with thesis CIs; for the AUC also the clustered DeLong
    (Obuchowski) interval over images and a bootstrap over images."""
    from cxrzoo import metrics as M

    pred = prob.argmax(1)
    pos = 0
    out = {"accuracy": M.accuracy(y, pred), "n": len(y)}
    for name, fn in (
        ("sensitivity", lambda t, p: M.sensitivity(t, p, positive=pos)),
        ("specificity", lambda t, p: M.specificity(t, p, positive=pos)),
    ):
        value = fn(y, pred)
        r = M.thesis_ci(value, len(y))
        out[name] = (value, max(0.0, value - r), min(1.0, value + r))
    auc = M.roc_auc(y, prob[:, pos], positive=pos)
    r = M.thesis_ci(auc, len(y))
    out["auc"] = (auc, max(0.0, auc - r), min(1.0, auc + r))
    if groups is not None:
        out["auc_clustered"] = M.auc_ci(y, prob[:, pos], positive=pos, groups=groups)[1:]
    if bootstrap:
        _, lo, hi = M.bootstrap_ci(
            lambda t, s: M.roc_auc(t, s, positive=pos), y, prob[:, pos], n_resamples=bootstrap, groups=groups
        )
        out["auc_bootstrap"] = (lo, hi)
    return out


def _line(name, s):
    def ci(key, scale=100, digits=1):
        v, lo, hi = s[key]
        return f"{scale * v:.{digits}f} [{scale * lo:.{digits}f}, {scale * hi:.{digits}f}]"

    extra = ""
    if "auc_clustered" in s:
        lo, hi = s["auc_clustered"]
        extra += f"  AUC clustered DeLong [{lo:.3f}, {hi:.3f}]"
    if "auc_bootstrap" in s:
        lo, hi = s["auc_bootstrap"]
        extra += f"  (bootstrap over images [{lo:.3f}, {hi:.3f}])"
    return (
        f"  {name:<22} n={s['n']:<4} acc {100 * s['accuracy']:5.1f}  sens {ci('sensitivity')}  "
        f"spec {ci('specificity')}  AUC {ci('auc', 1, 3)}{extra}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "v7_covid_lungs")
    parser.add_argument("--folds", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--size", type=int, choices=(150, 300), default=150, help="image height (150 or 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (0: none)")
    parser.add_argument("--quick", action="store_true", help="48 train / 12 test images, 2 epochs")
    args = parser.parse_args(argv)
    if not (args.data / "train").is_dir():
        raise SystemExit(f"{args.data} not found (set CXRZOO_SHARED or --data)")
    limits = (48, 12) if args.quick else (None, None)
    if args.quick:
        args.epochs, args.bootstrap = 2, 200
    size = (150, 170) if args.size == 150 else (300, 340)

    import keras

    import cxrzoo
    from cxrzoo.training import cross_validate, ensemble

    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    x, m, y, ids = load_cases(args.data / "train", limits[0], size, rng)
    xt, mt, yt, ids_t = load_cases(args.data / "val", limits[1], size, rng, first_id=10_000)
    t1 = time.perf_counter()
    features, features_t = wst_features(x, m), wst_features(xt, mt)
    t2 = time.perf_counter()
    print(
        f"cases: {len(y)} for cross-validation ({len(np.unique(ids))} images), {len(yt)} held out "
        f"({len(np.unique(ids_t))} images); prepared in {t1 - t0:.1f} s, WST features {features.shape[1:]} in "
        f"{t2 - t1:.1f} s",
        flush=True,
    )

    keras.utils.set_random_seed(args.seed)
    cv = cross_validate(
        lambda: cxrzoo.build_cxrnet_member(input_shape=features.shape[1:]),
        (features, y),
        n_splits=args.folds,
        groups=ids,
        recipe="cxrnet_module2",
        epochs=args.epochs,
        augment=None,
        seed=args.seed,
    )
    t3 = time.perf_counter()
    print(
        f"\n{args.folds}-fold patient-disjoint cross-validation, {args.epochs} epochs per fold "
        f"({t3 - t2:.1f} s; {(t3 - t2) / args.folds:.1f} s per fold); validation folds:",
        flush=True,
    )
    for k, (train, val) in enumerate(cv.folds):
        assert not set(ids[train]) & set(ids[val])
        print(_line(f"fold {k} (best ep {cv.results[k].best_epoch})", binary_summary(y[val], cv.oof_predictions[val])))
    print(_line("out-of-fold, all", binary_summary(y, cv.oof_predictions, ids, args.bootstrap)))

    print(f"\nheld-out test set ({len(yt)} cases), single fold models and the three ensembles:", flush=True)
    singles = [binary_summary(yt, fold.predict(features_t, verbose=0)) for fold in cv.models]
    aucs = [s["auc"][0] for s in singles]
    print(
        f"  fold models alone: AUC {np.mean(aucs):.3f} mean (min {min(aucs):.3f}, max {max(aucs):.3f}), "
        f"accuracy {100 * np.mean([s['accuracy'] for s in singles]):.1f}% mean"
    )
    for mode in MODES:
        t = time.perf_counter()
        joined = ensemble(cv.models, mode, name=f"ensemble_{mode}")
        prob = joined.predict(features_t, verbose=0)
        print(
            _line(mode, binary_summary(yt, prob, ids_t, args.bootstrap))
            + f"  [{joined.count_params():,} params, {time.perf_counter() - t:.1f} s]",
            flush=True,
        )
    print(f"\ntotal {time.perf_counter() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
