"""The rib-shadow (bone) suppression autoencoder that COVID-XNet runs before classification.

Reference:
    Duran-Lopez et al., "COVID-XNet: A Custom Deep Learning System to Diagnose and Locate COVID-19 in Chest X-ray
    Images", Applied Sciences 10(16):5683, 2020, §2.2.1: "rib shadows were suppressed from the
    X-ray images with a pretrained autoencoder model developed by Chuong M. Huynh"
    (github.com/hmchuong/ML-BoneSuppression, MIT, "version 2" model of 2018-10-23).

Architecture (the author's "AE-like model", tied weights, no biases)::

    input (H, W, 1) ─ [conv 5×5/1 same → ReLU → max-pool 2×2/2 same] × 3   (16, 32, 64 maps)
                    ─ [transposed conv 5×5/2 same → ReLU] × 3                  (32, 16, 1 maps)

The decoder reuses the encoder kernels in reverse order (kernel ``i`` of the encoder is the transposed
convolution back to encoder input ``i``'s shape), so the network owns exactly three kernels: 64,400 parameters.
Both halves live in one registered layer, :class:`TiedConvAutoencoder`, so that training updates the single
shared copy and the model still round-trips through ``.keras`` with ``safe_mode=True``. Each transposed
convolution outputs the exact shape of the matching encoder input, as the author's TensorFlow 1 graph did, so any
input size works (the author ran 1024×1024; sizes divisible by 8 avoid ragged borders).

The output is the last ReLU: non-negative and unbounded above. The author's tool min-max rescaled it to 8 bits
when saving; :func:`cxrzoo.models.covid_xnet.suppress_bones` does that, and handles polarity (the network was trained
on intensity-inverted radiographs, lungs bright).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf
from keras import ops

from cxrzoo.nn.blocks import make_input
from cxrzoo.nn.model import register_model
from cxrzoo.weights.loading import load_weights

if TYPE_CHECKING:
    from cxrzoo.weights.manifest import WeightsEntry

ARCH = "bone_suppression"
# Variable names in the author's TensorFlow 1 checkpoint (Adam slots and training counters are ignored).
CHECKPOINT_KERNEL = "encoder/layer/{index}/W"


@keras.saving.register_keras_serializable(package="cxrzoo")
class TiedConvAutoencoder(keras.layers.Layer):
    """Convolutional autoencoder whose decoder reuses the encoder kernels (tied weights, no biases).

    Encoder stage ``i``: ``ReLU(conv(x, K_i))`` (stride 1, same padding) then a 2×2/2 max-pool (same padding).
    Decoder, in reverse: ``ReLU(conv_transpose(x, K_i))`` with stride 2 and the output shape of encoder input
    ``i``. ``K_i`` has shape (k, k, c_in_i, filters_i), the layout of the author's checkpoint.

    Args:
        filters: output maps of the encoder convolutions (16, 32, 64 for the published model).
        kernel_size: square kernel size (5).
        kernel_initializer: for training from scratch; the published weights replace it.
    """

    def __init__(
        self,
        filters: Sequence[int] = (16, 32, 64),
        kernel_size: int = 5,
        kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        if not self.filters or min(self.filters) < 1:
            raise ValueError(f"filters must be a non-empty sequence of positive integers, got {filters!r}")
        self.kernel_size = int(kernel_size)
        if self.kernel_size < 1:
            raise ValueError(f"kernel_size must be positive, got {kernel_size!r}")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernels = []

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("TiedConvAutoencoder needs a known channel count")
        c_in = int(channels)
        self.kernels = []
        for i, f in enumerate(self.filters):
            self.kernels.append(
                self.add_weight(
                    name=f"encoder_kernel_{i}",
                    shape=(self.kernel_size, self.kernel_size, c_in, f),
                    initializer=self.kernel_initializer,
                )
            )
            c_in = f

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        x = inputs
        shapes = []
        for kernel in self.kernels:
            shapes.append(tf.shape(x))
            x = ops.relu(ops.conv(x, kernel, strides=1, padding="same"))
            x = ops.max_pool(x, pool_size=2, strides=2, padding="same")
        for kernel, shape in zip(reversed(self.kernels), reversed(shapes)):
            # conv2d_transpose's filter layout is (h, w, out, in): exactly the encoder kernel of this stage.
            # The explicit output shape (not Keras' output_padding arithmetic) reproduces the author's graph for
            # odd sizes too.
            x = ops.relu(tf.nn.conv2d_transpose(x, kernel, output_shape=shape, strides=2, padding="SAME"))
        x.set_shape(inputs.shape)
        return x

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": list(self.filters),
            "kernel_size": self.kernel_size,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


def _checkpoint_prefix(paths: list[Path]) -> tuple[str, tempfile.TemporaryDirectory | None]:
    """The checkpoint prefix for ``tf.train.load_checkpoint``; the two files are staged side by side when they were
    resolved from different folders (e.g. index in a mirror, data in the cache)."""
    index = next((p for p in paths if p.name.endswith(".index")), None)
    if index is None:
        raise ValueError(f"a TensorFlow checkpoint needs its '.index' file; got {[str(p) for p in paths]}")
    prefix = index.with_name(index.name[: -len(".index")])
    data = [p for p in paths if ".data-" in p.name]
    if not data:
        data = sorted(index.parent.glob(prefix.name + ".data-*"))
        if not data:
            raise ValueError(f"{index}: no '{prefix.name}.data-*' file next to the checkpoint index")
    if all(p.parent == index.parent and p.name.startswith(prefix.name + ".") for p in data):
        return str(prefix), None
    staging = tempfile.TemporaryDirectory(prefix="cxrzoo_ckpt_")
    for p in [index, *data]:
        shutil.copyfile(p, Path(staging.name) / (prefix.name + p.name[p.name.index(".") :]))
    return str(Path(staging.name) / prefix.name), staging


def _load_checkpoint(model: keras.Model, paths: list[Path], entry: WeightsEntry | None) -> None:
    """Reads the author's TF1 checkpoint (``encoder/layer/i/W``) into the tied kernels, checking every shape."""
    layer = model.get_layer("autoencoder")
    prefix, staging = _checkpoint_prefix([Path(p) for p in paths])
    try:
        try:
            reader = tf.train.load_checkpoint(prefix)
        except (tf.errors.OpError, ValueError) as exc:
            raise ValueError(f"{prefix}: not a readable TensorFlow checkpoint ({exc})") from None
        available = reader.get_variable_to_shape_map()
        values = []
        for i, kernel in enumerate(layer.kernels):
            key = CHECKPOINT_KERNEL.format(index=i)
            if key not in available:
                raise ValueError(f"{prefix}: checkpoint has no variable {key!r} for encoder stage {i}")
            if tuple(available[key]) != tuple(kernel.shape):
                raise ValueError(
                    f"{prefix}: {key!r} has shape {tuple(available[key])}, the model expects {tuple(kernel.shape)}"
                )
            try:
                values.append(reader.get_tensor(key))
            except (tf.errors.OpError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"{prefix}: cannot read {key!r} from the checkpoint data (truncated or corrupt: {exc})"
                ) from None
        extra = sorted(
            k
            for k in available
            if k.startswith("encoder/layer/")
            and k.endswith("/W")
            and k not in {CHECKPOINT_KERNEL.format(index=i) for i in range(len(layer.kernels))}
        )
        if extra:
            raise ValueError(f"{prefix}: checkpoint has more encoder stages than the model: {extra}")
    finally:
        if staging is not None:
            staging.cleanup()
    for kernel, value in zip(layer.kernels, values):
        kernel.assign(value)


@register_model(paper="covid_xnet", task="image")
def build_bone_suppression(
    *,
    weights: str | None = None,
    input_tensor: keras.KerasTensor | None = None,
    input_shape: Sequence[int | None] = (None, None, 1),
    filters: Sequence[int] = (16, 32, 64),
    kernel_size: int = 5,
    name: str = "bone_suppression",
) -> keras.Model:
    """Bone-suppression autoencoder of hmchuong/ML-BoneSuppression, the preprocessing step of COVID-XNet.

    Reference: Duran-Lopez et al., COVID-XNet, §2.2.1; github.com/hmchuong/ML-BoneSuppression.

    Args:
        weights: None, ``"bone_suppression.jsrt_v2"`` (the author's TF1 checkpoint, converted on load; MIT) or a
            path to a checkpoint's ``.index`` file (its ``.data-*`` file must sit next to it).
        input_tensor: optional Keras tensor to build on.
        input_shape: (H, W, 1); any size (the author ran 1024×1024).
        filters: encoder maps (16, 32, 64 published).
        kernel_size: 5 published.
        name: model name.

    Input contract (published weights): a grayscale radiograph with **inverted polarity** (lungs bright, bones
    dark, as in BSE-JSRT), 8-bit values / 255, float32 (B, H, W, 1).

    Returns:
        A ``keras.Model`` (B, H, W, 1) → (B, H, W, 1), ReLU output (unbounded above; min-max rescale it, as
        :func:`cxrzoo.models.covid_xnet.suppress_bones` does). 64,400 parameters with the published configuration.

    Example:
        >>> model = cxrzoo.build_bone_suppression(weights="bone_suppression.jsrt_v2")
        >>> raw = model.predict(inverted_image[None, ..., None] / 255.0)[0, ..., 0]
    """
    inputs = make_input(input_tensor, input_shape)
    outputs = TiedConvAutoencoder(filters=filters, kernel_size=kernel_size, name="autoencoder")(inputs)
    model = keras.Model(inputs, outputs, name=name)
    return load_weights(model, weights, arch=ARCH, loader=_load_checkpoint)
