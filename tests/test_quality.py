"""Image quality of paired photos: PSNR (capped), SSIM and MS-SSIM with scales fitted to size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from privface.quality import (MS_SSIM_BETAS, PSNR_CAP, QualityMeter, image_quality,
                              ms_ssim_betas, ms_ssim_scales, pair_quality)


def _photo(height: int = 64, width: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth random photo (upsampled noise plus grain): SSIM behaves as on natural images."""
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 215, (max(2, height // 8), max(2, width // 8), 3))
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)


def test_identical_photos_score_the_cap_and_one():
    photo = _photo()
    scores = pair_quality(photo, photo.copy())
    assert scores == {"psnr": PSNR_CAP, "ssim": 1.0, "ms_ssim": 1.0, "ms_ssim_scales": 3}


def test_constant_offset_gives_the_textbook_psnr():
    photo = _photo()
    photo = np.clip(photo, 0, 245)
    for offset in (1, 5, 10):
        expected = 20 * math.log10(255 / offset)
        assert pair_quality(photo, photo + offset)["psnr"] == pytest.approx(expected, abs=1e-3)


def test_more_noise_lowers_every_score():
    photo = _photo(seed=1)
    rng = np.random.default_rng(2)
    noise = rng.normal(0, 1, photo.shape)
    noisy = [np.clip(photo + sigma * noise, 0, 255).round().astype(np.uint8)
             for sigma in (2, 8, 20, 50)]
    scores = image_quality([photo] * len(noisy), noisy)
    for name in ("psnr", "ssim", "ms_ssim"):
        values = getattr(scores, name)
        assert np.all(np.diff(values) < 0), (name, values)
        assert values[0] < (PSNR_CAP if name == "psnr" else 1.0)


def test_scales_fit_the_photo_size():
    assert ms_ssim_scales(218, 178) == 5  # CelebA: the standard five
    # (kernel_size - 1) * 2**(s - 1) < side, and torchmetrics' own side // (s - 1)**2 > 10:
    # the latter is the stricter for 3 to 5 scales.
    for side, scales in [(176, 5), (175, 4), (99, 4), (98, 3), (44, 3), (43, 2), (21, 2),
                         (20, 1), (11, 1), (10, 0)]:
        assert ms_ssim_scales(side, side) == scales, side
    assert ms_ssim_scales(109, 89) == 3  # CelebA at half size
    assert ms_ssim_scales(30, 200) == 2  # the smaller side decides
    for scales in range(1, 6):
        betas = ms_ssim_betas(scales)
        # The published five sum to 1.0001 and are kept as published; fewer are renormalised.
        assert len(betas) == scales and sum(betas) == pytest.approx(1.0, abs=2e-4)
        if scales < 5:
            assert sum(betas) == pytest.approx(1.0)
        ratios = np.array(betas) / np.array(MS_SSIM_BETAS[:scales])
        assert np.allclose(ratios, ratios[0])  # the published weights, rescaled


def test_small_photos_use_fewer_scales_and_tiny_ones_none():
    big, small, tiny = _photo(218, 178), _photo(40, 40, seed=3), _photo(8, 8, seed=4)
    scores = image_quality([big, small, tiny], [big, np.clip(small + 3, 0, 255).astype(np.uint8),
                                                tiny])
    assert scores.ms_ssim_scales.tolist() == [5, 2, 0]
    assert scores.ms_ssim[0] == 1.0 and 0 < scores.ms_ssim[1] < 1
    assert math.isnan(scores.ms_ssim[2]) and math.isnan(scores.ssim[2])
    assert scores.psnr[2] == PSNR_CAP  # PSNR needs no window
    summary = scores.summary()
    assert summary["ms_ssim_scales"] == {"0": 1, "2": 1, "5": 1}
    assert summary["ms_ssim"] == pytest.approx(np.nanmean(scores.ms_ssim))


def test_batches_keep_the_order_of_mixed_shapes():
    photos = [_photo(48, 40, seed=s) if s % 2 else _photo(40, 48, seed=s) for s in range(7)]
    offsets = [np.clip(p.astype(int) + s + 1, 0, 255).astype(np.uint8)
               for s, p in enumerate(photos)]
    batched = image_quality(photos, offsets, batch_pixels=2 * 48 * 40)
    one_by_one = [pair_quality(p, q) for p, q in zip(photos, offsets)]
    assert np.allclose(batched.psnr, [s["psnr"] for s in one_by_one])
    assert np.allclose(batched.ssim, [s["ssim"] for s in one_by_one], atol=1e-6)
    assert np.allclose(batched.ms_ssim, [s["ms_ssim"] for s in one_by_one], atol=1e-6)


def test_mismatched_shapes_raise_a_clear_error():
    with pytest.raises(ValueError, match=r"pair 1: the photos differ in shape, \(32, 32, 3\) "
                                         r"and \(32, 30, 3\)"):
        image_quality([_photo(32, 32)] * 2, [_photo(32, 32), _photo(32, 30)])
    with pytest.raises(ValueError, match="as many modified photos as originals"):
        image_quality([_photo()], [])
    with pytest.raises(ValueError, match="uint8"):
        QualityMeter().add(_photo().astype(np.float32), _photo())
    with pytest.raises(ValueError, match=r"\(height, width, 3\)"):
        QualityMeter().add(np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 4), np.uint8))


def test_grey_photos_are_scored_as_rgb():
    grey = _photo()[..., 0]
    assert pair_quality(grey, grey)["ssim"] == 1.0
    assert pair_quality(grey, np.clip(grey, 0, 250) + 5)["psnr"] < PSNR_CAP


def test_photos_of_many_sizes_are_scored_without_waiting_for_full_batches():
    photos = [_photo(40 + s, 40, seed=s) for s in range(7)]  # seven sizes: no batch ever fills
    changed = [np.clip(p.astype(int) + 4, 0, 255).astype(np.uint8) for p in photos]
    meter = QualityMeter(batch_pixels=3 * 40 * 40)
    waiting = []
    for p, q in zip(photos, changed):
        meter.add(p, q)
        waiting.append(sum(len(queue) for queue in meter._pending.values()))
    assert max(waiting) <= 6 and waiting[-1] < len(photos)  # scored along the way
    scores = meter.scores()
    assert np.allclose(scores.ssim, [pair_quality(p, q)["ssim"] for p, q in zip(photos, changed)],
                       atol=1e-6)


@pytest.mark.parametrize("shape", [(218, 178), (109, 89), (100, 120), (64, 64), (30, 25),
                                   (16, 16)])
def test_ssim_taken_from_ms_ssims_first_scale_equals_torchmetrics_to_the_bit(shape):
    """SSIM is computed once, as MS-SSIM's first scale: the numbers are torchmetrics' own."""
    import torch
    from torchmetrics.functional.image import (multiscale_structural_similarity_index_measure,
                                               structural_similarity_index_measure)

    from privface.quality import ms_ssim_betas, ms_ssim_scales

    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 256, (4, *shape, 3), dtype=np.uint8)
    # From a faint change to noise: contrast terms near 1 and below 0 (relu'd).
    noise = rng.normal(0, 1, a.shape) * np.array([2, 20, 80, 400])[:, None, None, None]
    b = np.clip(a + noise, 0, 255).astype(np.uint8)
    b[0] = a[0]
    scores = image_quality(list(a), list(b))
    scales = ms_ssim_scales(*shape)
    x = torch.from_numpy(a).permute(0, 3, 1, 2).to(torch.float32)
    y = torch.from_numpy(b).permute(0, 3, 1, 2).to(torch.float32)
    ssim = structural_similarity_index_measure(y, x, data_range=255.0, kernel_size=11,
                                               reduction="none").double().numpy()
    ssim[0] = 1.0
    np.testing.assert_array_equal(scores.ssim, ssim)
    if scales:
        ms = multiscale_structural_similarity_index_measure(
            y, x, data_range=255.0, kernel_size=11, betas=ms_ssim_betas(scales),
            reduction="none").double().numpy()
        ms[0] = 1.0
        np.testing.assert_array_equal(scores.ms_ssim, ms)
    else:
        assert np.isnan(scores.ms_ssim).all()


def test_the_full_scale_window_sums_are_computed_once_per_batch(monkeypatch):
    """SSIM and MS-SSIM's first scale are one computation: one full-size convolution, not two."""
    import torch.nn.functional as F

    sizes: list = []
    conv2d = F.conv2d

    def counting(input, *args, **kwargs):
        sizes.append(tuple(input.shape[-2:]))
        return conv2d(input, *args, **kwargs)

    monkeypatch.setattr(F, "conv2d", counting)
    photo = _photo(218, 178)
    image_quality([photo], [np.clip(photo.astype(int) + 9, 0, 255).astype(np.uint8)])
    assert sizes.count((228, 188)) == 1, sizes  # reflect-padded by 5 on each side
    assert len(sizes) == 5  # one per scale
