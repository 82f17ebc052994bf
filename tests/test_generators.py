"""Stage III: the generator protocol, the registry with plug-ins, and the paper's baselines."""

from __future__ import annotations

import importlib
import sys
import textwrap

import numpy as np
import pytest

from privface.attributes.alignment import square
from privface.generators.base import Capabilities, GenerationResult, Generator, as_generator
from privface.generators.baselines import BlurGenerator, MaskGenerator, PixelateGenerator
from privface.generators.ksame import KSameSelectGenerator
from privface.generators.registry import ENTRY_POINT_GROUP, available, load_generator


def _faces(n=3, height=218, width=178, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, height, width, 3), dtype=np.uint8)


def _high_frequency_energy(faces):
    image = faces.astype(np.float64)
    return float(np.abs(np.diff(image, axis=1)).mean() + np.abs(np.diff(image, axis=2)).mean())


@pytest.mark.parametrize("name", ["blur", "pixelate", "mask"])
def test_built_in_generators_follow_the_protocol_and_keep_shape(name):
    generator = load_generator(name)
    assert isinstance(generator, Generator) and generator.name == name
    faces = _faces()
    out = generator.generate(faces, np.ones((3, 40)), -np.ones((3, 40))).faces
    assert out.shape == faces.shape and out.dtype == np.uint8
    assert not np.array_equal(out, faces)
    np.testing.assert_array_equal(faces, _faces())  # the input is not modified


def test_blur_strength_is_monotonic():
    faces = _faces(1)
    energies = [_high_frequency_energy(BlurGenerator(sigma=s).generate(faces).faces)
                for s in (1, 2, 4, 8)]
    assert energies == sorted(energies, reverse=True)
    assert energies[-1] < 0.05 * _high_frequency_energy(faces)


def test_pixelate_gives_constant_blocks_holding_the_block_mean():
    faces = _faces(2, 40, 30)
    out = PixelateGenerator(block=10).generate(faces).faces
    for r in range(0, 40, 10):
        for c in range(0, 30, 10):
            block = out[:, r:r + 10, c:c + 10]
            assert (block == block[:, :1, :1]).all()
            expected = np.rint(faces[:, r:r + 10, c:c + 10].astype(float).mean(axis=(1, 2)))
            np.testing.assert_array_equal(block[:, 0, 0], expected)
    # A block of 1 pixel changes nothing.
    np.testing.assert_array_equal(PixelateGenerator(block=1).generate(faces).faces, faces)


def test_mask_covers_the_face_region_and_nothing_else():
    from privface.attributes.face_region import CELEBA_MEAN_LANDMARKS, face_mask, paste_face

    faces = _faces(2)
    out = MaskGenerator(color=(10, 20, 30)).generate(faces).faces
    assert (out == (10, 20, 30)).all()
    # Pasted as the pipeline pastes it ("face"): the face region, nothing else.
    photo, identity = faces[0], np.array([[1.0, 0, 0], [0, 1.0, 0]])
    pasted = paste_face(photo, out[0], identity, CELEBA_MEAN_LANDMARKS, colour=False,
                        blend="alpha", feather=6)
    region = face_mask(CELEBA_MEAN_LANDMARKS, (218, 178)) > 0
    inner = face_mask(CELEBA_MEAN_LANDMARKS, (218, 178), feather=6) == 1
    assert (pasted[inner] == (10, 20, 30)).all()
    np.testing.assert_array_equal(pasted[~region], photo[~region])
    # Eyes, mouth and forehead are inside; hair and background are not.
    assert inner[112, 70] and inner[112, 108] and inner[165, 89] and inner[90, 89]
    assert not region[10, 89] and not region[140, 10]


@pytest.mark.parametrize("bad", [dict(sigma=0), dict(sigma=-1)])
def test_bad_parameters_are_refused_early(bad):
    with pytest.raises(ValueError, match="sigma"):
        BlurGenerator(**bad)
    with pytest.raises(ValueError, match="block"):
        PixelateGenerator(block=0)
    with pytest.raises(ValueError, match="color"):
        MaskGenerator(color=(0, 300, 0))
    with pytest.raises(ValueError, match=r"\(n, height, width, 3\) uint8"):
        BlurGenerator().generate(np.zeros((218, 178, 3), np.uint8))


def test_unknown_generator_names_the_available_ones():
    with pytest.raises(ValueError, match="unknown generator 'nope'; available: blur"):
        load_generator("nope")


def test_plug_in_is_discovered_through_its_entry_point(tmp_path, monkeypatch):
    """An installed package declaring the entry point appears without touching privface."""
    package = tmp_path / "fancyfaces"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        import numpy as np

        class Negative:
            name = "negative"

            def __init__(self, strength=1.0):
                self.strength = strength

            def generate(self, faces, source_attributes, target_attributes):
                return (255 - faces).astype(np.uint8)

        class NotAGenerator:
            pass
        """))
    info = tmp_path / "fancyfaces-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fancyfaces\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n"
                                           "negative = fancyfaces:Negative\n"
                                           "broken = fancyfaces:NotAGenerator\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert {"negative", "broken"} <= set(available())
    generator = load_generator("negative", strength=0.5)
    assert generator.strength == 0.5
    faces = _faces(1, 8, 8)
    np.testing.assert_array_equal(generator.generate(faces, None, None).faces, 255 - faces)
    with pytest.raises(TypeError, match="does not follow the Generator protocol"):
        load_generator("broken")
    sys.modules.pop("fancyfaces", None)


class _Declared:
    """A plug-in of the current interface: declared capabilities, a typed result."""

    name = "declared"
    capabilities = Capabilities(geometry=square(16), editable=("Male",))

    def generate(self, faces, source_attributes, target_attributes):
        return GenerationResult(255 - faces, realised=np.arange(len(faces)) % 2 == 0)


class _Bare:
    """A plug-in of privface 0.1: optional plain attributes, a bare array."""

    name = "bare"
    editable = ["Smiling"]
    geometry = square(16)

    def generate(self, faces, source_attributes, target_attributes):
        return 255 - faces


def test_a_declared_generator_is_used_as_it_is():
    declared = _Declared()
    assert as_generator(declared) is declared
    result = declared.generate(_faces(2, 16, 16), None, None)
    assert result.realised.tolist() == [True, False] and result.notes is None


def test_a_bare_array_plug_in_is_adapted_in_one_place_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="declares no `capabilities`"):
        adapted = as_generator(_Bare())
    assert adapted.name == "bare" and adapted.editable == ["Smiling"]  # its own attributes
    assert adapted.capabilities == Capabilities(geometry=square(16), editable=("Smiling",))
    faces = _faces(2, 16, 16)
    result = adapted.generate(faces, None, None)
    assert isinstance(result, GenerationResult) and result.realised is None
    np.testing.assert_array_equal(result.faces, 255 - faces)
    with pytest.raises(TypeError, match="does not follow the Generator protocol"):
        as_generator(object())


def test_every_built_in_generator_declares_its_capabilities():
    assert BlurGenerator().capabilities == Capabilities(paste="face")
    assert PixelateGenerator().capabilities.editable == ()
    assert KSameSelectGenerator(k=2, attributes=["Male"]).capabilities == Capabilities(
        editable=("Male",), uses_persons=True, uses_landmarks=True, uses_readings=True,
        paste="blend")
    assert KSameSelectGenerator(region=False).capabilities.paste == "crop"
    faces = _faces(1, 218, 178)
    result = MaskGenerator().generate(faces, None, None)
    # The mask fills the crop; the pipeline pastes it into the face region ("face").
    assert (result.faces == 0).all() and MaskGenerator.capabilities.paste == "face"
    with pytest.raises(ValueError, match="paste"):
        Capabilities(paste="rectangle")
    assert BlurGenerator().generate(faces).regions is None
