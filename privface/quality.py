"""Image quality of paired photos: PSNR, SSIM and MS-SSIM (the paper's Table 1).

Every score compares an output photo with the photo it was made from, on 8-bit RGB arrays with a
data range of 255, through torchmetrics' functional API:

* **PSNR** in dB, ``10 log10(255^2 / MSE)`` over all pixels and channels. Identical photos have an
  infinite PSNR; it is capped at :data:`PSNR_CAP` (100 dB) so that means stay finite and JSON can
  hold them. Two different photos of ``h x w`` pixels score at most ``10 log10(255^2 * 3 h w)``:
  98.8 dB for CelebA's 178 x 218, so there the cap means "identical". Photos above about 51,000
  pixels that differ by a grey level or two in a few pixels can pass 100 dB; they are capped too,
  as indistinguishable from identical.
* **SSIM** (Wang et al. 2004): 11 x 11 Gaussian window, sigma 1.5, k1 0.01, k2 0.03, averaged
  over the three channels. Computed in float32 (float64 convolutions are far slower on a CPU);
  identical photos are set to exactly 1, which float32 rounding can miss by 1e-6.
* **MS-SSIM** (Wang et al. 2003) with the standard five scales and weights (betas), and
  torchmetrics' default ``normalize="relu"`` (a negative contrast term counts as 0 rather than
  making a fractional power undefined), so scores lie in [0, 1]. Each scale
  halves the photo, and the 11-pixel window must still fit at the coarsest one, so small photos use
  fewer scales: the largest number ``s <= 5`` that fits (see :func:`ms_ssim_scales`), with the
  first ``s`` betas renormalised to sum to 1 so that scores stay on the same 0..1 footing. The
  number of scales used is reported with every score; compare MS-SSIM only between runs that used
  the same number.

torch and torchmetrics are imported on first use, so importing this module stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: PSNR reported for identical photos (whose true PSNR is infinite), in dB.
PSNR_CAP = 100.0

#: The MS-SSIM weights of Wang et al. (2003), finest scale first.
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

#: Side of the Gaussian window of SSIM and MS-SSIM, in pixels.
KERNEL_SIZE = 11

# Photos per torch call: large enough to amortise the call, small enough that a batch of 12-
# megapixel photos (and SSIM's five intermediate maps of each) stays within a few GB.
_BATCH_PIXELS = 16 * 218 * 178


def ms_ssim_scales(height: int, width: int, *, kernel_size: int = KERNEL_SIZE,
                   max_scales: int = len(MS_SSIM_BETAS)) -> int:
    """The number of MS-SSIM scales a ``height`` x ``width`` photo allows (0: none).

    With ``s`` scales the photo is halved ``s - 1`` times and the window must still fit, so the
    smaller side must exceed ``(kernel_size - 1) * 2**(s - 1)``. torchmetrics also checks that
    ``side // max(1, s - 1)**2 > kernel_size - 1`` (and ``side >= 2**s``), which is stricter for
    three to five scales: five need a side of at least 176 (not 161), four at least 99 (not 81),
    three at least 44 (not 41). Both are required here, so torchmetrics never refuses a photo.

    Examples
    --------
    >>> ms_ssim_scales(218, 178)  # CelebA's aligned photos
    5
    >>> ms_ssim_scales(109, 89), ms_ssim_scales(64, 64), ms_ssim_scales(8, 8)
    (3, 3, 0)
    """
    side = min(int(height), int(width))
    for scales in range(max_scales, 0, -1):
        if (side > (kernel_size - 1) * 2 ** (scales - 1)
                and side // max(1, scales - 1) ** 2 > kernel_size - 1
                and side >= 2 ** scales):
            return scales
    return 0


def ms_ssim_betas(scales: int) -> tuple[float, ...]:
    """The first ``scales`` MS-SSIM weights, renormalised to sum to 1.

    All five are the published weights as they are (they sum to 1.0001), so that full-size
    scores match other implementations.

    Examples
    --------
    >>> [round(b, 4) for b in ms_ssim_betas(3)]
    [0.0711, 0.453, 0.476]
    >>> ms_ssim_betas(5) == MS_SSIM_BETAS
    True
    """
    if not 1 <= scales <= len(MS_SSIM_BETAS):
        raise ValueError(f"scales must be between 1 and {len(MS_SSIM_BETAS)}, got {scales}")
    if scales == len(MS_SSIM_BETAS):
        return MS_SSIM_BETAS  # the published weights, unrounded by a renormalisation
    first = np.asarray(MS_SSIM_BETAS[:scales], dtype=np.float64)
    return tuple(float(b) for b in first / first.sum())


@dataclass
class QualityScores:
    """Per-pair quality scores, in the order the pairs were given.

    Attributes
    ----------
    psnr : ndarray of float
        PSNR in dB, at most :data:`PSNR_CAP`.
    ssim : ndarray of float
        SSIM in [-1, 1] (1: identical).
    ms_ssim : ndarray of float
        MS-SSIM in [0, 1]; NaN where the photo is too small for even one scale.
    ms_ssim_scales : ndarray of int
        The number of scales each MS-SSIM score used (0 where there is none).
    """

    psnr: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ssim: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ms_ssim: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ms_ssim_scales: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.psnr)

    def summary(self) -> dict:
        """Means over the pairs (NaN-free; ``None`` when no pair has a score), JSON-ready.

        Examples
        --------
        >>> a = np.zeros((32, 32, 3), np.uint8)
        >>> image_quality([a], [a]).summary()["psnr"]
        100.0
        """
        def mean(values: np.ndarray) -> float | None:
            values = values[np.isfinite(values)]
            return float(values.mean()) if values.size else None

        scales, counts = np.unique(self.ms_ssim_scales, return_counts=True)
        return {"pairs": len(self), "psnr": mean(self.psnr), "ssim": mean(self.ssim),
                "ms_ssim": mean(self.ms_ssim), "psnr_cap_db": PSNR_CAP,
                "pairs_at_psnr_cap": int(np.count_nonzero(self.psnr >= PSNR_CAP)),
                "ms_ssim_scales": {str(int(s)): int(c) for s, c in zip(scales, counts)}}


def _as_rgb(image: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"{what}: expected a uint8 RGB array (0..255), got dtype {array.dtype}")
    if array.ndim == 2:  # grey: the same plane three times gives the same SSIM and PSNR
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{what}: expected an (height, width, 3) RGB array, got shape "
                         f"{array.shape}")
    return array


class QualityMeter:
    """Collects pairs of photos and scores them in batches of the same shape.

    Pairs are buffered per shape and scored when a buffer fills (or on :meth:`scores`), so that
    a long run of pairs costs a few torch calls; when photos of many sizes wait at once, all are
    scored, so that at most about two batches' worth of pixels is ever held.

    Parameters
    ----------
    batch_pixels : int
        Pixels (height x width) per batch; at least one pair per batch.

    Examples
    --------
    >>> meter = QualityMeter()
    >>> a = np.full((40, 40, 3), 100, np.uint8)
    >>> meter.add(a, a + 1)
    0
    >>> round(float(meter.scores().psnr[0]), 3)  # 20 log10(255 / 1)
    48.131
    """

    def __init__(self, *, batch_pixels: int = _BATCH_PIXELS) -> None:
        self.batch_pixels = int(batch_pixels)
        self._pending: dict[tuple[int, ...], list[tuple[int, np.ndarray, np.ndarray]]] = {}
        self._done: dict[int, tuple[float, float, float, int]] = {}
        self._count = 0
        self._pending_pixels = 0

    def add(self, original: np.ndarray, modified: np.ndarray) -> int:
        """Queue one pair; returns its index in :meth:`scores`. Shapes must match."""
        index = self._count
        a = _as_rgb(original, f"pair {index}, first photo")
        b = _as_rgb(modified, f"pair {index}, second photo")
        if a.shape != b.shape:
            raise ValueError(f"pair {index}: the photos differ in shape, {a.shape} and "
                             f"{b.shape}; quality compares photos of the same size")
        self._count += 1
        queue = self._pending.setdefault(a.shape, [])
        queue.append((index, a, b))
        self._pending_pixels += a.shape[0] * a.shape[1]
        if len(queue) * a.shape[0] * a.shape[1] >= self.batch_pixels:
            self._flush(a.shape)
        elif self._pending_pixels >= 2 * self.batch_pixels:
            # Photos of many different sizes never fill a batch: score what waits rather than
            # hold a whole folder of them in memory.
            for shape in list(self._pending):
                self._flush(shape)
        return index

    def scores(self) -> QualityScores:
        """Scores of every pair added so far, in the order they were added."""
        for shape in list(self._pending):
            self._flush(shape)
        n = self._count
        rows = np.array([self._done[i] for i in range(n)], dtype=np.float64).reshape(n, 4)
        return QualityScores(psnr=rows[:, 0], ssim=rows[:, 1], ms_ssim=rows[:, 2],
                             ms_ssim_scales=rows[:, 3].astype(np.int64))

    def _flush(self, shape: tuple[int, ...]) -> None:
        queue = self._pending.pop(shape, [])
        if not queue:
            return
        self._pending_pixels -= len(queue) * shape[0] * shape[1]
        indices = [i for i, _, _ in queue]
        psnr, ssim, ms_ssim, scales = _score_batch(np.stack([a for _, a, _ in queue]),
                                                   np.stack([b for _, _, b in queue]))
        for j, index in enumerate(indices):
            self._done[index] = (float(psnr[j]), float(ssim[j]), float(ms_ssim[j]), scales)


def _ssim_scale_function():
    """One scale of torchmetrics' SSIM (its index and contrast term), or None.

    Private to torchmetrics: the public functions serve when a release renames it, and
    tests/test_quality.py holds the two to the same bits. Imported on use, so that importing
    this module (and ``privface.evaluate``) loads neither torch nor torchmetrics.
    """
    try:
        from torchmetrics.functional.image.ssim import _ssim_update
    except ImportError:  # pragma: no cover - torchmetrics without it
        return None
    return _ssim_update


def _ssim_and_ms_ssim(preds, target, betas: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """SSIM and MS-SSIM of a float32 batch in one pass over the scales.

    SSIM is MS-SSIM's first scale before its ``relu``: torchmetrics' two functions compute that
    scale twice (a third of MS-SSIM's work). These are their steps (``normalize="relu"``), in
    their order, so the numbers are theirs to the last bit.

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros((1, 3, 64, 64))
    >>> [v.tolist() for v in _ssim_and_ms_ssim(x, x, ms_ssim_betas(3))]
    [[1.0], [1.0]]
    """
    import torch
    import torch.nn.functional as F

    ssim_scale = _ssim_scale_function()
    contrasts = []
    ssim = sim = None
    for _ in betas:
        sim, contrast = ssim_scale(preds, target, True, [1.5, 1.5],
                                    [KERNEL_SIZE, KERNEL_SIZE], 255.0, 0.01, 0.03,
                                    return_contrast_sensitivity=True)
        if ssim is None:
            ssim = sim
        sim, contrast = torch.relu(sim), torch.relu(contrast)
        contrasts.append(contrast)
        preds, target = F.avg_pool2d(preds, (2, 2)), F.avg_pool2d(target, (2, 2))
    contrasts[-1] = sim
    weights = torch.tensor(betas, device=preds.device).view(-1, 1)
    ms_ssim = torch.prod(torch.stack(contrasts) ** weights, axis=0)
    return ssim.double().numpy(), ms_ssim.double().numpy()


def _score_batch(originals: np.ndarray, modified: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """PSNR, SSIM, MS-SSIM of a batch ``(n, h, w, 3)`` of same-shape pairs; and the scales used."""
    import torch
    from torchmetrics.functional.image import (multiscale_structural_similarity_index_measure,
                                               peak_signal_noise_ratio,
                                               structural_similarity_index_measure)

    height, width = originals.shape[1:3]
    # float32: float64 convolutions are about 15 times slower on a CPU, and SSIM's sums over an
    # 11 x 11 window of 0..255 values lose nothing that matters at float32's 7 digits.
    a = torch.from_numpy(originals).permute(0, 3, 1, 2).to(torch.float32)
    b = torch.from_numpy(modified).permute(0, 3, 1, 2).to(torch.float32)
    with torch.no_grad():
        psnr = peak_signal_noise_ratio(b, a, data_range=255.0, reduction="none",
                                       dim=(1, 2, 3)).double().numpy()
        # MSE 0 gives +inf; the cap keeps means finite (documented as PSNR_CAP).
        psnr = np.minimum(np.nan_to_num(psnr, nan=PSNR_CAP, posinf=PSNR_CAP), PSNR_CAP)
        scales = ms_ssim_scales(height, width)
        if min(height, width) < KERNEL_SIZE:
            # The window does not fit: torchmetrics would pad a tiny photo into a made-up score.
            ssim = ms_ssim = np.full(len(a), np.nan)
        elif scales and _ssim_scale_function() is not None:
            ssim, ms_ssim = _ssim_and_ms_ssim(b, a, ms_ssim_betas(scales))
        else:
            ssim = structural_similarity_index_measure(
                b, a, data_range=255.0, kernel_size=KERNEL_SIZE, reduction="none"
            ).double().numpy()
            ms_ssim = np.full(len(a), np.nan) if scales == 0 else \
                multiscale_structural_similarity_index_measure(
                    b, a, data_range=255.0, kernel_size=KERNEL_SIZE, betas=ms_ssim_betas(scales),
                    reduction="none").double().numpy()
    # Identical photos score exactly 1: in float32, SSIM's ratio of sums can come out as 0.999999.
    identical = (a == b).flatten(1).all(dim=1).numpy()
    ssim[identical & np.isfinite(ssim)] = 1.0
    ms_ssim[identical & np.isfinite(ms_ssim)] = 1.0
    return psnr, ssim, ms_ssim, scales


def image_quality(originals: Sequence[np.ndarray], modified: Sequence[np.ndarray], *,
                  batch_pixels: int = _BATCH_PIXELS) -> QualityScores:
    """PSNR, SSIM and MS-SSIM of each pair ``(originals[i], modified[i])`` of RGB uint8 photos.

    Parameters
    ----------
    originals, modified : sequences of ndarray (height, width, 3), uint8
        The reference photos and the photos to score against them; pair ``i`` must have one
        shape, different pairs may differ. Grey ``(height, width)`` arrays are accepted.
    batch_pixels : int
        Pixels per torch call (pairs of one shape are scored together).

    Returns
    -------
    QualityScores
        Per-pair arrays, in the given order.

    Raises
    ------
    ValueError
        Lists of different lengths, a pair whose photos differ in shape (naming the pair and
        both shapes), or an array that is not 8-bit RGB.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> photo = rng.integers(0, 248, (218, 178, 3), dtype=np.uint8)
    >>> scores = image_quality([photo, photo], [photo, photo + 8])  # 20 log10(255 / 8) dB
    >>> scores.psnr.round(2).tolist(), float(scores.ssim[0]), scores.ms_ssim_scales.tolist()
    ([100.0, 30.07], 1.0, [5, 5])
    """
    if len(originals) != len(modified):
        raise ValueError(f"expected as many modified photos as originals, got {len(modified)} "
                         f"and {len(originals)}")
    meter = QualityMeter(batch_pixels=batch_pixels)
    for original, changed in zip(originals, modified):
        meter.add(original, changed)
    return meter.scores()


def pair_quality(original: np.ndarray, modified: np.ndarray) -> dict:
    """PSNR, SSIM, MS-SSIM and the MS-SSIM scales of one pair, as a dict.

    Examples
    --------
    >>> a = np.zeros((64, 64, 3), np.uint8)
    >>> pair_quality(a, a)
    {'psnr': 100.0, 'ssim': 1.0, 'ms_ssim': 1.0, 'ms_ssim_scales': 3}
    """
    scores = image_quality([original], [modified])
    return {"psnr": float(scores.psnr[0]), "ssim": float(scores.ssim[0]),
            "ms_ssim": float(scores.ms_ssim[0]), "ms_ssim_scales": int(scores.ms_ssim_scales[0])}
