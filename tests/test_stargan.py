"""StarGAN: the official release's networks and checkpoints, the generator wrapper, training."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from privface.attributes.alignment import square
from privface.cli.main import app
from privface.generators.base import Generator as GeneratorProtocol
from privface.generators.registry import load_generator
from privface.generators.stargan import (RELEASED_ATTRIBUTES, Discriminator, Generator,
                                         StarGANGenerator, celeba_square, gradient_penalty,
                                         load_stargan_discriminator, load_stargan_generator,
                                         read_checkpoint, train_stargan)
from privface.base.errors import InputError

runner = CliRunner()
TINY = dict(conv_dim=8, repeat_num=2, d_conv_dim=8, d_repeat_num=3, image_size=32)


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny networks run fastest on one thread, and the test machine's cores are shared.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _norm(prefix: str, channels: int) -> list[tuple[str, tuple[int, ...]]]:
    """The five entries of an affine InstanceNorm2d that tracks running stats."""
    return [(f"{prefix}.weight", (channels,)), (f"{prefix}.bias", (channels,)),
            (f"{prefix}.running_mean", (channels,)), (f"{prefix}.running_var", (channels,)),
            (f"{prefix}.num_batches_tracked", ())]


# The official Generator(conv_dim=64, c_dim=5, repeat_num=6), key by key, in state-dict order.
OFFICIAL_G = [
    ("main.0.weight", (64, 8, 7, 7)), *_norm("main.1", 64),
    ("main.3.weight", (128, 64, 4, 4)), *_norm("main.4", 128),
    ("main.6.weight", (256, 128, 4, 4)), *_norm("main.7", 256),
    ("main.9.main.0.weight", (256, 256, 3, 3)), *_norm("main.9.main.1", 256),
    ("main.9.main.3.weight", (256, 256, 3, 3)), *_norm("main.9.main.4", 256),
    ("main.10.main.0.weight", (256, 256, 3, 3)), *_norm("main.10.main.1", 256),
    ("main.10.main.3.weight", (256, 256, 3, 3)), *_norm("main.10.main.4", 256),
    ("main.11.main.0.weight", (256, 256, 3, 3)), *_norm("main.11.main.1", 256),
    ("main.11.main.3.weight", (256, 256, 3, 3)), *_norm("main.11.main.4", 256),
    ("main.12.main.0.weight", (256, 256, 3, 3)), *_norm("main.12.main.1", 256),
    ("main.12.main.3.weight", (256, 256, 3, 3)), *_norm("main.12.main.4", 256),
    ("main.13.main.0.weight", (256, 256, 3, 3)), *_norm("main.13.main.1", 256),
    ("main.13.main.3.weight", (256, 256, 3, 3)), *_norm("main.13.main.4", 256),
    ("main.14.main.0.weight", (256, 256, 3, 3)), *_norm("main.14.main.1", 256),
    ("main.14.main.3.weight", (256, 256, 3, 3)), *_norm("main.14.main.4", 256),
    ("main.15.weight", (256, 128, 4, 4)), *_norm("main.16", 128),  # ConvTranspose2d: (in, out)
    ("main.18.weight", (128, 64, 4, 4)), *_norm("main.19", 64),
    ("main.21.weight", (3, 64, 7, 7)),
]

# The official Discriminator(image_size=128, conv_dim=64, c_dim=5, repeat_num=6).
OFFICIAL_D_128 = [
    ("main.0.weight", (64, 3, 4, 4)), ("main.0.bias", (64,)),
    ("main.2.weight", (128, 64, 4, 4)), ("main.2.bias", (128,)),
    ("main.4.weight", (256, 128, 4, 4)), ("main.4.bias", (256,)),
    ("main.6.weight", (512, 256, 4, 4)), ("main.6.bias", (512,)),
    ("main.8.weight", (1024, 512, 4, 4)), ("main.8.bias", (1024,)),
    ("main.10.weight", (2048, 1024, 4, 4)), ("main.10.bias", (2048,)),
    ("conv1.weight", (1, 2048, 3, 3)),
    ("conv2.weight", (5, 2048, 2, 2)),
]


def _shapes(module: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(key, tuple(value.shape)) for key, value in module.state_dict().items()]


def _official_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict as the release's 200000-G.ckpt holds it: official names, random values."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in OFFICIAL_G:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(200000, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.02
    return state


def _tiny_checkpoint(path: Path, c_dim: int = 5, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = Generator(conv_dim=8, c_dim=c_dim, repeat_num=2)
    with torch.no_grad():  # non-trivial norm parameters, so labels visibly matter
        for name, value in model.named_parameters():
            if name.endswith("bias"):
                value.normal_(0, 0.5)
    torch.save(model.state_dict(), path)
    return path


def _faces(n: int = 3, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _targets(rows: list[list[int]], columns=RELEASED_ATTRIBUTES) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns))


# --- networks -----------------------------------------------------------------------------------

def test_generator_has_the_official_keys_and_shapes():
    assert _shapes(Generator()) == OFFICIAL_G
    assert sum(p.numel() for p in Generator().parameters()) == 8_430_528


def test_discriminator_has_the_official_keys_and_shapes():
    assert _shapes(Discriminator()) == OFFICIAL_D_128
    at_256 = dict(_shapes(Discriminator(image_size=256)))
    assert at_256["conv2.weight"] == (5, 2048, 4, 4)  # kernel image_size / 2 ** repeat_num
    with pytest.raises(ValueError, match="multiple of 2 \\*\\* repeat_num = 64"):
        Discriminator(image_size=96)


@pytest.mark.parametrize("size", [128, 256])
def test_networks_keep_the_image_size(size):
    g = Generator(conv_dim=4, c_dim=5, repeat_num=1)
    out = g(torch.zeros(2, 3, size, size), torch.ones(2, 5))
    assert out.shape == (2, 3, size, size) and out.abs().max() <= 1
    src, cls = Discriminator(image_size=size, conv_dim=2, c_dim=5)(torch.zeros(2, 3, size, size))
    assert src.shape == (2, 1, 2 * size // 128, 2 * size // 128) and cls.shape == (2, 5)


def test_eval_mode_uses_instance_statistics_as_the_release_does():
    # The release translates with G in train mode (instance statistics); eval must match it and
    # leave the running statistics alone.
    torch.manual_seed(0)
    g = Generator(conv_dim=4, c_dim=5, repeat_num=1)
    x, c = torch.randn(2, 3, 16, 16), torch.ones(2, 5)
    with torch.no_grad():
        g.main[1].running_mean.fill_(3.0)  # stale running stats would change the output
        before = {k: v.clone() for k, v in g.state_dict().items()}
        reference = g.train()(x, c)
        g.load_state_dict(before)
        evaluated = g.eval()(x, c)
    torch.testing.assert_close(evaluated, reference)
    for key, value in g.state_dict().items():
        torch.testing.assert_close(value, before[key])


# --- checkpoints --------------------------------------------------------------------------------

def test_an_official_checkpoint_loads_strictly(tmp_path):
    path = tmp_path / "200000-G.ckpt"
    state = _official_state()
    torch.save(state, path)
    model = load_stargan_generator(path)
    assert not model.training
    loaded = model.state_dict()
    assert list(loaded) == [key for key, _ in OFFICIAL_G]
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value)


def test_a_checkpoint_from_before_pytorch_0_4_1_loads(tmp_path):
    # Saved by an old PyTorch: no num_batches_tracked, and the legacy (non-zip) file format.
    path = tmp_path / "200000-G.ckpt"
    state = {k: v for k, v in _official_state(1).items() if "num_batches_tracked" not in k}
    torch.save(state, path, _use_new_zipfile_serialization=False)
    model = load_stargan_generator(path)
    torch.testing.assert_close(model.state_dict()["main.21.weight"], state["main.21.weight"])
    assert int(model.state_dict()["main.1.num_batches_tracked"]) == 0


def test_mismatching_checkpoints_are_named_with_their_differences(tmp_path):
    path = tmp_path / "200000-G.ckpt"
    torch.save(_official_state(), path)
    with pytest.raises(ValueError) as error:
        load_stargan_generator(path, c_dim=4)  # e.g. a model trained on 4 attributes
    message = str(error.value)
    assert "200000-G.ckpt" in message
    assert "main.0.weight has shape (64, 8, 7, 7), expected (64, 7, 7, 7)" in message
    assert "the file holds conv_dim=64, c_dim=5, repeat_num=6" in message

    state = _official_state()
    del state["main.21.weight"]
    state["main.22.weight"] = torch.zeros(3)
    torch.save(state, path)
    with pytest.raises(ValueError, match="missing main.21.weight; unexpected main.22.weight"):
        load_stargan_generator(path)
    with pytest.raises(ValueError, match="repeat_num=6"):
        load_stargan_generator(tmp_path / "200000-G.ckpt", repeat_num=5)


class _Payload:
    """Unpickling this would run code: it creates a folder."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def test_checkpoints_are_read_as_weights_only(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil-G.ckpt"
    torch.save({**_official_state(), "extra": _Payload(marker)}, path)
    with pytest.raises(ValueError, match="evil-G.ckpt: refused to load: not a plain state dict"):
        load_stargan_generator(path)
    assert not marker.exists()

    (tmp_path / "text.ckpt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="text.ckpt: not a PyTorch checkpoint"):
        read_checkpoint(tmp_path / "text.ckpt")
    torch.save(torch.zeros(2), tmp_path / "tensor.ckpt")
    with pytest.raises(ValueError, match="expected a state dict, found a Tensor"):
        read_checkpoint(tmp_path / "tensor.ckpt")
    with pytest.raises(ValueError, match="nowhere.ckpt: checkpoint not found"):
        read_checkpoint(tmp_path / "nowhere.ckpt")


# --- the generator wrapper ----------------------------------------------------------------------

def test_wrapper_follows_the_protocol_and_translates(tmp_path):
    path = _tiny_checkpoint(tmp_path / "G.ckpt")
    gan = load_generator("stargan", checkpoint=path, image_size=32, conv_dim=8, repeat_num=2)
    assert isinstance(gan, GeneratorProtocol) and isinstance(gan, StarGANGenerator)
    assert gan.name == "stargan" and gan.geometry == square(32)
    assert gan.editable == RELEASED_ATTRIBUTES
    faces = _faces(3)
    target = _targets([[1, -1, -1, 1, 1], [-1, 1, -1, -1, 1], [-1, -1, 1, 1, -1]])
    out = gan.generate(faces, None, target).faces
    assert out.shape == faces.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(faces, _faces(3))  # the input is not modified
    assert not np.array_equal(out, faces)
    # Other targets, other faces; the same targets, the same faces, whatever the batch size.
    flipped = gan.generate(faces, None, -target).faces
    assert np.abs(flipped.astype(int) - out.astype(int)).mean() > 1
    one_by_one = StarGANGenerator(path, 32, conv_dim=8, repeat_num=2, batch_size=1)
    np.testing.assert_array_equal(one_by_one.generate(faces, None, target).faces, out)


def test_wrapper_matches_the_release_preprocessing(tmp_path):
    path = _tiny_checkpoint(tmp_path / "G.ckpt")
    gan = StarGANGenerator(path, 32, conv_dim=8, repeat_num=2)
    faces = _faces(2)
    target = _targets([[1, 0, -1, 1, -1], [-1, -1, 1, -1, 1]])
    model = load_stargan_generator(path, conv_dim=8, repeat_num=2).train()
    x = (torch.tensor(faces).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
    c = torch.tensor([[1, 0, 0, 1, 0], [0, 0, 1, 0, 1]], dtype=torch.float32)
    with torch.no_grad():
        expected = ((model(x, c) + 1) / 2).clamp(0, 1).mul(255).add(0.5).clamp(0, 255)
    expected = expected.to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(gan.generate(faces, None, target).faces, expected)


def test_wrapper_refuses_bad_input(tmp_path, monkeypatch):
    from privface.generators.stargan import checkpoints

    monkeypatch.setattr(checkpoints, "MODELS_DIR", tmp_path / "none")  # a build without weights
    with pytest.raises(ValueError, match="StarGAN needs a checkpoint.*200000-G.ckpt"):
        StarGANGenerator(None)
    with pytest.raises(ValueError, match="StarGAN needs a checkpoint: no trained StarGAN weights "
                       "ship .* --checkpoint PATH"):
        load_generator("stargan")
    path = _tiny_checkpoint(tmp_path / "G.ckpt")
    gan = StarGANGenerator(path, 32, conv_dim=8, repeat_num=2)
    target = _targets([[1, -1, -1, 1, 1]] * 2)
    with pytest.raises(ValueError, match="needs 32 x 32 faces.*got 30 x 32"):
        gan.generate(_faces(2)[:, :, :30], None, target)
    with pytest.raises(ValueError, match=r"\(n, height, width, 3\) uint8"):
        gan.generate(_faces(2).astype(np.float32), None, target)
    with pytest.raises(ValueError, match="no column 'Young'"):
        gan.generate(_faces(2), None, target.drop(columns="Young"))
    with pytest.raises(ValueError, match="2 row\\(s\\) for 3 face"):
        gan.generate(_faces(3), None, target)
    with pytest.raises(ValueError, match="must be a DataFrame"):
        gan.generate(_faces(2), None, np.ones((2, 5)))
    with pytest.raises(ValueError, match="expected 1 or -1, found 7"):
        gan.generate(_faces(2), None, target.replace({1: 7}))
    with pytest.raises(ValueError, match="c_dim=5"):  # four attributes against a 5-label model
        StarGANGenerator(path, 32, attributes=RELEASED_ATTRIBUTES[:4], conv_dim=8, repeat_num=2)


def test_celeba_square_is_the_release_center_crop():
    image = np.random.default_rng(0).integers(0, 256, (218, 178, 3), dtype=np.uint8)
    np.testing.assert_array_equal(celeba_square(image, 178), image[20:198])
    half = np.random.default_rng(1).integers(0, 256, (109, 89, 3), dtype=np.uint8)
    np.testing.assert_array_equal(celeba_square(half, 89), half[10:99])
    resized = celeba_square(image, 128)
    expected = np.asarray(Image.fromarray(image[20:198]).resize((128, 128), Image.BILINEAR))
    np.testing.assert_array_equal(resized, expected)


# --- training -----------------------------------------------------------------------------------

def test_gradient_penalty_vanishes_for_a_unit_gradient_critic():
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    w = torch.randn(48)
    unit = w / w.norm()
    assert float(gradient_penalty(x.flatten(1) @ unit, x)) == pytest.approx(0, abs=1e-10)
    # Gradient norm 3 everywhere: (3 - 1) ** 2 = 4; a patch output sums its gradients.
    assert float(gradient_penalty(x.flatten(1) @ (3 * unit), x)) == pytest.approx(4)
    patch = torch.stack([x.flatten(1) @ unit, x.flatten(1) @ unit], dim=1)  # gradient 2 * unit
    assert float(gradient_penalty(patch, x)) == pytest.approx(1)
    # It is differentiable, so D can be trained on it.
    scale = torch.tensor(2.0, requires_grad=True)
    gradient_penalty(x.flatten(1) @ (scale * unit), x).backward()
    assert float(scale.grad) == pytest.approx(2.0)  # d/ds (s - 1) ** 2 at s = 2


def _dataset(tmp_path: Path, n: int = 8, extra: int = 2) -> tuple[Path, Path]:
    """n synthetic 89 x 109 crops (and `extra` unlabelled ones) with a CelebA-layout file."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = [f"{i:06d}.jpg" for i in range(1, n + extra + 1)]
    for i, name in enumerate(names):
        image = np.full((109, 89, 3), (20 * i, 255 - 20 * i, 128), np.uint8)
        image = np.clip(image + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / name)
    columns = ["5_o_Clock_Shadow", *RELEASED_ATTRIBUTES, "Smiling"]
    lines = ["202599", " ".join(columns)]
    for i, name in enumerate(names[:n] + ["999999.jpg"]):  # one label row without an image
        values = [1 if (i + j) % 3 == 0 else -1 for j in range(len(columns))]
        lines.append(name + " " + " ".join(f"{v:2d}" for v in values))
    labels = tmp_path / "list_attr_celeba.txt"
    labels.write_text("\n".join(lines) + "\n")
    return folder, labels


def test_training_writes_official_checkpoints_the_wrapper_loads(tmp_path):
    folder, labels = _dataset(tmp_path)
    messages: list[str] = []
    seen: list[int] = []
    losses = train_stargan(folder, labels, batch_size=4, iterations=5, save_every=2,
                           checkpoint_dir=tmp_path / "ckpt", seed=0, log=messages.append,
                           log_every=1, on_iteration=lambda i, _: seen.append(i), **TINY)
    assert seen == [1, 2, 3, 4, 5]
    assert set(losses) == {"D/loss_real", "D/loss_fake", "D/loss_cls", "D/loss_gp",
                           "G/loss_fake", "G/loss_rec", "G/loss_cls"}  # G stepped at 5
    assert all(np.isfinite(v) for v in losses.values())
    assert "8 image(s) in both" in messages[0] and "2 unlabelled" in messages[0]
    assert "1 label row(s) without an image" in messages[0]
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == ["2-D.ckpt", "2-G.ckpt", "2-opt.ckpt", "4-D.ckpt", "4-G.ckpt", "4-opt.ckpt",
                     "5-D.ckpt", "5-G.ckpt", "5-opt.ckpt", "stargan.json"]  # no temp files
    gan = StarGANGenerator(tmp_path / "ckpt" / "5-G.ckpt", 32, conv_dim=8, repeat_num=2)
    out = gan.generate(_faces(2), None, _targets([[1, -1, -1, 1, 1]] * 2)).faces
    assert out.shape == (2, 32, 32, 3)
    d = load_stargan_discriminator(tmp_path / "ckpt" / "5-D.ckpt", 32, conv_dim=8, repeat_num=3)
    assert d.conv2.kernel_size == (4, 4)


def test_resume_repeats_an_uninterrupted_run(tmp_path):
    folder, labels = _dataset(tmp_path)
    common = dict(batch_size=3, iterations=5, n_critic=2, seed=3, log=None, **TINY)
    whole = train_stargan(folder, labels, checkpoint_dir=tmp_path / "a", save_every=5, **common)
    first = train_stargan(folder, labels, checkpoint_dir=tmp_path / "b",
                          **{**common, "iterations": 3})
    assert "G/loss_rec" in first
    seen: list[int] = []
    resumed = train_stargan(folder, labels, checkpoint_dir=tmp_path / "b", resume=3,
                            on_iteration=lambda i, _: seen.append(i),
                            **{**common, "seed": None})  # the run's seed comes from 3-opt.ckpt
    assert seen == [4, 5]
    assert resumed == whole
    for kind in "GD":
        a = read_checkpoint(tmp_path / "a" / f"5-{kind}.ckpt")
        b = read_checkpoint(tmp_path / "b" / f"5-{kind}.ckpt")
        assert list(a) == list(b)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_training_refuses_bad_input(tmp_path):
    folder, labels = _dataset(tmp_path)
    quick = dict(batch_size=2, iterations=2, log=None, checkpoint_dir=tmp_path / "c", **TINY)
    with pytest.raises(InputError, match="no column 'Bald'"):
        train_stargan(folder, labels, attributes=["Male", "Bald"], **quick)
    other = tmp_path / "other"
    other.mkdir()
    Image.new("RGB", (89, 109)).save(other / "x.jpg")
    with pytest.raises(InputError, match="no image of .* is in the labels"):
        train_stargan(other, labels, **quick)
    with pytest.raises(InputError, match="multiple of 2 \\*\\* d_repeat_num = 64"):
        train_stargan(folder, labels, **{**quick, "d_repeat_num": 6})
    with pytest.raises(InputError, match="nothing left to train"):
        train_stargan(folder, labels, resume=2, **quick)
    with pytest.raises(InputError, match="cannot resume from iteration 1: .*1-G.ckpt"):
        train_stargan(folder, labels, resume=1, **quick)
    train_stargan(folder, labels, **{**quick, "iterations": 1})
    with pytest.raises(InputError, match="attributes was"):
        train_stargan(folder, labels, attributes=["Male", "Young", "Smiling", "Black_Hair",
                                                  "Blond_Hair"], resume=1, **quick)


def test_cli_trains_and_exits_2_on_bad_input(tmp_path):
    folder, labels = _dataset(tmp_path)
    out = tmp_path / "ckpt"
    args = ["train", "stargan", "--images", str(folder), "--labels", str(labels),
            "--iterations", "2", "--batch-size", "2", "--image-size", "32", "--conv-dim", "4",
            "--repeat-num", "1", "--d-repeat-num", "3", "--checkpoint-dir", str(out),
            "--seed", "0", "--log-every", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert {"2-G.ckpt", "2-D.ckpt", "2-opt.ckpt"} <= {p.name for p in out.iterdir()}
    assert "iteration 2/2" in result.stderr and "D/loss_gp" in result.stderr
    gan = StarGANGenerator(out / "2-G.ckpt", 32, conv_dim=4, repeat_num=1)
    made = gan.generate(_faces(1), None, _targets([[1, -1, -1, 1, 1]]))
    assert made.faces.shape == (1, 32, 32, 3)

    result = runner.invoke(app, [*args[:5], str(tmp_path / "nowhere.txt"), *args[6:]])
    assert result.exit_code == 2 and "nowhere.txt" in result.stderr
    result = runner.invoke(app, [*args, "--attributes", "Male,Bald"])
    assert result.exit_code == 2 and "no column 'Bald'" in result.stderr


@pytest.mark.realdata
def test_training_on_real_celeba_crops(celeba_dir, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in [f"{i:06d}.jpg" for i in range(1, 9)]:
        (folder / name).symlink_to(celeba_dir / "img_align_celeba_89x109" / name)
    losses = train_stargan(folder, celeba_dir / "list_attr_celeba_first20k.txt", batch_size=4,
                           iterations=2, checkpoint_dir=tmp_path / "ckpt", seed=0, log=None,
                           n_critic=2, **TINY)
    assert all(np.isfinite(v) for v in losses.values()) and "G/loss_rec" in losses
    gan = StarGANGenerator(tmp_path / "ckpt" / "2-G.ckpt", 32, conv_dim=8, repeat_num=2)
    from privface.attributes.images import load_image

    faces = np.stack([celeba_square(load_image(p), 32) for p in sorted(folder.iterdir())[:2]])
    assert gan.generate(faces, None, _targets([[-1, 1, -1, 1, 1]] * 2)).faces.shape == faces.shape


# --- training on the accelerator machine (issue 19) and the shipped weights --------------------

def _gpu_command(folder: Path, labels: Path, out: Path, *extra: str) -> list[str]:
    """The GPU job's `privface train stargan` command (benchmarks/stargan_gpu_job.sh), tiny."""
    return ["train", "stargan", "--images", str(folder), "--labels", str(labels),
            "--batch-size", "2", "--image-size", "32", "--conv-dim", "4", "--repeat-num", "1",
            "--d-repeat-num", "3", "--checkpoint-dir", str(out / "ckpt"), "--seed", "0",
            "--log-every", "1", "--max-minutes", "9", "--save-every-minutes", "3",
            "--preload", "--export-dir", str(out / "export"),
            "--export-name", "stargan_celeba128_v1", *extra]


def test_smoke_run_of_the_gpu_command_exports_half_precision_shards(tmp_path):
    from privface.generators.stargan.checkpoints import read_generator_shards

    folder, labels = _dataset(tmp_path)
    result = runner.invoke(app, _gpu_command(folder, labels, tmp_path, "--iterations", "2",
                                             "--device", "cpu"))
    assert result.exit_code == 0, result.output
    assert "iteration 2/2" in result.stderr and "time budget" not in result.stderr
    assert {"2-G.ckpt", "2-D.ckpt", "2-opt.ckpt"} <= {p.name for p in (tmp_path / "ckpt").iterdir()}
    shards = sorted((tmp_path / "export").iterdir())
    assert [p.name for p in shards] == ["stargan_celeba128_v1-00001-of-00001.safetensors"]
    state, meta = read_generator_shards(shards[0])
    assert meta["iteration"] == 2 and meta["attributes"] == list(RELEASED_ATTRIBUTES)
    assert meta["precision"] == "fp32" and meta["conv_dim"] == 4 and meta["image_size"] == 32
    full = load_stargan_generator(tmp_path / "ckpt" / "2-G.ckpt", conv_dim=4, repeat_num=1)
    half = load_stargan_generator(shards[0], conv_dim=4, repeat_num=1)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    c = torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1]])
    with torch.no_grad():
        torch.testing.assert_close(half(x, c), full(x, c), rtol=0, atol=1e-2)


def test_the_full_generator_splits_into_shards_that_travel_and_join_back(tmp_path):
    from privface.generators.stargan.checkpoints import (MAX_SHARD_BYTES, read_generator_shards,
                                                         save_generator_shards)

    torch.manual_seed(0)
    model = Generator().eval()  # the release's sizes: 8.43M parameters, 16.9 MB in fp16
    assert sum(p.numel() for p in model.parameters()) == 8_430_528
    shards = save_generator_shards(model.state_dict(), tmp_path, "stargan_celeba128_v1",
                                   {"iteration": 7})
    assert [p.name for p in shards] == ["stargan_celeba128_v1-00001-of-00002.safetensors",
                                        "stargan_celeba128_v1-00002-of-00002.safetensors"]
    assert all(p.stat().st_size < MAX_SHARD_BYTES < 16 * 2 ** 20 for p in shards)
    joined = load_stargan_generator(shards[1])  # any shard names the set
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    c = torch.tensor([[0.0, 1, 0, 1, 1]])
    with torch.no_grad():
        torch.testing.assert_close(joined(x, c), model(x, c), rtol=0, atol=1e-2)
    state, meta = read_generator_shards(shards[0])
    assert meta["iteration"] == 7 and meta["shards"] == 2
    for key, value in model.state_dict().items():
        expected = value.half().float() if value.is_floating_point() else value
        torch.testing.assert_close(state[key], expected, rtol=0, atol=0)  # lossless from fp16

    # Shards of two exports never mix, and a missing shard is named.
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    first = save_generator_shards(model.state_dict(), mixed, "g", {"iteration": 1})
    kept = first[0].read_bytes()
    save_generator_shards(model.state_dict(), mixed, "g", {"iteration": 2})
    first[0].write_bytes(kept)
    with pytest.raises(ValueError, match="does not belong with"):
        load_stargan_generator(first[0])
    first[1].unlink()
    with pytest.raises(ValueError, match="shard\\(s\\) not found: g-00002-of-00002"):
        load_stargan_generator(first[0])


def test_stargan_uses_the_shipped_weights_when_no_checkpoint_is_given(tmp_path, monkeypatch):
    from privface.generators.stargan import checkpoints
    from privface.generators.stargan.checkpoints import save_generator_shards

    monkeypatch.setattr(checkpoints, "MODELS_DIR", tmp_path)
    with pytest.raises(ValueError, match="no trained StarGAN weights ship"):
        load_generator("stargan")
    torch.manual_seed(1)
    model = Generator().eval()
    save_generator_shards(model.state_dict(), tmp_path, "stargan_celeba128_v1")
    gan = load_generator("stargan")
    assert gan.checkpoint.name == "stargan_celeba128_v1-00001-of-00002.safetensors"
    faces = _faces(2, 128)
    target = _targets([[1, -1, -1, 1, 1], [-1, 1, -1, -1, -1]])
    x = (torch.tensor(faces).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        expected = model(x, torch.tensor([[1.0, 0, 0, 1, 1], [0, 1, 0, 0, 0]]))
    expected = ((expected + 1) * 127.5).permute(0, 2, 3, 1).numpy()
    assert np.abs(gan.generate(faces, None, target).faces - expected).max() < 3  # fp16 weights
    # An explicit checkpoint still wins over the shipped weights.
    path = _tiny_checkpoint(tmp_path / "G.ckpt")
    assert StarGANGenerator(path, 32, conv_dim=8, repeat_num=2).checkpoint == path


def test_bf16_autocast_trains_with_the_gradient_penalty_in_fp32(tmp_path, monkeypatch):
    from privface.generators.stargan import training

    seen: list[tuple[torch.dtype, torch.dtype]] = []
    real_penalty = training.gradient_penalty

    def spy(out, x):
        seen.append((out.dtype, x.dtype))
        return real_penalty(out, x)

    monkeypatch.setattr(training, "gradient_penalty", spy)
    dtypes: set[torch.dtype] = set()
    folder, labels = _dataset(tmp_path)
    common = dict(batch_size=2, iterations=2, n_critic=2, seed=0, log=None, **TINY)
    original = torch.nn.Conv2d.forward

    def record(self, x):
        y = original(self, x)
        dtypes.add(y.dtype)
        return y

    monkeypatch.setattr(torch.nn.Conv2d, "forward", record)
    bf16 = train_stargan(folder, labels, checkpoint_dir=tmp_path / "bf16", precision="bf16",
                         **common)
    assert torch.bfloat16 in dtypes  # the networks ran under autocast ...
    assert seen == [(torch.float32, torch.float32)] * 2  # ... the penalty did not
    assert all(np.isfinite(v) for v in bf16.values()) and "G/loss_rec" in bf16
    dtypes.clear()
    fp32 = train_stargan(folder, labels, checkpoint_dir=tmp_path / "fp32", **common)
    assert dtypes == {torch.float32}  # auto on the CPU: fp32
    assert bf16 != fp32
    with pytest.raises(InputError, match="precision must be auto, bf16 or fp32"):
        train_stargan(folder, labels, checkpoint_dir=tmp_path / "x", precision="fp8", **common)


def test_preloaded_images_repeat_a_streamed_run(tmp_path):
    folder, labels = _dataset(tmp_path, n=5)
    common = dict(batch_size=2, iterations=4, n_critic=2, seed=5, log=None, **TINY)
    streamed = train_stargan(folder, labels, checkpoint_dir=tmp_path / "a", **common)
    preloaded = train_stargan(folder, labels, checkpoint_dir=tmp_path / "b", preload=True,
                              **common)
    assert preloaded == streamed
    a, b = (read_checkpoint(tmp_path / d / "4-G.ckpt") for d in "ab")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_time_budget_stops_with_checkpoints_and_the_run_resumes(tmp_path):
    folder, labels = _dataset(tmp_path)
    args = [*_gpu_command(folder, labels, tmp_path, "--iterations", "50")]
    budget = args.index("--max-minutes") + 1
    args[budget] = "0.000001"  # over after the first iteration
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "time budget of 1e-06 min reached; stopped after iteration 1/50" in result.stderr
    assert {"1-G.ckpt", "1-D.ckpt", "1-opt.ckpt"} <= {p.name for p in (tmp_path / "ckpt").iterdir()}
    assert (tmp_path / "export" / "stargan_celeba128_v1-00001-of-00001.safetensors").is_file()
    args[budget] = "9"
    result = runner.invoke(app, [*args[:-2], "--iterations", "3", "--resume", "1"])
    assert result.exit_code == 0, result.output
    assert "resumed from iteration 1" in result.stderr and "iteration 3/3" in result.stderr
    result = runner.invoke(app, [*args, "--max-minutes", "0"])
    assert result.exit_code == 2 and "max_minutes must be positive" in result.stderr


def test_checkpoints_every_few_minutes(tmp_path):
    folder, labels = _dataset(tmp_path)
    seen: list[int] = []
    train_stargan(folder, labels, batch_size=2, iterations=3, seed=0, log=None,
                  checkpoint_dir=tmp_path / "ckpt", save_every_minutes=1e-9,
                  on_iteration=lambda i, _: seen.append(i), **TINY)
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == ["1-D.ckpt", "1-G.ckpt", "1-opt.ckpt", "2-D.ckpt", "2-G.ckpt", "2-opt.ckpt",
                     "3-D.ckpt", "3-G.ckpt", "3-opt.ckpt", "stargan.json"]  # nothing half-written


# The weights shipped in the package (issue 19: 16,684 iterations on one H200, 8.3 minutes).

def test_the_shipped_weights_are_the_trained_generator_and_enter_the_run_fingerprint():
    from privface.generators.stargan.checkpoints import (read_generator_shards,
                                                         shipped_generator_path)
    from privface.pipeline.state import model_identity

    path = shipped_generator_path()
    assert path is not None and path.name == "stargan_celeba128_v1-00001-of-00002.safetensors"
    state, meta = read_generator_shards(path)
    assert meta["attributes"] == list(RELEASED_ATTRIBUTES) and meta["image_size"] == 128
    assert meta["iteration"] == 16_684 and meta["precision"] == "bf16"
    reference = Generator().state_dict()  # the release's sizes: 8,430,528 parameters
    assert {k: tuple(v.shape) for k, v in state.items()} == \
        {k: tuple(v.shape) for k, v in reference.items()}
    assert all(torch.isfinite(t).all() for t in state.values())
    # A run's fingerprint covers them, so a resumed run notices new weights.
    models = model_identity({})
    assert {f"privface/{p.name}" for p in path.parent.glob("stargan_celeba128_v1-*")} <= set(models)


def test_the_shipped_weights_set_hair_colour_on_held_out_faces(celeba_dir):
    """On faces of identities never in the training pack, asking for blond hair lightens the
    hair band at the top of the square and asking for black hair darkens it, on every face."""
    listing = Path(__file__).resolve().parents[1] / "benchmarks" / "stargan_heldout.txt"
    rows = [line.split() for line in listing.read_text().splitlines()
            if line and not line.startswith("#")][1:]
    names = [name for name, _, evaluation in rows if evaluation == "1"][::25][:8]
    assert len(names) == 8
    squares = np.stack([celeba_square(np.asarray(Image.open(
        celeba_dir / "img_align_celeba_200ids" / name).convert("RGB")), 128) for name in names])
    gan = load_generator("stargan")  # no checkpoint: the shipped weights

    def hair(colour: str) -> np.ndarray:
        codes = [1 if h == colour else -1 for h in ("Black_Hair", "Blond_Hair", "Brown_Hair")]
        target = pd.DataFrame([codes + [-1, 1]] * len(names), columns=list(RELEASED_ATTRIBUTES))
        return gan.generate(squares, None, target).faces

    def top_band(faces: np.ndarray) -> np.ndarray:  # mean luminance of the 20 top rows
        return (faces[:, :20].astype(float) @ [0.299, 0.587, 0.114]).mean(axis=(1, 2))

    blond, black, original = top_band(hair("Blond_Hair")), top_band(hair("Black_Hair")), \
        top_band(squares)
    assert (blond > original).all() and (black < original).all()
    assert (blond - black).min() > 15 and (blond - black).mean() > 30  # measured: 21 .. 60, 40
