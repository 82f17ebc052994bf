"""StarGAN's networks, layer for layer those of the official release (yunjey/stargan, model.py).

The module and parameter names are the release's (``main.0.weight``, ``main.9.main.0.weight``,
``conv1.weight``, ...) so that its published checkpoints load with ``load_state_dict`` unchanged,
and checkpoints written here load in the official code.

One deliberate difference in behaviour, none in parameters: the release builds its instance norms
with ``track_running_stats=True`` but never calls ``eval()`` when it translates images, so its
published results use each image's own statistics. PyTorch's ``InstanceNorm2d`` in eval mode
would switch to the running averages instead and give different (worse) faces, so the norm here
always normalises with the image's statistics; the running buffers are kept, and updated in
training as the release does, only so that state dicts match.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: The attributes of the released CelebA models, in the order of their label vector.
RELEASED_ATTRIBUTES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` (affine, tracking running stats) that uses instance stats in eval too.

    Examples
    --------
    >>> norm = InstanceNorm2d(2).eval()
    >>> x = torch.arange(16.0).view(1, 2, 2, 4)
    >>> round(float(norm(x)[0, 0].mean().detach()), 6), sorted(norm.state_dict())
    (0.0, ['bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight'])
    """

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, affine=True, track_running_stats=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)  # instance stats, and running stats updated as upstream
        # Eval: the release's results come from instance statistics (see the module docstring);
        # passing no running buffers also leaves them untouched during inference.
        return F.instance_norm(x, None, None, self.weight, self.bias, True, self.momentum,
                               self.eps)


class ResidualBlock(nn.Module):
    """conv3x3 - IN - ReLU - conv3x3 - IN, added to its input (the bottleneck of the generator).

    Examples
    --------
    >>> ResidualBlock(8)(torch.zeros(1, 8, 4, 4)).shape
    torch.Size([1, 8, 4, 4])
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=1, bias=False),
            InstanceNorm2d(dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=1, bias=False),
            InstanceNorm2d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class Generator(nn.Module):
    """StarGAN's generator: image and target label vector in, translated image out.

    Parameters
    ----------
    conv_dim : int
        Channels of the first convolution (doubled by each of the two down-samplings).
    c_dim : int
        Length of the label vector (number of attributes).
    repeat_num : int
        Residual blocks in the bottleneck.

    Examples
    --------
    >>> g = Generator(conv_dim=4, c_dim=5, repeat_num=1)
    >>> g(torch.zeros(2, 3, 16, 16), torch.ones(2, 5)).shape
    torch.Size([2, 3, 16, 16])
    >>> list(g.state_dict())[:3]
    ['main.0.weight', 'main.1.weight', 'main.1.bias']
    """

    def __init__(self, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6) -> None:
        super().__init__()
        self.conv_dim, self.c_dim, self.repeat_num = conv_dim, c_dim, repeat_num
        layers: list[nn.Module] = [
            nn.Conv2d(3 + c_dim, conv_dim, kernel_size=7, stride=1, padding=3, bias=False),
            InstanceNorm2d(conv_dim),
            nn.ReLU(inplace=True)]
        dim = conv_dim
        for _ in range(2):  # down-sampling
            layers += [nn.Conv2d(dim, dim * 2, kernel_size=4, stride=2, padding=1, bias=False),
                       InstanceNorm2d(dim * 2), nn.ReLU(inplace=True)]
            dim *= 2
        layers += [ResidualBlock(dim) for _ in range(repeat_num)]  # bottleneck
        for _ in range(2):  # up-sampling
            layers += [nn.ConvTranspose2d(dim, dim // 2, kernel_size=4, stride=2, padding=1,
                                          bias=False),
                       InstanceNorm2d(dim // 2), nn.ReLU(inplace=True)]
            dim //= 2
        layers += [nn.Conv2d(dim, 3, kernel_size=7, stride=1, padding=3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # The label vector is tiled over the image and stacked as extra input channels.
        c = c.view(c.size(0), c.size(1), 1, 1).expand(-1, -1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c], dim=1))


class Discriminator(nn.Module):
    """StarGAN's discriminator: a PatchGAN real/fake map and attribute logits.

    Parameters
    ----------
    image_size : int
        Side of the square images; must be a multiple of ``2 ** repeat_num``.
    conv_dim : int
        Channels of the first convolution (doubled by each further one).
    c_dim : int
        Number of attributes classified.
    repeat_num : int
        Stride-2 convolutions.

    Examples
    --------
    >>> d = Discriminator(image_size=32, conv_dim=4, c_dim=5, repeat_num=3)
    >>> src, cls = d(torch.zeros(2, 3, 32, 32))
    >>> tuple(src.shape), tuple(cls.shape)
    ((2, 1, 4, 4), (2, 5))
    """

    def __init__(self, image_size: int = 128, conv_dim: int = 64, c_dim: int = 5,
                 repeat_num: int = 6) -> None:
        super().__init__()
        if repeat_num < 1 or image_size % 2 ** repeat_num:
            raise ValueError(f"image_size {image_size} must be a multiple of 2 ** repeat_num "
                             f"= {2 ** repeat_num} (the attribute head's kernel is "
                             "image_size / 2 ** repeat_num)")
        layers: list[nn.Module] = [nn.Conv2d(3, conv_dim, kernel_size=4, stride=2, padding=1),
                                   nn.LeakyReLU(0.01)]
        dim = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(dim, dim * 2, kernel_size=4, stride=2, padding=1),
                       nn.LeakyReLU(0.01)]
            dim *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(dim, 1, kernel_size=3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(dim, c_dim, kernel_size=image_size // 2 ** repeat_num,
                               bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        out_cls = self.conv2(h)
        return self.conv1(h), out_cls.view(out_cls.size(0), out_cls.size(1))
