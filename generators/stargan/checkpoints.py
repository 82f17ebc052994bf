"""Reading and writing StarGAN checkpoints: plain state dicts, never arbitrary pickles.

A checkpoint is what the official release writes (``torch.save(G.state_dict(), "200000-G.ckpt")``)
and so is what ``privface train stargan`` writes. Files are read with ``weights_only=True``: a
checkpoint from the web is untrusted, and a full unpickle would run any code it holds. Releases
saved before PyTorch 0.4.1 lack the norms' ``num_batches_tracked`` counters; those are filled in,
everything else must match exactly.

Weights that ship (or come back from the accelerator machine) are G alone in half precision, as
safetensors files split into shards below 15 MiB (``NAME-00001-of-00002.safetensors``, ...): a
file that travels may hold at most 16 MiB. :func:`save_generator_shards` writes them,
:func:`read_generator_shards` joins them, and :func:`load_stargan_generator` takes any shard (or
an unsplit ``.safetensors``) as it takes a ``.ckpt``.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from privface.base.errors import InputError
from privface.base.files import atomic_write

from .networks import Discriminator, Generator

_COUNTER = "num_batches_tracked"
_SHARD = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.safetensors$")
#: Shards stay below this size so that each file can travel (16 MiB per file at most).
MAX_SHARD_BYTES = 15 * 2 ** 20
#: Where the package's own StarGAN weights live, and their name.
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
SHIPPED_NAME = "stargan_celeba128_v1"


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
    privface.base.errors.InputError: ...1-G.ckpt: does not match the network built \
(main.0.weight has shape (4, 8, 7, 7), expected (4, 6, 7, 7)); the file holds conv_dim=4, \
c_dim=5, repeat_num=1
    """
    state = (read_generator_shards(path)[0] if str(path).endswith(".safetensors")
             else read_checkpoint(path))
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


def save_generator_shards(state: Mapping[str, torch.Tensor], folder: str | os.PathLike,
                          name: str, metadata: Mapping[str, object] | None = None,
                          max_shard_bytes: int = MAX_SHARD_BYTES) -> list[Path]:
    """Write a generator state dict in half precision as safetensors shards below a size.

    Floating tensors become float16 (integer counters stay as they are); tensors fill shards in
    state-dict order, each shard staying below ``max_shard_bytes`` on disk. Every shard carries
    ``metadata`` (JSON-encoded values) and the shard count, so :func:`read_generator_shards`
    can check that the shards belong together. Each file is written atomically; shards of an
    earlier export under the same name with another count are removed.

    Parameters
    ----------
    state : mapping of str to Tensor
        E.g. ``G.state_dict()``.
    folder : path-like
        Existing folder to write into.
    name : str
        File stem: ``{name}-00001-of-0000N.safetensors``.
    metadata : mapping, optional
        Settings to record (attributes, image size, iteration, ...).
    max_shard_bytes : int
        Upper bound on each file's size.

    Returns
    -------
    list of Path
        The shards written, in order.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> g = Generator(conv_dim=4, c_dim=2, repeat_num=1)
    >>> [p.name for p in save_generator_shards(g.state_dict(), d, "g", max_shard_bytes=20_000)]
    ['g-00001-of-00002.safetensors', 'g-00002-of-00002.safetensors']
    """
    from safetensors.torch import save as safetensors_bytes

    tensors = {key: (value.detach().to("cpu", torch.float16) if value.is_floating_point()
                     else value.detach().cpu()).contiguous() for key, value in state.items()}
    # Each file carries a JSON header (names, shapes, offsets, metadata): keep room for it.
    header = 512 + len(json.dumps(metadata or {}, default=str))
    groups: list[list[str]] = [[]]
    used = 0
    for key, value in tensors.items():
        size = value.numel() * value.element_size() + 128 + len(key)
        if size + header > max_shard_bytes:
            raise ValueError(f"{key} alone ({size:,} bytes) does not fit a shard of "
                             f"{max_shard_bytes:,} bytes")
        if groups[-1] and used + size + header > max_shard_bytes:
            groups.append([])
            used = 0
        groups[-1].append(key)
        used += size
    target = Path(folder)
    count = len(groups)
    meta = {key: json.dumps(value, default=str) for key, value in (metadata or {}).items()}
    meta.update({"format": "privface-stargan-generator", "shards": str(count)})
    written = []
    for index, keys in enumerate(groups, start=1):
        path = target / f"{name}-{index:05d}-of-{count:05d}.safetensors"
        blob = safetensors_bytes({key: tensors[key] for key in keys}, metadata=meta)
        if len(blob) > max_shard_bytes:  # the estimate above is generous; never ship over it
            raise ValueError(f"{path.name} would be {len(blob):,} bytes, over "
                             f"{max_shard_bytes:,}")
        atomic_write(path, lambda tmp, blob=blob: Path(tmp).write_bytes(blob))
        written.append(path)
    names = {path.name for path in written}
    for stale in target.glob(f"{name}-*-of-*.safetensors"):
        found = _SHARD.match(stale.name)
        if stale.name not in names and found and found["stem"] == name:
            stale.unlink()
    return written


def read_generator_shards(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Join the safetensors shards that ``path`` belongs to; float32 tensors and the metadata.

    ``path`` is any one shard (``NAME-00002-of-00002.safetensors``) or an unsplit
    ``.safetensors`` file. All shards must be present, carry the same metadata, and hold
    distinct tensors; the metadata's values are JSON-decoded.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> g = Generator(conv_dim=4, c_dim=2, repeat_num=1)
    >>> shards = save_generator_shards(g.state_dict(), d, "g", {"iteration": 7}, 20_000)
    >>> state, meta = read_generator_shards(shards[0])
    >>> sorted(state) == sorted(g.state_dict()), state["main.0.weight"].dtype, meta["iteration"]
    (True, torch.float32, 7)
    """
    from safetensors import SafetensorError, safe_open

    file = Path(path)
    found = _SHARD.match(file.name)
    if found:
        count = int(found["count"])
        files = [file.with_name(f"{found['stem']}-{i:05d}-of-{count:05d}.safetensors")
                 for i in range(1, count + 1)]
    else:
        files = [file]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ValueError(f"{file}: checkpoint shard(s) not found: {', '.join(missing)}")
    state: dict[str, torch.Tensor] = {}
    metadata: dict | None = None
    for shard in files:
        try:
            with safe_open(shard, framework="pt", device="cpu") as handle:
                meta = handle.metadata() or {}
                part = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        except (SafetensorError, ValueError, OSError) as error:
            raise ValueError(f"{shard}: not a safetensors file ({error})") from None
        if metadata is None:
            metadata = meta
        elif meta != metadata:
            raise ValueError(f"{shard}: does not belong with {files[0].name} (different "
                             "metadata: shards of two exports mixed?)")
        twice = sorted(set(part) & set(state))
        if twice:
            raise ValueError(f"{shard}: holds {twice[0]} again")
        state.update(part)
    decoded = {}
    for key, value in (metadata or {}).items():
        try:
            decoded[key] = json.loads(value)
        except ValueError:
            decoded[key] = value
    return {key: value.float() if value.is_floating_point() else value
            for key, value in state.items()}, decoded


def shipped_generator_path() -> Path | None:
    """The first shard of the StarGAN weights shipped in ``generators/models``, if any.

    Examples
    --------
    >>> shipped_generator_path() is None or shipped_generator_path().suffix == ".safetensors"
    True
    """
    shards = sorted(MODELS_DIR.glob(f"{SHIPPED_NAME}-00001-of-*.safetensors"))
    return shards[0] if shards else None
