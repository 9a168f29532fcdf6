"""Class activation maps with one calling convention: ``method(model, images, class_index=None) -> (N, H, W)``.

    >>> from cxrzoo.explain import GradCAM, ScoreCAM
    >>> maps = GradCAM()(model, images)                   # (N, H, W) float32 in [0, 1]
    >>> maps = ScoreCAM(max_n=64)(model, images, class_index=1, mask=lung_masks)

Methods:

* :class:`GradCAM` (Selvaraju et al. 2017) and :class:`GradCAMPlusPlus` (Chattopadhay et al. 2018) run
  **tf-keras-vis** (``Gradcam``, ``GradcamPlusPlus`` with ``clone=False`` and a score function). Its
  ``ReplaceToLinear`` model modifier does not work on Keras 3, so it is not used: instead the model is wrapped to
  expose its **logits** (the pre-activation of a softmax / sigmoid head, sharing the head's live variables).
  Gradients of logits avoid the saturation and the cross-class coupling of softmax probabilities.
  tf-keras-vis' own up-sampling (``scipy.ndimage.zoom``, corner-aligned) and normalization are not used either:
  every method returns the raw map at the target layer's resolution, and this module finishes all of them the
  same way (below).
* :class:`ScoreCAM` (Wang et al. 2020) is computed here with tf-keras-vis' ``Scorecam`` arithmetic (a test checks
  the two agree), but ``batch_size`` masks at a time instead of every masked copy at once, with a progress bar:
  the softmax of the logits wrapper scores each masked input; a one-unit sigmoid head is presented as the two
  logits ``[0, z]``, whose softmax is ``[1 − σ(z), σ(z)]``, so the weights are the class probabilities the paper
  uses.
* :class:`CAM` (Zhou et al. 2016), as COVID-XNet uses it, is computed here directly: for a model whose target
  maps ``f_k`` feed a global average pooling followed (optionally through dropout) by a dense layer with kernel
  ``w``, ``M_c = Σ_k w[k, c] · f_k``. It needs no gradient and is exact for such heads.

Every map is finished identically: ReLU (only evidence *for* the class is kept), bilinear up-sampling to the input
size (half-pixel centres, as ``cv2.resize``), then per-image min-max scaling to [0, 1] (an all-zero map stays
zero). With ``mask=`` (e.g. a lung mask, as COVID-XNet restricts its CAMs to the lungs) the map is multiplied by
the mask and rescaled so its maximum inside the mask is 1.

The default target layer is the registry's ``cam_layer`` for the model's name (e.g. DenseNet's final ``relu`` for
``covid_cxnet``, ``conv5_act`` for ``covid_xnet``); for other models, the last layer with a 4-D output (the rule the
COVID-CXNet authors' Grad-CAM used). Models must have one input and one output, and the target layer must be a
layer of the model itself (not inside a nested sub-model).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from cxrzoo.nn.model import spec_of
from cxrzoo.spec import ARCHITECTURES

if TYPE_CHECKING:
    import keras
    import numpy.typing as npt
    import tensorflow as tf

__all__ = ["CAM", "GradCAM", "GradCAMPlusPlus", "ScoreCAM", "default_cam_layer"]


def default_cam_layer(model: keras.Model) -> str:
    """The target layer used when none is given: the ``cam_layer`` of the model's spec (or of the architecture
    named ``model.name``) if that layer exists in the model, else the last layer whose output is 4-D (B, H, W, C)."""
    spec = spec_of(model)
    name = spec.cam_layer if spec is not None else None
    if name is None and model.name in ARCHITECTURES:
        name = ARCHITECTURES.get(model.name).cam_layer
    if name and any(layer.name == name for layer in model.layers):
        return name
    for layer in reversed(model.layers):
        output = getattr(layer, "output", None)
        if output is not None and not isinstance(output, (list, tuple)) and len(output.shape) == 4:
            return layer.name
    raise ValueError(f"model {model.name!r} has no layer with a 4-D (B, H, W, C) output to explain; pass layer=")


def _single_io(model: keras.Model) -> None:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"CAM methods need a model with one input and one output; {model.name!r} has "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    if len(model.outputs[0].shape) != 2:
        raise ValueError(
            f"CAM methods explain classifiers with (B, classes) outputs; {model.name!r} outputs "
            f"{tuple(model.outputs[0].shape)}"
        )


def _target_layer(model: keras.Model, layer: str | None) -> keras.Layer:
    name = layer or default_cam_layer(model)
    try:
        target = model.get_layer(name)
    except ValueError:
        raise ValueError(f"model {model.name!r} has no layer {name!r} (nested sub-models are not searched)") from None
    if len(target.output.shape) != 4:
        raise ValueError(f"target layer {name!r} outputs {tuple(target.output.shape)}; CAMs need (B, H, W, C) maps")
    return target


def _as_images(model: keras.Model, images: npt.ArrayLike) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    expected = len(model.inputs[0].shape)
    if x.ndim == expected - 1:
        x = x[None]
    if x.ndim != expected:
        raise ValueError(f"images must be (N, H, W, C) or one (H, W, C) image, got shape {np.shape(images)}")
    if x.shape[0] == 0:
        raise ValueError("images is an empty batch")
    if not np.all(np.isfinite(x)):
        raise ValueError("images contain NaN or infinite values")
    return x


def _class_indices(
    model: keras.Model, x: np.ndarray, class_index: int | Sequence[int] | None, units: int
) -> np.ndarray:
    n = x.shape[0]
    if class_index is None:
        if units == 1:
            return np.zeros(n, np.int64)
        return np.argmax(model.predict(x, verbose=0), axis=-1).astype(np.int64)
    idx = np.asarray(class_index, dtype=np.int64)
    idx = np.full(n, int(idx)) if idx.ndim == 0 else idx.reshape(-1)
    if idx.shape != (n,):
        raise ValueError(f"class_index must be an int or one index per image ({n}), got {class_index!r}")
    if idx.min() < 0 or idx.max() >= units:
        raise ValueError(f"class_index {class_index!r} is out of range for a model with {units} output unit(s)")
    return idx


def _logits_model(model: keras.Model) -> tuple[keras.Model, int]:
    """The model with its head's activation removed and a one-unit head presented as logits ``[0, z]``.

    Returns ``(wrapper, units)``. A Dense head with a fused sigmoid/softmax is recomputed from its own variables
    (so the wrapper always reflects the current weights); a final ``Activation`` layer is skipped; a linear output
    is taken as logits already. Other outputs are used as they are.
    """
    import keras
    from keras import ops

    output = model.outputs[0]
    head = next((layer for layer in reversed(model.layers) if layer.output is output), None)
    activation = getattr(head, "activation", None)
    act_name = getattr(activation, "__name__", str(activation))
    if isinstance(head, keras.layers.Activation) and act_name in ("softmax", "sigmoid"):
        logits = head.input
    elif isinstance(head, keras.layers.Dense) and act_name in ("softmax", "sigmoid"):
        logits = ops.matmul(head.input, head.kernel)
        if head.use_bias:
            logits = logits + head.bias
    else:
        logits = output
    units = int(logits.shape[-1])
    if units == 1:
        logits = ops.concatenate([ops.zeros_like(logits), logits], axis=-1)
    return keras.Model(model.inputs, logits, name=f"{model.name}_logits"), units


def _upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import tensorflow as tf

    if maps.shape[1:3] == tuple(size):
        return maps.astype(np.float32)
    return tf.image.resize(maps[..., None].astype(np.float32), size, method="bilinear").numpy()[..., 0]


def _as_mask(mask: npt.ArrayLike, n: int, size: tuple[int, int]) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim == 4 and m.shape[-1] == 1:
        m = m[..., 0]
    if m.ndim == 2:
        m = np.broadcast_to(m, (n, *m.shape))
    if m.ndim != 3 or m.shape[0] != n or m.shape[1:] != tuple(size):
        raise ValueError(f"mask must be (H, W) or (N, H, W) matching the images {(n, *size)}, got {np.shape(mask)}")
    if m.dtype == bool or np.issubdtype(m.dtype, np.integer):
        return (m != 0).astype(np.float32)
    m = m.astype(np.float32)
    if not np.all(np.isfinite(m)) or m.min() < 0.0 or m.max() > 1.0:
        raise ValueError("a float mask must have finite values in [0, 1]")
    return m


def finish_maps(raw: np.ndarray, size: tuple[int, int], mask: npt.ArrayLike | None = None) -> np.ndarray:
    """ReLU → bilinear up-sampling to ``size`` → per-image min-max to [0, 1] → optional mask restriction."""
    raw = np.asarray(raw, np.float32)
    if mask is not None:
        mask = _as_mask(mask, raw.shape[0], size)
    maps = _upsample(np.maximum(raw, 0.0), size)
    lo = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - lo
    maps = np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1.0), 0.0)
    if mask is not None:
        maps = maps * mask
        top = maps.max(axis=(1, 2), keepdims=True)
        maps = np.where(top > 0, maps / np.where(top > 0, top, 1.0), 0.0)
    return maps.astype(np.float32)


class _Method:
    """Shared call protocol; subclasses implement :meth:`raw_maps`."""

    def __init__(self, *, layer: str | None = None):
        self.layer = layer

    def __call__(
        self,
        model: keras.Model,
        images: npt.ArrayLike,
        class_index: int | Sequence[int] | None = None,
        *,
        mask: npt.ArrayLike | None = None,
    ) -> np.ndarray:
        """Maps (N, H, W) float32 in [0, 1] for ``images`` (N, H, W, C) or one (H, W, C) image.

        Args:
            model: a Keras classifier with one input and a (B, classes) output.
            images: prepared exactly as the model expects (the maps explain that input).
            class_index: the class to explain: an int for every image, one int per image, or None for each
                image's predicted class (for a one-unit sigmoid head, the only unit, 0).
            mask: optional (H, W) or (N, H, W) mask (bool, integer or float in [0, 1]) restricting the maps,
                e.g. a lung mask.
        """
        _single_io(model)
        x = _as_images(model, images)
        target = _target_layer(model, self.layer)
        if mask is not None:  # checked before the (possibly long) map computation
            _as_mask(mask, x.shape[0], x.shape[1:3])
        raw = self.raw_maps(model, target, x, class_index)
        return finish_maps(raw, x.shape[1:3], mask)

    def raw_maps(  # pragma: no cover - abstract
        self, model: keras.Model, target: keras.Layer, x: np.ndarray, class_index: int | Sequence[int] | None
    ) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({options})"


class _TfKerasVisMethod(_Method):
    """Runs a tf-keras-vis visualizer on the logits wrapper, without its up-sampling and normalization."""

    def _visualizer(self, wrapper: keras.Model):
        raise NotImplementedError  # pragma: no cover

    def _extra_kwargs(self) -> dict:
        return {}

    def raw_maps(
        self, model: keras.Model, target: keras.Layer, x: np.ndarray, class_index: int | Sequence[int] | None
    ) -> np.ndarray:
        wrapper, units = _logits_model(model)
        idx = _class_indices(model, x, class_index, units)
        return self._run(wrapper, units, target, x, idx)

    def _run(self, wrapper: keras.Model, units: int, target: keras.Layer, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        # A one-unit head is presented as logits [0, z]: its unit 0 is column 1.
        columns = tf.constant(idx + 1 if units == 1 else idx)

        def score(outputs: tf.Tensor) -> tf.Tensor:
            return tf.gather(outputs, columns, batch_dims=1)

        with warnings.catch_warnings():
            # Keras warns that tf-keras-vis passes the single input as a list; harmless.
            warnings.filterwarnings("ignore", message=r"The structure of `inputs`", category=UserWarning)
            cam = self._visualizer(wrapper)(
                score,
                x,
                penultimate_layer=target.name,
                seek_penultimate_conv_layer=False,
                activation_modifier=None,
                expand_cam=False,
                normalize_cam=False,
                **self._extra_kwargs(),
            )
        return np.asarray(cam, np.float32)


class GradCAM(_TfKerasVisMethod):
    """Grad-CAM (Selvaraju et al., ICCV 2017) through ``tf_keras_vis.gradcam.Gradcam``, on the logits.

    Channel weights are the spatially averaged gradients of the class logit with respect to the target maps;
    the map is their weighted sum, then ReLU. (The COVID-CXNet authors' variant used "guided" positive gradients
    and no ReLU; this is the standard method.)

    Args:
        layer: target layer name; default :func:`default_cam_layer`.
    """

    def _visualizer(self, wrapper: keras.Model):
        from tf_keras_vis.gradcam import Gradcam

        return Gradcam(wrapper, clone=False)


class GradCAMPlusPlus(_TfKerasVisMethod):
    """Grad-CAM++ (Chattopadhay et al., WACV 2018) through ``tf_keras_vis.gradcam_plus_plus.GradcamPlusPlus``.

    Args:
        layer: target layer name; default :func:`default_cam_layer`.
    """

    def _visualizer(self, wrapper: keras.Model):
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

        return GradcamPlusPlus(wrapper, clone=False)


class ScoreCAM(_Method):
    """Score-CAM (Wang et al., CVPR-W 2020), gradient-free, with the masks run in batches and a progress bar.

    Each target map, min-max scaled and up-sampled, masks the input; the class probability of each masked input
    weights its map. That is one forward pass per channel and image (1,024 at 320×320 for DenseNet-121).
    ``max_n`` keeps only each image's ``max_n`` channels with the largest spatial standard deviation ("Faster
    Score-CAM"), trading fidelity for time (tf-keras-vis, given a batch, keeps the union over its images); a
    ``max_n`` above the target layer's channel count is clamped to it with a ``UserWarning`` naming both numbers.

    The arithmetic is tf-keras-vis' ``Scorecam`` (the test suite checks equality against it): linear up-sampling
    with ``scipy.ndimage.zoom(order=1, mode="nearest")``, min-max with Keras' epsilon, softmax of the logits wrapper
    (a one-unit sigmoid head is presented as logits ``[0, z]``, so the weights are the sigmoid probabilities).
    Unlike tf-keras-vis, which builds every masked copy of an image at once (channels × H × W × C floats, about
    1.3 GB for one COVID-CXNet input), cxrzoo up-samples and masks ``batch_size`` channels at a time, so memory
    stays at ``batch_size`` masked copies, and reports progress.

    Args:
        layer: target layer name; default :func:`default_cam_layer`.
        max_n: None for all channels, or the number of channels to keep (clamped to the layer's channels).
        batch_size: masked inputs per forward pass.
        progress: show a tqdm progress bar on stderr when the call runs more than ``progress_min`` masks
            (images × channels); False never shows one.
        progress_min: the number of masks above which the bar is shown (short calls stay quiet).

    Example:
        >>> maps = ScoreCAM(max_n=64, progress=False)(model, images)  # (N, H, W) float32 in [0, 1]
    """

    def __init__(
        self,
        *,
        layer: str | None = None,
        max_n: int | None = None,
        batch_size: int = 32,
        progress: bool = True,
        progress_min: int = 256,
    ):
        super().__init__(layer=layer)
        if max_n is not None and int(max_n) < 1:
            raise ValueError(f"max_n must be None or >= 1, got {max_n!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        if int(progress_min) < 0:
            raise ValueError(f"progress_min must be >= 0, got {progress_min!r}")
        self.max_n = None if max_n is None else int(max_n)
        self.batch_size = int(batch_size)
        self.progress = bool(progress)
        self.progress_min = int(progress_min)

    def raw_maps(
        self, model: keras.Model, target: keras.Layer, x: np.ndarray, class_index: int | Sequence[int] | None
    ) -> np.ndarray:
        import sys

        import keras
        from tqdm import tqdm

        channels = int(target.output.shape[-1])
        keep = channels if self.max_n is None else self.max_n
        if keep > channels:
            # stacklevel 3: the caller of ScoreCAM(...)(model, images) (raw_maps ← _Method.__call__ ← caller)
            warnings.warn(
                f"ScoreCAM max_n={self.max_n} exceeds the {channels} channels of target layer {target.name!r}; "
                f"using all {channels} channels",
                UserWarning,
                stacklevel=3,
            )
            keep = channels
        wrapper, units = _logits_model(model)
        idx = _class_indices(model, x, class_index, units)
        columns = idx + 1 if units == 1 else idx  # a one-unit head is presented as logits [0, z]: unit 0 is column 1
        features = keras.Model(wrapper.inputs, target.output, name=f"{model.name}_scorecam_target")
        total = x.shape[0] * keep
        bar = tqdm(
            total=total,
            desc="Score-CAM",
            unit="mask",
            file=sys.stderr,
            leave=False,
            disable=not self.progress or total <= self.progress_min,
        )
        try:
            return np.stack([self._one(wrapper, features, x[i], int(columns[i]), keep, bar) for i in range(len(x))])
        finally:
            bar.close()

    def _one(self, wrapper: keras.Model, features: keras.Model, image: np.ndarray, column: int, keep: int, bar):
        import keras
        import tensorflow as tf
        from scipy.ndimage import zoom

        maps = features([image[None]], training=False)  # (1, h, w, C); a list, as the functional model's inputs
        if keep < int(maps.shape[-1]):
            # the channels with the largest spatial standard deviation, chosen as tf-keras-vis chooses them
            _, top = tf.math.top_k(tf.math.reduce_std(maps, axis=(1, 2))[0], keep)
            maps = tf.gather(maps, top, axis=-1)
        maps = np.asarray(maps, np.float32)
        factors = (1.0, image.shape[0] / maps.shape[1], image.shape[1] / maps.shape[2], 1.0)
        eps = keras.config.epsilon()
        weights = np.empty(maps.shape[-1], np.float32)
        for start in range(0, maps.shape[-1], self.batch_size):
            stop = min(start + self.batch_size, maps.shape[-1])
            up = zoom(maps[..., start:stop], factors, order=1, mode="nearest")[0]  # (H, W, b)
            lo = up.min(axis=(0, 1), keepdims=True)
            up = (up - lo) / (up.max(axis=(0, 1), keepdims=True) - lo + eps)
            masked = image[None] * np.moveaxis(up, -1, 0)[..., None]  # (b, H, W, C)
            logits = wrapper.predict_on_batch([masked])
            weights[start:stop] = np.asarray(tf.nn.softmax(logits, axis=-1))[:, column]
            bar.update(stop - start)
        return np.tensordot(maps[0], weights, axes=([-1], [0]))


class CAM(_Method):
    """Class activation mapping (Zhou et al., CVPR 2016) for a GAP → dense head, as COVID-XNet uses it.

    ``M_c(x, y) = Σ_k w[k, c] · f_k(x, y)``: the target maps ``f_k`` weighted by the dense kernel column of class
    ``c``. The target layer must feed a ``GlobalAveragePooling2D`` whose output reaches a ``Dense`` layer directly
    or through ``Dropout``; otherwise (e.g. COVID-CXNet's GAP → Dense(10) → Dense head) a ValueError says to use
    Grad-CAM. For a one-unit sigmoid head the map is that unit's.

    Args:
        layer: target layer name; default :func:`default_cam_layer`.
    """

    def raw_maps(
        self, model: keras.Model, target: keras.Layer, x: np.ndarray, class_index: int | Sequence[int] | None
    ) -> np.ndarray:
        import keras

        dense = gap_dense_head(model, target)
        idx = _class_indices(model, x, class_index, int(dense.kernel.shape[-1]))
        features = keras.Model(model.input, target.output)(x, training=False)
        weights = dense.kernel.numpy()[:, idx].T  # (N, K)
        return np.einsum("nhwk,nk->nhw", keras.ops.convert_to_numpy(features), weights)


def _consumers(model: keras.Model, tensor: keras.KerasTensor) -> list:
    return [layer for layer in model.layers if any(t is tensor for t in _inputs_of(layer))]


def _inputs_of(layer: keras.Layer) -> list:
    try:
        value = layer.input
    except (AttributeError, ValueError):
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def gap_dense_head(model: keras.Model, target: keras.Layer) -> keras.layers.Dense:
    """The Dense layer that reads ``GlobalAveragePooling2D(target)`` (through Dropout at most) and gives the model
    output (directly or through a final Activation); ValueError if the model has no such CAM-compatible head."""
    import keras

    gaps = [
        layer for layer in _consumers(model, target.output) if isinstance(layer, keras.layers.GlobalAveragePooling2D)
    ]
    after = _consumers(model, gaps[0].output) if len(gaps) == 1 else []
    while len(after) == 1 and isinstance(after[0], keras.layers.Dropout):
        after = _consumers(model, after[0].output)
    if len(after) == 1 and isinstance(after[0], keras.layers.Dense):
        dense = after[0]
        tail = _consumers(model, dense.output)
        if dense.output is model.outputs[0] or (
            len(tail) == 1 and isinstance(tail[0], keras.layers.Activation) and tail[0].output is model.outputs[0]
        ):
            return dense
    raise ValueError(
        f"CAM needs the target layer {target.name!r} to feed GlobalAveragePooling2D → Dense (the "
        f"output layer) in {model.name!r}; this model's head is different, use GradCAM instead"
    )
