"""The 2-D wavelet scattering transform (WST) as a serializable Keras 3 layer.

CXR-Net Module 2 starts with a fixed (non-learned) scattering transform of the CXR with J=2 scales and L=6
orientations (§2.2.3; Mallat, "Group invariant scattering"; Bruna & Mallat, "Invariant scattering
convolution networks"). The authors ran ``kymatio.keras.Scattering2D``; :class:`Scattering2D` here computes the
same coefficients, in the same channel order, with TensorFlow ops only, so a model holding it saves to ``.keras``
with ``safe_mode=True`` and exports as a SavedModel. The Morlet filter bank is derived at build time from
``J``, ``L`` and the input size; the saved configuration holds only ``J``, ``L`` and ``max_order``.

Conventions (those of kymatio 0.3, which the published CXR-Net weights were trained with):

* each axis is reflect-padded to ``(size // 2**J + 2) · 2**J`` samples (:func:`padded_size`; 300×340 → 308×348),
  convolutions are circular products in the Fourier domain, and the output is cropped by one sample per side;
* wavelet (j, θ) is a Morlet filter of width 0.8·2**j, frequency 3π/4 / 2**j, slant 4/L and angle
  ``(⌊L/2⌋ - 1 - θ)·π/L``; the low-pass is a Gaussian of width 0.8·2**(J-1);
* subsampling by 2**k is done by periodizing the spectrum, and filters are periodized the same way for the
  coarser resolutions;
* channel order: S0, then order 1 by (j1, θ1), then order 2 by (j1, θ1, j2, θ2) with j2 > j1.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

# The Morlet/Gabor normalization constant of kymatio 0.3 uses this truncated value of π; keeping it makes the
# coefficients equal to the ones the published weights were trained on (the difference is 3e-5 relative).
_NORM_PI = 3.1415
_FFT_STATE = threading.local()


@contextlib.contextmanager
def complex_fft() -> Iterator[None]:
    """Within this block, :class:`Scattering2D` layers *traced* compute their real 2-D FFTs as complex FFTs of the
    real signal (``FFT2D``, then the first ``W // 2 + 1`` columns) instead of ``RFFT2D``.

    For LiteRT: its built-in RFFT2D kernel only takes power-of-two lengths (CXR-Net pads 300×340 to 304×344), and
    the converter always picks the built-in one; FFT2D stays a TensorFlow op, run by the Flex delegate. The
    spectra agree to float32 rounding. ``cxrzoo.export(..., "litert", allow_tf_ops=True)`` uses it.
    """
    previous = getattr(_FFT_STATE, "complex", False)
    _FFT_STATE.complex = True
    try:
        yield
    finally:
        _FFT_STATE.complex = previous


def _rfft2d(x):
    if not getattr(_FFT_STATE, "complex", False):
        return tf.signal.rfft2d(x)
    width = x.shape[-1] if x.shape[-1] is not None else tf.shape(x)[-1]
    spectrum = tf.signal.fft2d(tf.complex(x, tf.zeros_like(x)))
    return spectrum[..., : width // 2 + 1]


def padded_size(size: int, J: int) -> int:
    """Padded length of one axis: the multiple of 2**J at least 2**J + 1 samples beyond ``size``."""
    step = 2**J
    return ((size + step) // step + 1) * step


def _gabor(M: int, N: int, sigma: float, theta: float, xi: float, slant: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D Gabor filter on an M×N periodic grid (origin at [0, 0]) summed over 5×5 periods, and its Gaussian
    envelope alone (the same filter with ``xi = 0``), both complex128 and normalized by 2πσ²/slant."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    curvature = rot @ np.diag([1.0, slant * slant]) @ rot.T / (2.0 * sigma * sigma)
    smallest = float(np.linalg.eigvalsh(curvature)[0])
    wave = np.zeros((M, N), np.complex128)
    envelope = np.zeros((M, N), np.float64)
    for ex in range(-2, 3):
        xx = np.arange(ex * M, ex * M + M, dtype=np.float64)[:, None]
        for ey in range(-2, 3):
            yy = np.arange(ey * N, ey * N + N, dtype=np.float64)[None, :]
            # A periodic copy whose Gaussian envelope underflows to exactly 0.0 everywhere adds nothing; skipping
            # it keeps the result bit-identical and the filter bank cheap to build.
            nearest = np.min(np.abs(xx)) ** 2 + np.min(np.abs(yy)) ** 2
            if smallest * nearest > 746.0:
                continue
            gauss = np.exp(
                -(curvature[0, 0] * xx * xx + (curvature[0, 1] + curvature[1, 0]) * xx * yy + curvature[1, 1] * yy * yy)
            )
            envelope += gauss
            if xi:
                wave += gauss * (np.exp(1j * xi * c * xx) * np.exp(1j * xi * s * yy))
    norm = 2.0 * _NORM_PI * sigma * sigma / slant
    if not xi:
        wave = envelope.astype(np.complex128)
    return wave / norm, envelope / norm


def _morlet(M: int, N: int, sigma: float, theta: float, xi: float, slant: float) -> np.ndarray:
    """A Gabor filter minus its Gaussian envelope scaled so that the result has exactly zero mean."""
    wave, envelope = _gabor(M, N, sigma, theta, xi, slant)
    return wave - (wave.sum() / envelope.sum()) * envelope


def periodize_spectrum(spectrum: np.ndarray, level: int) -> np.ndarray:
    """The filter ``spectrum`` for a signal subsampled by 2**level: cut the band above its Nyquist, then fold."""
    if level == 0:
        return spectrum.copy()
    M, N = spectrum.shape
    k = 2**level
    cut = spectrum.copy()
    # zero the frequencies between the new Nyquist limits (kymatio's rectangular crop)
    cut[int(M * 2.0 ** (-level - 1)) : int(M * 2.0 ** (-level - 1)) + int(M * (1 - 2.0**-level)), :] = 0
    cut[:, int(N * 2.0 ** (-level - 1)) : int(N * 2.0 ** (-level - 1)) + int(N * (1 - 2.0**-level))] = 0
    return cut.reshape(k, M // k, k, N // k).sum(axis=(0, 2))


@functools.lru_cache(maxsize=8)
def morlet_filter_bank(
    M: int, N: int, J: int, L: int
) -> tuple[tuple[np.ndarray, ...], dict[tuple[int, int], tuple[np.ndarray, ...]]]:
    """Fourier-domain filters for an M×N (padded) grid, float32, read-only.

    Returns ``(phi, psi)``: ``phi[r]`` is the low-pass at resolution r (r < J); ``psi[(j, theta)][r]`` is wavelet
    (j, θ) at resolution r, for the resolutions a scattering of depth 2 needs (r ≤ min(j, J - 2)).
    """
    psi = {}
    for j in range(J):
        for theta in range(L):
            angle = (int(L - L / 2 - 1) - theta) * math.pi / L
            wavelet = _morlet(M, N, 0.8 * 2**j, angle, 3.0 / 4.0 * math.pi / 2**j, 4.0 / L)
            spectrum = np.real(np.fft.fft2(wavelet))
            levels = tuple(periodize_spectrum(spectrum, r).astype(np.float32) for r in range(min(j + 1, max(J - 1, 1))))
            psi[(j, theta)] = levels
    low = np.real(np.fft.fft2(_gabor(M, N, 0.8 * 2 ** (J - 1), 0.0, 0.0)[1]))
    phi = tuple(periodize_spectrum(low, r).astype(np.float32) for r in range(J))
    for array in (*phi, *(a for levels in psi.values() for a in levels)):
        array.setflags(write=False)
    return phi, psi


def scattering_paths(J: int, L: int, max_order: int) -> list[tuple[tuple[int, int], ...]]:
    """Scattering paths in output-channel order: () for S0, ((j1, θ1),), ((j1, θ1), (j2, θ2)) with j2 > j1."""
    first = [((j, t),) for j in range(J) for t in range(L)]
    second = [p + ((j2, t2),) for p in first for j2 in range(p[0][0] + 1, J) for t2 in range(L)]
    return [()] + first + (second if max_order >= 2 else [])


class _FilterBank:
    """The filters in the layout :class:`Scattering2D` uses them, as NumPy arrays.

    A plain object on purpose: it is neither tracked nor saved (the filters are derived again on load), and the
    arrays become constants of whichever graph calls the layer (eager, ``tf.function``, SavedModel export).
    """

    def __init__(self, phi: Sequence[np.ndarray], psi: Mapping[tuple[int, int], Sequence[np.ndarray]], J: int, L: int):
        # φ_r on the half spectrum of a real signal (φ is real and even, so the product stays Hermitian)
        self.phi_half = [f[:, : f.shape[1] // 2 + 1].astype(np.complex64) for f in phi]
        # ψ_{j,·} at resolution r split into its (2**(j-r))² spectral aliases, each (L, M_r / k, N_r / k) and
        # divided by k² (exact: a power of two), so that periodizing a product is a sum of aliased products
        self.psi_alias = {}
        for j in range(J):
            for r in range(len(psi[(j, 0)])):
                bank = np.stack([psi[(j, t)][r] for t in range(L)])
                k = 2 ** (j - r)
                m, n = bank.shape[1] // k, bank.shape[2] // k
                self.psi_alias[(j, r)] = [
                    (a, b, bank[:, a * m : (a + 1) * m, b * n : (b + 1) * n] / (k * k))
                    for a in range(k)
                    for b in range(k)
                ]


@keras.saving.register_keras_serializable(package="cxrzoo")
class Scattering2D(keras.layers.Layer):
    """2-D Morlet wavelet scattering transform, equal to ``kymatio.keras.Scattering2D`` (kymatio 0.3).

    Args:
        J: number of dyadic scales; the output is subsampled by 2**J.
        L: number of orientations.
        max_order: 1 or 2.

    Input: (B, H, W) or channels-last (B, H, W, C) float32 with static H and W (each ≥ 2**J).
    Output: (B, H // 2**J, W // 2**J, K) for rank-3 input, (B, H // 2**J, W // 2**J, C·K) for rank-4 input
    (channel-major: input channel c gives output channels c·K .. c·K + K - 1), with
    K = 1 + J·L + L²·J(J-1)/2 coefficients per input channel in kymatio's order (see :func:`scattering_paths`).
    CXR-Net uses J=2, L=6 on 300×340 images: 49 coefficients at 75×85.

    Example:
        >>> wst = Scattering2D(J=2, L=6)
        >>> wst(np.zeros((1, 300, 340, 1), "float32")).shape
        TensorShape([1, 75, 85, 49])
    """

    def __init__(self, J: int = 2, L: int = 8, max_order: int = 2, **kwargs):
        super().__init__(**kwargs)
        if int(J) < 1:
            raise ValueError(f"J must be >= 1, got {J}")
        if int(L) < 1:
            raise ValueError(f"L must be >= 1, got {L}")
        if max_order not in (1, 2):
            raise ValueError(f"max_order must be 1 or 2, got {max_order}")
        self.J, self.L, self.max_order = int(J), int(L), int(max_order)
        self.paths = tuple(scattering_paths(self.J, self.L, self.max_order))
        self.input_spec = keras.layers.InputSpec(min_ndim=3, max_ndim=4)

    @property
    def coefficients(self) -> int:
        """Number of scattering coefficients per input channel."""
        return len(self.paths)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None:
            raise ValueError(f"Scattering2D needs static spatial sizes, got input shape {tuple(input_shape)}")
        step = 2**self.J
        if height < step or width < step:
            raise ValueError(f"input {height}×{width} is smaller than 2**J = {step}")
        self._size = (int(height), int(width))
        self._padded = (padded_size(height, self.J), padded_size(width, self.J))
        phi, psi = morlet_filter_bank(*self._padded, self.J, self.L)
        self._bank = _FilterBank(phi, psi, self.J, self.L)
        super().build(input_shape)

    @staticmethod
    def _full_spectrum(half: tf.Tensor, width: int) -> tuple[tf.Tensor, tf.Tensor]:
        """Real and imaginary parts of the full 2-D spectrum of a real signal, from its ``rfft2d``."""
        # F[u, v] = conj(F[-u mod M, N - v]) supplies the columns rfft2d leaves out.
        tail = half[..., 1 : width - width // 2]
        tail = tf.concat([tail[..., :1, :], tf.reverse(tail[..., 1:, :], axis=[-2])], axis=-2)
        tail = tf.reverse(tail, axis=[-1])
        re = tf.concat([tf.math.real(half), tf.math.real(tail)], axis=-1)
        im = tf.concat([tf.math.imag(half), -tf.math.imag(tail)], axis=-1)
        return re, im

    def _wavelets(self, re: tf.Tensor, im: tf.Tensor, aliases: Sequence[tuple[int, int, tf.Tensor]]) -> tf.Tensor:
        """|x ⋆ ψ_{j,θ}| subsampled to scale j, for every source (axis 1) at resolution r and every θ.

        ``re``, ``im``: full spectra (N, P, M_r, N_r) of the sources; ``aliases``: ψ_{j,·} at resolution r as
        ``(a, b, tensor)`` spectral aliases. Returns real signals (N, P·L, M_j, N_j).
        """
        prod_re = prod_im = None
        for a, b, filt in aliases:
            m, n = filt.shape[1], filt.shape[2]
            f = filt[None, None]
            part_re = re[..., a * m : (a + 1) * m, b * n : (b + 1) * n][:, :, None] * f
            part_im = im[..., a * m : (a + 1) * m, b * n : (b + 1) * n][:, :, None] * f
            prod_re = part_re if prod_re is None else prod_re + part_re
            prod_im = part_im if prod_im is None else prod_im + part_im
        z = tf.complex(prod_re, prod_im)
        shape = tf.shape(z)
        z = tf.reshape(z, tf.stack([shape[0], shape[1] * shape[2], shape[3], shape[4]]))
        return tf.abs(tf.signal.ifft2d(z))

    def _lowpass(self, half: tf.Tensor, r: int) -> tf.Tensor:
        """x ⋆ φ subsampled to 2**J and cropped, for signals given by their half spectra at resolution r."""
        height, width = self._padded[0] // 2**r, self._padded[1] // 2**r
        # Periodizing the spectrum and inverting at the coarse size equals inverting at the fine size and taking
        # every k-th sample; the latter keeps everything in real FFTs.
        out = tf.signal.irfft2d(half * tf.constant(self._bank.phi_half[r]), fft_length=[height, width])
        k = 2 ** (self.J - r)
        return out[..., ::k, ::k][..., 1:-1, 1:-1]

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        x = tf.cast(inputs, tf.float32)
        rank4 = len(inputs.shape) == 4
        if rank4:
            channels = inputs.shape[-1]
            x = tf.transpose(x, [0, 3, 1, 2])
            x = tf.reshape(x, tf.concat([[-1], self._size], 0))
        (height, width), (mp, np_) = self._size, self._padded
        top, left = (mp - height) // 2, (np_ - width) // 2
        x = tf.pad(x, [[0, 0], [top, mp - height - top], [left, np_ - width - left]], mode="REFLECT")
        half = _rfft2d(x[:, None])
        # one graph constant per filter, however many sources share it
        aliases = {key: [(a, b, tf.constant(f)) for a, b, f in value] for key, value in self._bank.psi_alias.items()}

        # Paths grow resolution by resolution: groups[r] holds (half spectra, labels) of the signals at scale r.
        groups: list[list] = [[] for _ in range(self.J)]
        groups[0].append((half, [()]))
        # first order at scale 0 stays at full resolution, so it joins S0 before the low-pass of resolution 0
        u = self._wavelets(*self._full_spectrum(half, np_), aliases[(0, 0)])
        groups[0].append((_rfft2d(u), [((0, t),) for t in range(self.L)]))
        outputs, labels = [], []
        for r in range(self.J):
            spectra = tf.concat([h for h, _ in groups[r]], axis=1) if len(groups[r]) > 1 else groups[r][0][0]
            names = [name for _, group in groups[r] for name in group]
            outputs.append(self._lowpass(spectra, r))
            labels.extend(names)
            # sources of a wavelet at a coarser scale: the image itself (first order) or a path ending at scale r
            keep = [i for i, name in enumerate(names) if len(name) < self.max_order and (not name or name[-1][0] == r)]
            if not keep or r + 1 >= self.J:
                continue
            sources = spectra if len(keep) == len(names) else tf.gather(spectra, keep, axis=1)
            re, im = self._full_spectrum(sources, np_ // 2**r)
            for j in range(r + 1, self.J):
                # one source at a time keeps the intermediates small (cache-friendly on CPU)
                for s in range(len(keep)):
                    u = self._wavelets(re[:, s : s + 1], im[:, s : s + 1], aliases[(j, r)])
                    groups[j].append((_rfft2d(u), [names[keep[s]] + ((j, t),) for t in range(self.L)]))
        coefficients = tf.concat(outputs, axis=1)
        order = [labels.index(path) for path in self.paths]
        coefficients = tf.gather(coefficients, order, axis=1)  # (N, K, H', W'), kymatio order
        coefficients = tf.transpose(coefficients, [0, 2, 3, 1])
        if rank4:
            out_h, out_w = coefficients.shape[1], coefficients.shape[2]
            coefficients = tf.reshape(coefficients, [-1, channels, out_h, out_w, self.coefficients])
            coefficients = tf.transpose(coefficients, [0, 2, 3, 1, 4])
            coefficients = tf.reshape(coefficients, [-1, out_h, out_w, channels * self.coefficients])
        return coefficients

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        step = 2**self.J
        height = None if input_shape[1] is None else input_shape[1] // step
        width = None if input_shape[2] is None else input_shape[2] // step
        channels = self.coefficients * (input_shape[3] if len(input_shape) == 4 else 1)
        return (input_shape[0], height, width, channels)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "J": self.J, "L": self.L, "max_order": self.max_order}
