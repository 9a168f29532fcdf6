"""Each paper's training augmentation, applied identically to an image and its masks, on TensorFlow ops.

A preset samples one geometric transform per example (rotation, shift, shear, zoom and flips composed into a single
3×3 matrix, so the image is resampled once) and applies it with ``ImageProjectiveTransformV3``, the op behind
``keras.ops.image.affine_transform``: bilinear for the image and for mask *inputs*, nearest neighbour for label
masks, both with the paper's fill mode. Randomness is stateless: each example's parameters are a pure function of
its seed, so a seeded pipeline is reproducible and image and masks can never drift apart.

Coordinates are (x = column, y = row) with pixel centres on integers; matrices map output pixels to input pixels.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from cxrzoo.catalog import Catalog

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy.typing as npt
    import tensorflow as tf

    TensorLike: TypeAlias = tf.Tensor | npt.ArrayLike

FILL_MODES = ("constant", "nearest", "reflect", "mirror", "wrap")


@dataclass(frozen=True)
class Augmentation:
    """One augmentation scheme. Ranges follow Keras ``ImageDataGenerator`` conventions unless noted.

    Attributes:
        name, paper: catalogue name and the paper it reproduces.
        rotation: maximum angle in degrees; the angle is uniform in [-rotation, rotation].
        rotation_choices: alternatively, angles (degrees) drawn uniformly from this set (the thesis' 5, 10, 20, 25).
        shift: (height, width) fractions; the shift is uniform in ±fraction × size, in pixels.
        round_shift: round shifts to whole pixels (CXR-Net Module 2, torchvision's RandomAffine).
        shear: maximum shear angle in degrees (Keras' ``shear_range`` is in degrees).
        zoom: (low, high) range of the sampling-grid scale; values < 1 magnify (Keras' convention).
        isotropic_zoom: one scale for both axes (the screening baselines, CXR-Net Module 2) instead of Keras'
            independent x and y scales.
        forward_scale: the zoom range is a forward scale of the image (values > 1 magnify; the screening baselines'
            and Module 2's "scale") rather than Keras' sampling-grid zoom; the grid then uses the reciprocal.
        aspect: fixed aspect factor a: x scale × sqrt(a), y scale / sqrt(a) (CXR-Net Module 2's 1.1).
        transform_probability: probability that the rotation/shift/shear/zoom transform is applied at all.
        horizontal_flip, vertical_flip: probabilities of each flip.
        flip_both_if_unchanged: probability of flipping both axes when neither the transform nor a flip happened
            (CXR-Net Module 2).
        brightness: (low, high) range of a multiplicative brightness factor, clipped to [0, 1] (COVID-CXNet's
            ``brightness_range``; assumes images scaled to [0, 1]).
        fill_mode: "constant" (``fill_value``), "nearest", "reflect" (d c b a | a b c d, Keras/scipy "reflect"),
            "mirror" (d c b | a b c d, OpenCV BORDER_REFLECT_101) or "wrap".
        center: "pixel" rotates about ((W - 1) / 2, (H - 1) / 2) (Keras); "corner" about (W / 2, H / 2) (the
            corner-box construction of CXR-Net Module 2).
    """

    name: str
    paper: str
    rotation: float = 0.0
    rotation_choices: tuple[float, ...] = ()
    shift: tuple[float, float] = (0.0, 0.0)
    round_shift: bool = False
    shear: float = 0.0
    zoom: tuple[float, float] = (1.0, 1.0)
    isotropic_zoom: bool = False
    forward_scale: bool = False
    aspect: float = 1.0
    transform_probability: float = 1.0
    horizontal_flip: float = 0.0
    vertical_flip: float = 0.0
    flip_both_if_unchanged: float = 0.0
    brightness: tuple[float, float] | None = None
    fill_mode: str = "nearest"
    fill_value: float = 0.0
    center: str = "pixel"

    def __post_init__(self):
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {self.fill_mode!r}")
        if self.center not in ("pixel", "corner"):
            raise ValueError(f"center must be 'pixel' or 'corner', got {self.center!r}")
        for name in ("transform_probability", "horizontal_flip", "vertical_flip", "flip_both_if_unchanged"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if not 0 < self.zoom[0] <= self.zoom[1]:
            raise ValueError(f"zoom must be (low, high) with 0 < low <= high, got {self.zoom}")
        if self.brightness is not None and not 0 <= self.brightness[0] <= self.brightness[1]:
            raise ValueError(f"brightness must be (low, high) with 0 <= low <= high, got {self.brightness}")
        if self.aspect <= 0:
            raise ValueError(f"aspect must be > 0, got {self.aspect}")

    def replace(self, **changes) -> Augmentation:
        """A copy with some fields changed, e.g. ``augmentation("covid_xnet").replace(shear=11.3)``."""
        return dataclasses.replace(self, **changes)

    def __call__(
        self,
        image: TensorLike,
        masks: TensorLike | None = None,
        *,
        seed: TensorLike,
        mask_inputs: TensorLike | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor | None, tf.Tensor | None]:
        """Augment one example: ``(image, masks, mask_inputs)`` → the same structure, transformed identically.

        Args:
            image: float tensor (H, W, C).
            masks: optional label masks (H, W, K): nearest-neighbour resampling, values preserved.
            seed: int tensor of shape (2,) (stateless randomness).
            mask_inputs: optional float mask *inputs* (H, W, K) (CXR-Net Module 2's M): bilinear, like the image.
        """
        return apply_augmentation(self, image, masks, seed=seed, mask_inputs=mask_inputs)


# --------------------------------------------------------------------------------------------------- catalogue

PRESETS: Catalog[Augmentation] = Catalog("augmentation")


def register_augmentation(preset: Augmentation, *, aliases: tuple[str, ...] = ()) -> Augmentation:
    """Registers a paper's preset under its name (each paper's folder does this)."""
    return PRESETS.register(preset.name, preset, aliases=aliases)


def list_augmentations() -> list[str]:
    """The preset names :func:`augmentation` accepts."""
    return PRESETS.names()


def augmentation(name: str | Augmentation, **changes) -> Augmentation:
    """A paper's augmentation preset by name (see :data:`PRESETS` and docs/data.md), optionally with changes."""
    if isinstance(name, Augmentation):
        return name.replace(**changes) if changes else name
    preset = PRESETS.get(name)
    return preset.replace(**changes) if changes else preset


# ------------------------------------------------------------------------------------------------------ sampling


def _uniform(tf: ModuleType, seed: tf.Tensor, low: float | tf.Tensor, high: float | tf.Tensor) -> tf.Tensor:
    return tf.random.stateless_uniform((), seed, low, high, dtype=tf.float32)


def _bernoulli(tf: ModuleType, seed: tf.Tensor, p: float) -> tf.Tensor:
    if p <= 0.0:
        return tf.constant(False)
    return tf.random.stateless_uniform((), seed, dtype=tf.float32) < p


def _matmul3(tf: ModuleType, *mats: tf.Tensor) -> tf.Tensor:
    out = mats[0]
    for m in mats[1:]:
        out = tf.linalg.matmul(out, m)
    return out


def sample_transform(
    aug: Augmentation, height: int | tf.Tensor, width: int | tf.Tensor, seed: TensorLike
) -> tuple[tf.Tensor, tf.Tensor]:
    """The 3×3 output→input matrix and brightness factor of one example (TensorFlow tensors).

    Composition (Keras ``ImageDataGenerator`` order): ``C · R · T · S · Z · C⁻¹``, then flips; with
    ``transform_probability`` < 1 the R·T·S·Z part is the identity with the complementary probability.
    """
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=12)
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    one, zero = tf.constant(1.0), tf.constant(0.0)

    if aug.rotation_choices:
        choices = tf.constant([math.radians(a) for a in aug.rotation_choices], tf.float32)
        index = tf.random.stateless_uniform((), seeds[0], 0, len(aug.rotation_choices), dtype=tf.int32)
        theta = tf.gather(choices, index)
    elif aug.rotation:
        theta = _uniform(tf, seeds[0], -math.radians(aug.rotation), math.radians(aug.rotation))
    else:
        theta = zero
    ty = _uniform(tf, seeds[1], -aug.shift[0], aug.shift[0]) * h if aug.shift[0] else zero
    tx = _uniform(tf, seeds[2], -aug.shift[1], aug.shift[1]) * w if aug.shift[1] else zero
    if aug.round_shift:
        tx, ty = tf.round(tx), tf.round(ty)
    shear = _uniform(tf, seeds[3], -math.radians(aug.shear), math.radians(aug.shear)) if aug.shear else zero
    if aug.zoom != (1.0, 1.0):
        zx = _uniform(tf, seeds[4], aug.zoom[0], aug.zoom[1])
        zy = zx if aug.isotropic_zoom else _uniform(tf, seeds[5], aug.zoom[0], aug.zoom[1])
        if aug.forward_scale:
            zx, zy = 1.0 / zx, 1.0 / zy
    else:
        zx = zy = one
    # A fixed aspect a stretches x by sqrt(a) and shrinks y by sqrt(a) in the *forward* map; the matrix here is
    # output→input, so the sampling grid gets the inverse factors.
    root = math.sqrt(aug.aspect)
    zx, zy = zx / root, zy * root

    cos, sin = tf.cos(theta), tf.sin(theta)
    rotation = tf.stack([[cos, -sin, zero], [sin, cos, zero], [zero, zero, one]])
    translation = tf.stack([[one, zero, tx], [zero, one, ty], [zero, zero, one]])
    shearing = tf.stack([[one, -tf.sin(shear), zero], [zero, tf.cos(shear), zero], [zero, zero, one]])
    scaling = tf.stack([[zx, zero, zero], [zero, zy, zero], [zero, zero, one]])
    if aug.center == "pixel":
        cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    else:
        cx, cy = w / 2.0, h / 2.0
    to_center = tf.stack([[one, zero, cx], [zero, one, cy], [zero, zero, one]])
    from_center = tf.stack([[one, zero, -cx], [zero, one, -cy], [zero, zero, one]])
    matrix = _matmul3(tf, to_center, rotation, translation, shearing, scaling, from_center)

    transformed = _bernoulli(tf, seeds[6], aug.transform_probability) if aug.transform_probability < 1 else True
    if aug.transform_probability < 1:
        matrix = tf.where(transformed, matrix, tf.eye(3))
    flip_x = _bernoulli(tf, seeds[7], aug.horizontal_flip)
    flip_y = _bernoulli(tf, seeds[8], aug.vertical_flip)
    if aug.flip_both_if_unchanged:
        unchanged = tf.logical_not(tf.logical_or(tf.logical_or(flip_x, flip_y), transformed))
        both = tf.logical_and(unchanged, _bernoulli(tf, seeds[9], aug.flip_both_if_unchanged))
        flip_x, flip_y = tf.logical_or(flip_x, both), tf.logical_or(flip_y, both)
    sx = tf.where(flip_x, -1.0, 1.0)
    sy = tf.where(flip_y, -1.0, 1.0)
    # A flip maps output x to input (W - 1) - x: exact, so label masks are flipped without interpolation error.
    flips = tf.stack(
        [[sx, zero, tf.where(flip_x, w - 1.0, 0.0)], [zero, sy, tf.where(flip_y, h - 1.0, 0.0)], [zero, zero, one]]
    )
    matrix = tf.linalg.matmul(matrix, flips)

    factor = _uniform(tf, seeds[10], *aug.brightness) if aug.brightness else one
    return matrix, factor


def _warp(tf: ModuleType, images: tf.Tensor, matrices: tf.Tensor, interpolation: str, aug: Augmentation) -> tf.Tensor:
    """Resample a batch ``images`` (N, H, W, C) through per-example ``matrices`` (N, 3, 3), output → input, with
    the preset's fill mode."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    dtype = images.dtype
    batch = tf.cast(images, tf.float32)
    if aug.fill_mode == "mirror":
        # OpenCV's BORDER_REFLECT_101 is tf.pad's "REFLECT"; pad by up to one image size, shift the matrices, and
        # let "nearest" extend beyond that.
        pad_y, pad_x = height - 1, width - 1
        batch = tf.pad(batch, [[0, 0], [pad_y, pad_y], [pad_x, pad_x], [0, 0]], mode="REFLECT")
        offset = tf.stack(
            [[1.0, 0.0, tf.cast(pad_x, tf.float32)], [0.0, 1.0, tf.cast(pad_y, tf.float32)], [0.0, 0.0, 1.0]]
        )
        matrices = tf.linalg.matmul(offset[None], matrices)
        fill_mode = "NEAREST"
    else:
        fill_mode = aug.fill_mode.upper()
    flat = tf.reshape(matrices / matrices[:, 2:3, 2:3], [-1, 9])[:, :8]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=batch,
        transforms=flat,
        output_shape=tf.stack([height, width]),
        fill_value=tf.constant(aug.fill_value, tf.float32),
        interpolation=interpolation,
        fill_mode=fill_mode,
    )
    return tf.cast(out, dtype)


def augment_batch(
    aug: Augmentation,
    images: TensorLike,
    masks: TensorLike | None = None,
    *,
    seeds: TensorLike,
    mask_inputs: TensorLike | None = None,
) -> tuple[tf.Tensor, tf.Tensor | None, tf.Tensor | None]:
    """Apply ``aug`` to a batch: ``images`` (N, H, W, C), optional ``masks`` / ``mask_inputs`` (N, H, W, K), and
    one stateless seed per example, ``seeds`` (N, 2). Returns ``(images, masks, mask_inputs)``."""
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(f"augment_batch expects (N, H, W, C) images, got shape {images.shape}")
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    matrices, factors = tf.map_fn(
        lambda s: sample_transform(aug, height, width, s),
        tf.cast(seeds, tf.int64),
        fn_output_signature=(tf.TensorSpec((3, 3), tf.float32), tf.TensorSpec((), tf.float32)),
    )
    images_out = _warp(tf, images, matrices, "BILINEAR", aug)
    if aug.brightness:
        factors = tf.cast(factors, images_out.dtype)[:, None, None, None]
        images_out = tf.clip_by_value(images_out * factors, 0.0, 1.0)
    masks_out = None if masks is None else _warp(tf, tf.convert_to_tensor(masks), matrices, "NEAREST", aug)
    inputs_out = (
        None if mask_inputs is None else _warp(tf, tf.convert_to_tensor(mask_inputs), matrices, "BILINEAR", aug)
    )
    return images_out, masks_out, inputs_out


def apply_augmentation(
    aug: Augmentation,
    image: TensorLike,
    masks: TensorLike | None = None,
    *,
    seed: TensorLike,
    mask_inputs: TensorLike | None = None,
) -> tuple[tf.Tensor, tf.Tensor | None, tf.Tensor | None]:
    """Apply ``aug`` to one example (see :meth:`Augmentation.__call__`); returns ``(image, masks, mask_inputs)``."""
    import tensorflow as tf

    image = tf.convert_to_tensor(image)
    if image.shape.rank != 3:
        raise ValueError(f"augmentation expects an (H, W, C) image, got shape {image.shape}")
    add = lambda t: None if t is None else tf.convert_to_tensor(t)[None]
    out = augment_batch(
        aug, image[None], add(masks), seeds=tf.reshape(tf.cast(seed, tf.int64), (1, 2)), mask_inputs=add(mask_inputs)
    )
    return tuple(None if t is None else t[0] for t in out)
