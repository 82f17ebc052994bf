"""StarGAN (Choi et al., CVPR 2018): one generator that sets several face attributes at once.

The networks are those of the official PyTorch release (yunjey/stargan), with its parameter
names, so its published CelebA checkpoints (``200000-G.ckpt``: Black_Hair, Blond_Hair,
Brown_Hair, Male, Young, at 128 or 256 px) load unchanged; ``privface train stargan`` trains new
ones with the paper's losses and settings. Checkpoints are read as plain tensors only
(``weights_only``), and no weights are ever downloaded.

- :mod:`.networks`: ``Generator``, ``Discriminator`` (the release's architecture).
- :mod:`.checkpoints`: ``load_stargan_generator`` and friends.
- :mod:`.generator`: ``StarGANGenerator``, the pipeline's generator (name ``"stargan"``).
- :mod:`.training`: ``train_stargan`` (WGAN-GP, lambda_cls 1, lambda_rec 10, lambda_gp 10,
  n_critic 5, Adam 1e-4, betas 0.5 / 0.999).
- :mod:`.data`: CelebA's preprocessing as the release does it.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError("StarGAN needs PyTorch: pip install 'privface[generators]'") from error

from .checkpoints import (load_stargan_discriminator, load_stargan_generator, read_checkpoint,
                          save_checkpoint)
from .data import celeba_square
from .generator import StarGANGenerator
from .networks import RELEASED_ATTRIBUTES, Discriminator, Generator, ResidualBlock
from .training import gradient_penalty, train_stargan

__all__ = [
    "RELEASED_ATTRIBUTES",
    "Discriminator",
    "Generator",
    "ResidualBlock",
    "StarGANGenerator",
    "celeba_square",
    "gradient_penalty",
    "load_stargan_discriminator",
    "load_stargan_generator",
    "read_checkpoint",
    "save_checkpoint",
    "train_stargan",
]
