"""Reading and writing StarGAN checkpoints: plain state dicts, never arbitrary pickles.

A checkpoint is what the official release writes (``torch.save(G.state_dict(), "200000-G.ckpt")``)
and so is what ``privface train stargan`` writes. Files are read with ``weights_only=True``: a
checkpoint from the web is untrusted, and a full unpickle would run any code it holds. Releases
saved before PyTorch 0.4.1 lack the norms' ``num_batches_tracked`` counters; those are filled in,
everything else must match exactly.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from privface.privmetrics.errors import InputError
from privface.privmetrics.readers.files import atomic_write

from .networks import Discriminator, Generator

_COUNTER = "num_batches_tracked"


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint file with ``weights_only=True``; a clear ValueError otherwise.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.ckpt"
    >>> torch.save({"w": torch.ones(2)}, p)
    >>> read_checkpoint(p)["w"].tolist()
    [1.0, 1.0]
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{file}: checkpoint not found")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch words this differently across versions; the pickled global's name is the fact.
        found = re.search(r"GLOBAL\s+([\w.]+)", str(error))
        if found:  # a pickled object other than tensors and containers: code could hide there
            raise InputError(f"{file}: refused to load: not a plain state dict of tensors (it "
                             f"holds a {found.group(1)}); privface never unpickles arbitrary "
                             "objects from a checkpoint") from None
        detail = str(error).partition("WeightsUnpickler error:")[2].strip().split("\n")[0]
        raise InputError(f"{file}: not a PyTorch checkpoint, or not one that can be read as "
                         f"weights only ({detail or 'unreadable pickle data'})") from None
    except Exception as error:  # the legacy reader fails with KeyError, EOFError, ...
        raise InputError(f"{file}: not a PyTorch checkpoint ({type(error).__name__}: "
                         f"{error})") from None
    if not isinstance(obj, Mapping):
        raise InputError(f"{file}: expected a state dict, found a {type(obj).__name__}")
    return dict(obj)


def describe_generator(state: Mapping[str, torch.Tensor]) -> str:
    """The generator sizes a state dict holds, for error messages ("conv_dim=64, c_dim=5, ...").

    Examples
    --------
    >>> describe_generator(Generator(conv_dim=4, c_dim=3, repeat_num=2).state_dict())
    'conv_dim=4, c_dim=3, repeat_num=2'
    """
    first = state.get("main.0.weight")
    if not isinstance(first, torch.Tensor) or first.dim() != 4:
        return "not a StarGAN generator (no main.0.weight convolution)"
    blocks = {key.split(".")[1] for key in state if key.startswith("main.") and ".main." in key}
    return f"conv_dim={first.shape[0]}, c_dim={first.shape[1] - 3}, repeat_num={len(blocks)}"


def load_state_strictly(module: nn.Module, state: Mapping[str, object], source: str,
                        hint: str = "") -> nn.Module:
    """Load ``state`` into ``module``: missing norm counters are filled, nothing else may differ.

    Examples
    --------
    >>> g = Generator(conv_dim=4, c_dim=2, repeat_num=1)
    >>> state = {k: v for k, v in g.state_dict().items() if "num_batches" not in k}
    >>> load_state_strictly(Generator(4, 2, 1), state, "old.ckpt").c_dim
    2
    """
    expected = module.state_dict()
    state = dict(state)
    for key in expected:
        if key.endswith(_COUNTER) and key not in state:
            # Saved before PyTorch 0.4.1: the counter did not exist; it is never used here.
            state[key] = torch.tensor(0, dtype=torch.long)
    problems = [f"missing {key}" for key in expected if key not in state]
    problems += [f"unexpected {key}" for key in state if key not in expected]
    for key, value in state.items():
        if key not in expected:
            continue
        if not isinstance(value, torch.Tensor):
            problems.append(f"{key} is a {type(value).__name__}, not a tensor")
        elif value.shape != expected[key].shape:
            problems.append(f"{key} has shape {tuple(value.shape)}, expected "
                            f"{tuple(expected[key].shape)}")
    if problems:
        shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more"
                                           if len(problems) > 6 else "")
        raise InputError(f"{source}: does not match the network built ({shown}){hint}")
    module.load_state_dict(state, strict=True)
    return module


def load_stargan_generator(path: str | os.PathLike, c_dim: int = 5, conv_dim: int = 64,
                           repeat_num: int = 6) -> Generator:
    """Build StarGAN's generator and load a checkpoint into it (official or ours).

    Parameters
    ----------
    path : path-like
        A generator state dict, e.g. the release's ``200000-G.ckpt`` or ``{iter}-G.ckpt`` from
        ``privface train stargan``.
    c_dim, conv_dim, repeat_num : int
        The generator's sizes; the defaults are the release's.

    Returns
    -------
    Generator
        In eval mode, on the CPU.

    Raises
    ------
    ValueError
        The file is missing, not a plain state dict (refused unread), or its keys or shapes
        differ from the network built; the message names the file, the differences and the
        sizes the file holds.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "1-G.ckpt"
    >>> torch.save(Generator(conv_dim=4, c_dim=5, repeat_num=1).state_dict(), p)
    >>> load_stargan_generator(p, conv_dim=4, repeat_num=1).training
    False
    >>> load_stargan_generator(p, c_dim=3, conv_dim=4, repeat_num=1)
    Traceback (most recent call last):
    ...
    privface.privmetrics.errors.InputError: ...1-G.ckpt: does not match the network built \
(main.0.weight has shape (4, 8, 7, 7), expected (4, 6, 7, 7)); the file holds conv_dim=4, \
c_dim=5, repeat_num=1
    """
    state = read_checkpoint(path)
    hint = f"; the file holds {describe_generator(state)}"
    model = Generator(conv_dim=conv_dim, c_dim=c_dim, repeat_num=repeat_num)
    return load_state_strictly(model, state, str(path), hint).eval()


def load_stargan_discriminator(path: str | os.PathLike, image_size: int = 128, c_dim: int = 5,
                               conv_dim: int = 64, repeat_num: int = 6) -> Discriminator:
    """Build StarGAN's discriminator and load a ``{iter}-D.ckpt`` into it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "1-D.ckpt"
    >>> torch.save(Discriminator(32, conv_dim=4, repeat_num=3).state_dict(), p)
    >>> load_stargan_discriminator(p, 32, conv_dim=4, repeat_num=3).conv2.kernel_size
    (4, 4)
    """
    model = Discriminator(image_size=image_size, conv_dim=conv_dim, c_dim=c_dim,
                          repeat_num=repeat_num)
    return load_state_strictly(model, read_checkpoint(path), str(path)).eval()


def save_checkpoint(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file and a rename, so a crash never leaves half a file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.ckpt"
    >>> save_checkpoint({"w": torch.zeros(1)}, p)
    >>> sorted(read_checkpoint(p))
    ['w']
    """
    atomic_write(path, lambda tmp: torch.save(obj, tmp))
