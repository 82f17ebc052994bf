"""Training StarGAN as the paper and the official release do (Choi et al., CVPR 2018).

Losses: WGAN-GP adversarial loss (lambda_gp 10 on interpolates of real and fake images),
attribute classification by the discriminator's second head (binary cross-entropy with logits,
lambda_cls 1: real images with their labels train D, fakes with their target labels train G) and
an L1 cycle reconstruction (lambda_rec 10). D takes ``n_critic`` (5) steps per G step; both use
Adam (1e-4, betas 0.5 / 0.999). Target labels are the batch's labels shuffled, images are flipped
at random, as in the release.

Checkpoints take the release's names in ``checkpoint_dir``: ``{iter}-G.ckpt`` and ``{iter}-D.ckpt``
(plain state dicts) and, for an exact resume, ``{iter}-opt.ckpt`` (both optimisers and the run's
seed). Every random draw of iteration ``i`` (batch, flips, target labels, interpolation weights)
comes from a generator seeded by ``(seed, i)``, so a resumed run repeats an uninterrupted one.

On a GPU (``device="cuda"``) the networks run in bfloat16 autocast with channels-last tensors
and cuDNN's autotuner; the gradient penalty, which differentiates twice, stays in float32. A
wall-clock budget (``max_minutes``) ends a run cleanly with a checkpoint, and ``export_dir``
receives G in half precision as safetensors shards at every checkpoint, so a run cut short still
leaves weights that can travel.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from privface.base.errors import InputError
from privface.base.files import atomic_write
from privface.privmetrics.readers import read_celeba_attributes

from .checkpoints import (load_state_strictly, read_checkpoint, save_checkpoint,
                          save_generator_shards)
from .data import EpochBatches, FaceDataset, match_images
from .networks import RELEASED_ATTRIBUTES, Discriminator, Generator

CONFIG_NAME = "stargan.json"


def gradient_penalty(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's penalty: the mean over the batch of ``(||d out / d x||_2 - 1) ** 2``.

    ``x`` must require gradients and ``out`` be computed from it; the graph is kept so the
    penalty can itself be back-propagated (``create_graph``).

    Examples
    --------
    >>> x = torch.randn(4, 3, 2, 2, requires_grad=True)
    >>> w = torch.ones(12) / 12 ** 0.5  # a linear critic with unit-norm gradient
    >>> round(float(gradient_penalty(x.flatten(1) @ w, x)), 6)
    0.0
    """
    grad = torch.autograd.grad(outputs=out, inputs=x, grad_outputs=torch.ones_like(out),
                               retain_graph=True, create_graph=True, only_inputs=True)[0]
    norm = torch.sqrt(torch.sum(grad.reshape(grad.size(0), -1) ** 2, dim=1))
    return torch.mean((norm - 1) ** 2)


def classification_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits, summed over attributes, averaged over the batch.

    Examples
    --------
    >>> round(float(classification_loss(torch.zeros(2, 5), torch.ones(2, 5))), 4)  # 5 * ln 2
    3.4657
    """
    return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / logits.size(0)


def _seed_for(*key: int) -> int:
    # Independent, well-mixed streams per (run seed, purpose, iteration or epoch).
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1, np.uint64)[0])


def _stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train_stargan(
    images: str | os.PathLike,
    labels: str | os.PathLike | pd.DataFrame,
    *,
    attributes: Sequence[str] = RELEASED_ATTRIBUTES,
    image_size: int = 128,
    batch_size: int = 16,
    iterations: int = 200_000,
    checkpoint_dir: str | os.PathLike = "stargan_checkpoints",
    save_every: int = 10_000,
    resume: int | None = None,
    conv_dim: int = 64,
    repeat_num: int = 6,
    d_conv_dim: int = 64,
    d_repeat_num: int = 6,
    lambda_cls: float = 1.0,
    lambda_rec: float = 10.0,
    lambda_gp: float = 10.0,
    n_critic: int = 5,
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    iterations_decay: int = 0,
    seed: int | None = None,
    workers: int = 0,
    device: str = "cpu",
    precision: str = "auto",
    max_minutes: float | None = None,
    save_every_minutes: float | None = None,
    preload: bool = False,
    export_dir: str | os.PathLike | None = None,
    export_name: str = "stargan",
    log_every: int = 10,
    log: Callable[[str], None] | None = _stderr_log,
    on_iteration: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """Train StarGAN on a folder of aligned CelebA crops and their labels.

    Parameters
    ----------
    images : path-like
        Folder of CelebA's aligned crops (178 x 218, or a scaled copy such as 89 x 109).
    labels : path-like or DataFrame
        CelebA attribute file (``list_attr_celeba.txt`` layout) or a table indexed by file name
        with 1 / -1 columns. Only images in both the folder and the labels are used.
    attributes : sequence of str
        The attributes the generator learns to set, in label-vector order.
    image_size, batch_size, iterations : int
        Square side the crops are resized to; images per batch; iteration to stop after.
    checkpoint_dir : path-like
        Where ``{iter}-G.ckpt``, ``{iter}-D.ckpt``, ``{iter}-opt.ckpt`` and ``stargan.json``
        (the run's settings) are written, every ``save_every`` iterations and at the end.
    resume : int, optional
        Continue from the checkpoints of this iteration in ``checkpoint_dir``.
    conv_dim, repeat_num, d_conv_dim, d_repeat_num : int
        Generator and discriminator sizes (the release's: 64, 6, 64, 6).
    lambda_cls, lambda_rec, lambda_gp, n_critic, lr, betas
        The paper's loss weights and optimiser settings (the defaults).
    iterations_decay : int
        Decay both learning rates linearly to 0 over this many last iterations, as the paper
        describes (0: constant; the release's step decay leaves the rate practically unchanged).
    seed : int, optional
        Seeds the initial weights (``torch.manual_seed``) and every random draw of the run.
    workers : int
        Processes reading images alongside training (0: read in this process).
    device : str
        Torch device. On CUDA, cuDNN's autotuner is switched on and the networks use
        channels-last memory.
    precision : {"auto", "bf16", "fp32"}
        Autocast dtype of the forward passes; ``"auto"`` is bf16 on CUDA and fp32 elsewhere.
        The gradient penalty is always computed in fp32 (it is differentiated twice).
    max_minutes : float, optional
        Wall-clock budget counted from the call (data loading included): after the first
        iteration that ends past it, checkpoints are written and training stops.
    save_every_minutes : float, optional
        Also write checkpoints whenever this many minutes passed since the last ones.
    preload : bool
        Decode every image once and keep the batch source on ``device`` (uint8), so the GPU
        never waits for JPEG decoding; batches and results are the same as without.
    export_dir : path-like, optional
        At every checkpoint, also write G in half precision as safetensors shards below 15 MiB
        (``{export_name}-00001-of-0000N.safetensors``) here, with the run's settings.
    export_name : str
        File stem of the exported shards.
    log_every : int
        Iterations between loss lines passed to ``log`` (stderr by default; None: quiet).
    on_iteration : callable, optional
        Called as ``on_iteration(iteration, losses)`` after every iteration (1-based).

    Returns
    -------
    dict
        The last value of each loss (``D/loss_real``, ``D/loss_fake``, ``D/loss_cls``,
        ``D/loss_gp``, and ``G/loss_fake``, ``G/loss_rec``, ``G/loss_cls`` once G has stepped).

    Raises
    ------
    InputError
        Unreadable labels, a missing attribute column, no image both in the folder and the
        labels, or bad settings; a checkpoint to resume from that is missing or does not match.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for i in range(4):
    ...     Image.new("RGB", (89, 109), (60 * i, 90, 200)).save(folder / f"00000{i}.jpg")
    >>> table = pd.DataFrame({"Male": [1, -1, 1, -1]}, index=[f"00000{i}.jpg" for i in range(4)])
    >>> losses = train_stargan(folder, table, attributes=["Male"], image_size=16, batch_size=2,
    ...     iterations=2, conv_dim=4, repeat_num=1, d_conv_dim=4, d_repeat_num=2, n_critic=1,
    ...     seed=0, checkpoint_dir=folder / "ckpt", log=None)
    >>> sorted(p.name for p in (folder / "ckpt").glob("*.ckpt"))
    ['2-D.ckpt', '2-G.ckpt', '2-opt.ckpt']
    >>> sorted(losses)[:2], all(np.isfinite(list(losses.values())))
    (['D/loss_cls', 'D/loss_fake'], True)
    """
    began = time.monotonic()  # the budget covers reading the data too
    attributes = list(attributes)
    _check_settings(attributes, image_size, batch_size, iterations, save_every, resume,
                    d_repeat_num, n_critic, iterations_decay, workers)
    amp = _autocast_dtype(precision, device)
    for name, value in (("max_minutes", max_minutes), ("save_every_minutes", save_every_minutes)):
        if value is not None and not value > 0:
            raise InputError(f"{name} must be positive, got {value}")
    say = log or (lambda message: None)
    checkpoints = Path(checkpoint_dir)
    exports = Path(export_dir) if export_dir is not None else None
    if exports is not None:
        exports.mkdir(parents=True, exist_ok=True)
    on_cuda = torch.device(device).type == "cuda"
    if on_cuda:
        torch.backends.cudnn.benchmark = True  # fixed shapes: the autotuner pays off at once
        torch.backends.cuda.matmul.allow_tf32 = True  # the fp32 gradient penalty
        torch.backends.cudnn.allow_tf32 = True
    layout = torch.channels_last if on_cuda else torch.contiguous_format

    if isinstance(labels, pd.DataFrame):
        table, source = labels, "the labels"
    else:
        table, source = read_celeba_attributes(labels), str(labels)
    paths, vectors, counts = match_images(images, table, attributes, source=source)
    say(f"privface train stargan: {counts['used']:,} image(s) in both {images} and {source} "
        f"({counts['unlabelled']:,} unlabelled image(s) and {counts['labels_without_image']:,} "
        "label row(s) without an image left out)")

    settings = {"attributes": attributes, "image_size": image_size, "conv_dim": conv_dim,
                "repeat_num": repeat_num, "d_conv_dim": d_conv_dim, "d_repeat_num": d_repeat_num}
    if seed is not None:
        torch.manual_seed(seed)
    G = Generator(conv_dim, len(attributes), repeat_num).to(device, memory_format=layout)
    D = Discriminator(image_size, d_conv_dim, len(attributes), d_repeat_num).to(
        device, memory_format=layout)
    g_optimizer = torch.optim.Adam(G.parameters(), lr, betas)
    d_optimizer = torch.optim.Adam(D.parameters(), lr, betas)
    run_seed = seed if seed is not None else _seed_for(int(time.time_ns()), os.getpid())
    start = 0
    if resume is not None:
        run_seed = _restore(checkpoints, resume, settings, G, D, g_optimizer, d_optimizer,
                            run_seed, say)
        start = resume
    else:
        checkpoints.mkdir(parents=True, exist_ok=True)
    _write_settings(checkpoints, {**settings, "seed": run_seed})

    batches = EpochBatches(len(paths), batch_size, seed=run_seed, start=start, stop=iterations,
                           seeds=_seed_for)
    dataset = FaceDataset(paths, vectors, image_size)
    if preload:
        loader = _preloaded_batches(dataset, batches, device, max(1, workers), say)
    else:
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches,
                                             num_workers=workers)
    export_meta = {**settings, "seed": run_seed, "batch_size": batch_size,
                   "precision": "bf16" if amp is not None else "fp32", "device": str(device)}

    def checkpoint(done: int) -> None:
        _save(checkpoints, done, G, D, g_optimizer, d_optimizer, run_seed)
        say(f"privface train stargan: checkpoints {done}-G.ckpt and {done}-D.ckpt written "
            f"to {checkpoints}")
        if exports is not None:
            shards = save_generator_shards(
                G.state_dict(), exports, export_name,
                {**export_meta, "iteration": done,
                 "minutes": round((time.monotonic() - began) / 60, 2)})
            say(f"privface train stargan: G in half precision written to "
                f"{', '.join(str(p) for p in shards)}")

    def autocast():
        return torch.autocast(torch.device(device).type, dtype=amp or torch.bfloat16,
                              enabled=amp is not None)

    G.train(), D.train()
    losses: dict[str, torch.Tensor] = {}
    last_save = time.monotonic()
    first = time.monotonic()
    done = start
    for i, (x_real, label_org) in zip(range(start, iterations), loader):
        draw = torch.Generator().manual_seed(_seed_for(run_seed, 1, i))
        n = x_real.size(0)
        flip = torch.rand(n, generator=draw) < 0.5  # RandomHorizontalFlip
        # non_blocking: these small copies from pageable memory are staged at once, so the CPU
        # queues the next kernels instead of waiting for the GPU at every iteration.
        x_real = x_real.to(device, non_blocking=True)
        x_real = torch.where(flip.to(device, non_blocking=True)[:, None, None, None],
                             x_real.flip(3), x_real)
        x_real = x_real.contiguous(memory_format=layout)
        label_org = label_org.to(device, non_blocking=True)
        perm = torch.randperm(n, generator=draw).to(device, non_blocking=True)
        label_trg = label_org[perm]  # targets: the batch shuffled
        alpha = torch.rand(n, 1, 1, 1, generator=draw).to(device, non_blocking=True)
        if iterations_decay:
            rate = lr * min(1.0, (iterations - i) / iterations_decay)
            for group in (*g_optimizer.param_groups, *d_optimizer.param_groups):
                group["lr"] = rate

        # Discriminator: real vs fake, attributes of real images, gradient penalty.
        with autocast():
            out_src, out_cls = D(x_real)
            d_loss_real = -torch.mean(out_src.float())
            d_loss_cls = classification_loss(out_cls.float(), label_org)
            x_fake = G(x_real, label_trg)
            out_src, _ = D(x_fake.detach())
            d_loss_fake = torch.mean(out_src.float())
        # In fp32 whatever the autocast: the penalty is differentiated twice, and a bf16
        # gradient norm near 1 would lose the very difference it penalises.
        x_hat = (alpha * x_real.data + (1 - alpha) * x_fake.data.float()).requires_grad_(True)
        out_src, _ = D(x_hat)
        d_loss_gp = gradient_penalty(out_src, x_hat)
        d_loss = d_loss_real + d_loss_fake + lambda_cls * d_loss_cls + lambda_gp * d_loss_gp
        g_optimizer.zero_grad(), d_optimizer.zero_grad()
        d_loss.backward()
        d_optimizer.step()
        # Kept as tensors: reading them (``.item()``) would make the CPU wait for the GPU.
        losses.update({"D/loss_real": d_loss_real.detach(), "D/loss_fake": d_loss_fake.detach(),
                       "D/loss_cls": d_loss_cls.detach(), "D/loss_gp": d_loss_gp.detach()})

        # Generator, every n_critic iterations: fool D, show the targets, cycle back.
        if (i + 1) % n_critic == 0:
            with autocast():
                x_fake = G(x_real, label_trg)
                out_src, out_cls = D(x_fake)
                g_loss_fake = -torch.mean(out_src.float())
                g_loss_cls = classification_loss(out_cls.float(), label_trg)
                g_loss_rec = torch.mean(torch.abs(x_real - G(x_fake, label_org).float()))
            g_loss = g_loss_fake + lambda_rec * g_loss_rec + lambda_cls * g_loss_cls
            g_optimizer.zero_grad(), d_optimizer.zero_grad()
            g_loss.backward()
            g_optimizer.step()
            losses.update({"G/loss_fake": g_loss_fake.detach(),
                           "G/loss_rec": g_loss_rec.detach(), "G/loss_cls": g_loss_cls.detach()})

        done = i + 1
        if log_every and (done % log_every == 0 or done == iterations):
            values = ", ".join(f"{tag}: {value:.4f}" for tag, value in _floats(losses).items())
            say(f"privface train stargan: iteration {done}/{iterations} "
                f"({time.monotonic() - began:.1f} s), {values}")
        out_of_time = (max_minutes is not None
                        and time.monotonic() - began >= max_minutes * 60)
        due = (save_every_minutes is not None
               and time.monotonic() - last_save >= save_every_minutes * 60)
        if done % save_every == 0 or done == iterations or out_of_time or due:
            checkpoint(done)
            last_save = time.monotonic()
        if on_iteration is not None:
            on_iteration(done, _floats(losses))
        if out_of_time:
            values = ", ".join(f"{tag}: {value:.4f}" for tag, value in _floats(losses).items())
            say(f"privface train stargan: time budget of {max_minutes:g} min reached; stopped "
                f"after iteration {done}/{iterations} ({done - start} this run), {values}")
            break
    seconds = time.monotonic() - first
    if done > start:
        rate = (done - start) / max(seconds, 1e-9)
        memory = (f", peak GPU memory {torch.cuda.max_memory_allocated(device) / 2 ** 30:.1f} GiB"
                  if on_cuda else "")
        say(f"privface train stargan: {done - start} iteration(s) in {seconds:.1f} s "
            f"({rate:.2f} it/s, {rate * batch_size:.1f} images/s){memory}")
    return _floats(losses)


def _floats(losses: dict[str, torch.Tensor]) -> dict[str, float]:
    return {tag: float(value) for tag, value in losses.items()}


def _check_settings(attributes: list[str], image_size: int, batch_size: int, iterations: int,
                    save_every: int, resume: int | None, d_repeat_num: int, n_critic: int,
                    iterations_decay: int, workers: int) -> None:
    if not attributes or len(set(attributes)) != len(attributes):
        raise InputError(f"attributes must be distinct and at least one, got {attributes}")
    if image_size < 16 or image_size % 4:
        raise InputError(f"image size must be a multiple of 4, at least 16, got {image_size}")
    if d_repeat_num < 1 or image_size % 2 ** d_repeat_num:
        raise InputError(f"image size {image_size} must be a multiple of 2 ** d_repeat_num = "
                         f"{2 ** d_repeat_num} (the discriminator halves it {d_repeat_num} "
                         "times)")
    for name, value in (("batch size", batch_size), ("iterations", iterations),
                        ("save every", save_every), ("n_critic", n_critic)):
        if value < 1:
            raise InputError(f"{name} must be at least 1, got {value}")
    if iterations_decay < 0 or workers < 0:
        raise InputError("iterations_decay and workers cannot be negative")
    if resume is not None and not 0 < resume < iterations:
        raise InputError(f"resume iteration {resume} must be between 1 and iterations - 1 "
                         f"({iterations - 1}): there is nothing left to train")


def _write_settings(folder: Path, settings: dict) -> None:
    text = json.dumps(settings, indent=2) + "\n"
    atomic_write(folder / CONFIG_NAME, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _save(folder: Path, iteration: int, G: Generator, D: Discriminator,
          g_optimizer: torch.optim.Optimizer, d_optimizer: torch.optim.Optimizer,
          seed: int) -> None:
    save_checkpoint(G.state_dict(), folder / f"{iteration}-G.ckpt")
    save_checkpoint(D.state_dict(), folder / f"{iteration}-D.ckpt")
    save_checkpoint({"g_optimizer": g_optimizer.state_dict(),
                     "d_optimizer": d_optimizer.state_dict(),
                     "iteration": iteration, "seed": seed}, folder / f"{iteration}-opt.ckpt")


def _restore(folder: Path, iteration: int, settings: dict, G: Generator, D: Discriminator,
             g_optimizer: torch.optim.Optimizer, d_optimizer: torch.optim.Optimizer,
             seed: int, say: Callable[[str], None]) -> int:
    """Load the checkpoints of ``iteration``; return the run's seed (the saved one if any)."""
    saved = folder / CONFIG_NAME
    if saved.is_file():
        before = json.loads(saved.read_text(encoding="utf-8"))
        changed = [key for key in settings if key in before and before[key] != settings[key]]
        if changed:
            raise InputError("cannot resume with different settings: " + ", ".join(
                f"{key} was {before[key]!r}, now {settings[key]!r}" for key in changed),
                file=str(saved))
    try:
        load_state_strictly(G, read_checkpoint(folder / f"{iteration}-G.ckpt"),
                            str(folder / f"{iteration}-G.ckpt"))
        load_state_strictly(D, read_checkpoint(folder / f"{iteration}-D.ckpt"),
                            str(folder / f"{iteration}-D.ckpt"))
        opt = folder / f"{iteration}-opt.ckpt"
        if opt.is_file():
            state = read_checkpoint(opt)
            g_optimizer.load_state_dict(state["g_optimizer"])
            d_optimizer.load_state_dict(state["d_optimizer"])
            seed = int(state.get("seed", seed))
        else:  # e.g. the release's checkpoints: weights only, as its own resume does
            say(f"privface train stargan: no {opt.name}; the optimisers start afresh")
    except (ValueError, KeyError) as error:
        raise InputError(f"cannot resume from iteration {iteration}: {error}") from None
    say(f"privface train stargan: resumed from iteration {iteration} in {folder}")
    return seed


def _autocast_dtype(precision: str, device: str) -> torch.dtype | None:
    """bf16 for ``"bf16"`` (and ``"auto"`` on CUDA), None (plain fp32) otherwise."""
    if precision not in ("auto", "bf16", "fp32"):
        raise InputError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    try:
        kind = torch.device(device).type
    except RuntimeError as error:
        raise InputError(f"unknown torch device {device!r} ({error})") from None
    if precision == "bf16" or (precision == "auto" and kind == "cuda"):
        return torch.bfloat16
    return None


def _preloaded_batches(dataset: FaceDataset, batches: EpochBatches, device: str, threads: int,
                       say: Callable[[str], None]):
    """Batches as the DataLoader gives them, from every image decoded once and kept on device."""
    from concurrent.futures import ThreadPoolExecutor

    # imported on use: it loads Pillow
    from privface.attributes.images import load_image
    from .data import celeba_square

    def read(path: Path) -> np.ndarray:
        return celeba_square(load_image(path), dataset.image_size)

    started = time.monotonic()
    with ThreadPoolExecutor(max(threads, os.cpu_count() or 1)) as pool:  # PIL frees the GIL
        faces = np.stack(list(pool.map(read, dataset.paths)))
    pixels = torch.from_numpy(faces).to(device)  # uint8: a quarter of the memory of floats
    labels = torch.from_numpy(np.ascontiguousarray(dataset.labels)).to(device)
    say(f"privface train stargan: {len(faces):,} images decoded into {device} memory in "
        f"{time.monotonic() - started:.1f} s ({pixels.numel() / 2 ** 20:.0f} MiB)")
    for batch in batches:
        index = torch.as_tensor(batch).to(device, non_blocking=True)
        # The same arithmetic as to_model_input, so that a preloaded run repeats a streamed one.
        x = pixels[index].permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5)
        yield x, labels[index]
