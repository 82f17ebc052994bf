"""Stage III, the diffusers inpainting backend, on a tiny randomly initialised pipeline.

The pipeline is built here and saved to a temporary folder (nothing is downloaded), then loaded
back through the generator as a user's saved model would be. Its faces are noise; what is tested
is the plumbing: masks, compositing, seeds, prompts, errors.
"""

from __future__ import annotations

import json
import os
import string
import sys

# Before anything imports huggingface_hub: these tests must never reach the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from privface.attributes.alignment import square  # noqa: E402
from privface.attributes.model import CELEBA_ATTRIBUTES  # noqa: E402
from privface.generators.base import Generator  # noqa: E402
from privface.generators.diffusion import (  # noqa: E402
    EXPRESSIBLE_ATTRIBUTES, FACE_REGION_ATTRIBUTES, DiffusersInpaintGenerator,
    attributes_to_negative_prompt, attributes_to_prompt, face_masks, face_region)
from privface.generators.registry import load_generator  # noqa: E402

SIZE = 32  # the tiny pipeline's native size: UNet sample_size 16 x VAE scale factor 2


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # Tiny convolutions are dominated by thread synchronisation; on a busy 2-core runner two
    # threads made each pipeline call ~50 times slower than one.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny Stable Diffusion inpainting pipeline saved with save_pretrained."""
    from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("diffusion")
    # A character-level BPE vocabulary: every character alone and at a word's end, no merges,
    # so that any prompt tokenises without an unknown token.
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in string.ascii_lowercase + string.digits + ",.-'!?":
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    (root / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (root / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(vocab=str(root / "vocab.json"), merges=str(root / "merges.txt"),
                              model_max_length=77)

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=SIZE // 2, in_channels=9, out_channels=4,  # 4 latent + 4 masked image + mask
        block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16, attention_head_dim=2)
    vae = AutoencoderKL(
        block_out_channels=(8, 16), latent_channels=4, norm_num_groups=4, sample_size=SIZE,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_attention_heads=2,
        num_hidden_layers=1, max_position_embeddings=77, projection_dim=16,
        bos_token_id=0, eos_token_id=1, pad_token_id=1))
    pipeline = StableDiffusionInpaintPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=DDIMScheduler(steps_offset=1), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    folder = root / "tiny"
    pipeline.save_pretrained(folder)
    return folder


def _faces(n=3, size=SIZE, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _targets(n=3):
    rows = [{"Male": -1, "Young": 1, "Smiling": 1, "Blond_Hair": 1, "Eyeglasses": -1},
            {"Male": 1, "Young": -1, "Smiling": -1, "No_Beard": -1, "Eyeglasses": 1},
            {"Male": 1, "Young": 1, "Mustache": 1, "Wearing_Hat": 1}]
    return pd.DataFrame(rows[:n])


class _Spy:
    """Stands in for the loaded pipeline, records each call and passes it on."""

    def __init__(self, pipeline):
        self.pipeline, self.calls = pipeline, []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return self.pipeline(**kwargs)


# --- prompts -------------------------------------------------------------------------------------

def test_prompt_reflects_the_target_attributes():
    woman = attributes_to_prompt(pd.Series({"Male": -1, "Blond_Hair": 1, "Smiling": 1}))
    assert "woman" in woman and "blond" in woman and "smiling" in woman
    man = attributes_to_prompt({"Male": 1, "Young": -1, "Eyeglasses": 1, "No_Beard": -1})
    assert " man" in man and "woman" not in man and "older" in man
    assert "eyeglasses" in man and "beard" in man
    # Absent features are not written; missing columns, 0 and NaN say nothing.
    plain = attributes_to_prompt({"Male": float("nan"), "Eyeglasses": -1, "Smiling": 0})
    assert plain == "a photo of a person, natural face, high quality"
    assert attributes_to_prompt(None, template="{subject}") == "a person"
    assert attributes_to_prompt({"Bald": 1, "Blond_Hair": 1}, "{subject}") == "a bald person"
    with pytest.raises(ValueError, match="subject"):
        attributes_to_prompt({}, template="a face")


def test_every_celeba_attribute_but_blurry_has_a_phrase():
    assert set(CELEBA_ATTRIBUTES) - set(EXPRESSIBLE_ATTRIBUTES) == {"Blurry"}
    assert set(FACE_REGION_ATTRIBUTES) <= set(EXPRESSIBLE_ATTRIBUTES)
    base = attributes_to_prompt({}, "{subject}")
    for name in EXPRESSIBLE_ATTRIBUTES:
        for value in (1, -1):
            if attributes_to_prompt({name: value}, "{subject}") != base:
                break
        else:
            pytest.fail(f"{name} changes no prompt")


def test_negative_prompt_lists_what_must_be_absent():
    negative = attributes_to_negative_prompt({"Eyeglasses": -1, "Mustache": -1, "Smiling": 1},
                                             base="blurry")
    assert negative == "eyeglasses, mustache, blurry"
    assert attributes_to_negative_prompt({"Eyeglasses": 1}, base="") == ""


def test_face_masks_cover_the_face_region_and_feather_outwards():
    from privface.attributes.face_region import face_mask, template_landmarks

    region = face_region(64)
    # The region every generator replaces, on the mean landmarks, is inside it.
    assert (region >= (face_mask(template_landmarks(64, 64), (64, 64)) > 0)).all()
    mask, alpha = face_masks(64, 4)
    assert (alpha[region] == 1).all() and (alpha[~mask] == 0).all()
    assert mask.sum() > region.sum() and ((alpha > 0) & (alpha < 1)).any()
    hard_mask, hard_alpha = face_masks(64, 0)
    np.testing.assert_array_equal(hard_mask, region)
    np.testing.assert_array_equal(hard_alpha, region.astype(np.float32))


# --- the generator -------------------------------------------------------------------------------

def test_generate_repaints_the_face_and_keeps_everything_else(model_dir):
    gen = DiffusersInpaintGenerator(model_dir, steps=2, seed=0, feather=3)
    assert gen.name == "diffusers" and gen.size == SIZE
    assert gen.geometry == square(SIZE) and gen.editable == FACE_REGION_ATTRIBUTES
    assert gen.pipeline.safety_checker is None and gen.seed == 0
    faces = _faces()
    before = faces.copy()
    out = gen.generate(faces, None, _targets()).faces
    assert out.shape == faces.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(faces, before)  # the input is not modified
    # Outside the dilated + feathered mask: the input's pixels, bit for bit.
    np.testing.assert_array_equal(out[:, ~gen.mask], faces[:, ~gen.mask])
    assert gen.mask.sum() > face_region(SIZE).sum()
    # Inside the face region: generated pixels.
    inside = face_region(SIZE)
    assert (out[:, inside] != faces[:, inside]).any(axis=-1).mean() > 0.9


def test_same_seed_same_faces_different_seed_or_no_seed_different(model_dir):
    faces, targets = _faces(2), _targets(2)
    first, again, other = (DiffusersInpaintGenerator(model_dir, steps=2, seed=seed)
                           .generate(faces, None, targets).faces for seed in (7, 7, 8))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # By default the noise comes from the OS: two calls never repeat.
    entropic = DiffusersInpaintGenerator(model_dir, steps=2)
    assert entropic.seed is None
    assert not np.array_equal(entropic.generate(faces, None, targets).faces,
                              entropic.generate(faces, None, targets).faces)


def test_each_face_gets_its_own_prompt_and_batching_does_not_change_the_noise(model_dir):
    faces, targets = _faces(3), _targets(3)
    whole = DiffusersInpaintGenerator(model_dir, steps=2, seed=5)
    spy = whole.pipeline = _Spy(whole.pipeline)
    out_whole = whole.generate(faces, None, targets).faces
    assert len(spy.calls) == 1  # one batched call
    call = spy.calls[0]
    expected = [attributes_to_prompt(row) for _, row in targets.iterrows()]
    assert call["prompt"] == expected == whole.last_prompts
    assert "woman" in expected[0] and "blond" in expected[0] and "smiling" in expected[0]
    assert " man" in expected[1] and "eyeglasses" in expected[1]
    assert call["negative_prompt"][0].startswith("eyeglasses")  # Eyeglasses = -1
    assert call["num_inference_steps"] == 2 and len(call["generator"]) == 3

    chunked = DiffusersInpaintGenerator(model_dir, steps=2, seed=5, batch_size=2)
    spy = chunked.pipeline = _Spy(chunked.pipeline)
    out_chunked = chunked.generate(faces, None, targets).faces
    assert [len(c["prompt"]) for c in spy.calls] == [2, 1]
    # Same seeds per face; batched arithmetic may round differently by a level at most.
    assert np.abs(out_whole.astype(int) - out_chunked.astype(int)).max() <= 1


def test_size_can_be_overridden_and_no_targets_means_a_person(model_dir):
    gen = DiffusersInpaintGenerator(model_dir, size=48, steps=1, seed=1)
    assert gen.geometry == square(48) and gen.feather == 48 / 32
    out = gen.generate(_faces(1, 48), None, None).faces
    assert out.shape == (1, 48, 48, 3) and gen.last_prompts == [attributes_to_prompt(None)]
    assert gen.generate(_faces(0, 48), None, pd.DataFrame()).faces.shape == (0, 48, 48, 3)


def test_bad_folders_are_refused_with_their_name(tmp_path, model_dir):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ValueError, match="no-such-model"):
        DiffusersInpaintGenerator(missing)
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty-model.*model_index.json"):
        DiffusersInpaintGenerator(empty)
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "model_index.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="broken-model"):
        DiffusersInpaintGenerator(broken)


@pytest.mark.parametrize("bad, match", [
    (dict(size=30), "size"), (dict(size=8), "size"), (dict(steps=0), "steps"),
    (dict(strength=0), "strength"), (dict(strength=1.5), "strength"),
    (dict(steps=3, strength=0.2), "steps \\* strength"),
    (dict(guidance_scale=-1), "guidance_scale"), (dict(seed=-1), "seed"),
    (dict(seed=1.5), "seed"), (dict(feather=-1), "feather"), (dict(batch_size=0), "batch_size"),
    (dict(prompt_template="a face"), "subject"),
])
def test_bad_parameters_are_refused_before_loading(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        DiffusersInpaintGenerator(tmp_path / "not-even-there", **bad)


def test_bad_faces_and_targets_are_refused(model_dir):
    gen = DiffusersInpaintGenerator(model_dir, steps=1)
    with pytest.raises(ValueError, match=f"{SIZE} x {SIZE}"):
        gen.generate(_faces(1, 48), None, None)
    with pytest.raises(ValueError, match="uint8"):
        gen.generate(_faces(1).astype(np.float32), None, None)
    with pytest.raises(ValueError, match="2 row"):
        gen.generate(_faces(1), None, _targets(2))
    with pytest.raises(ValueError, match="DataFrame"):
        gen.generate(_faces(1), None, np.ones((1, 40)))


def test_the_registry_builds_it(model_dir):
    gen = load_generator("diffusers", model_dir=model_dir, steps=1)
    assert isinstance(gen, Generator) and isinstance(gen, DiffusersInpaintGenerator)
    assert gen.name == "diffusers" and set(gen.editable) <= set(CELEBA_ATTRIBUTES)


def test_a_missing_extra_says_how_to_install_it(model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers now fails
    with pytest.raises(ImportError, match=r"privface\[generators\]"):
        DiffusersInpaintGenerator(model_dir)
