"""Stage IV: norm bounds, DeepFool's minimal steps, the UAP against noise, storage, photos, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from privface.adversarial.attacks import apply_perturbation, fgsm, gaussian_noise, pgd
from privface.adversarial.classifiers import MultiClass, MultiLabel, as_classifier
from privface.adversarial.deepfool import deepfool
from privface.adversarial.evaluation import fooling_rate, label_flip_rates, perceptibility
from privface.adversarial.norms import check_p, lp_norm, project
from privface.adversarial.photos import perturb_photo, resize_perturbation
from privface.adversarial.storage import FORMAT, load_perturbation, save_perturbation
from privface.adversarial.tensors import add_quantized, check_images, to_tensor
from privface.adversarial.uap import UniversalPerturbation, universal_perturbation
from privface.cli.main import app
from privface.base.errors import InputError

torch.set_num_threads(1)
runner = CliRunner()
NORMS = st.sampled_from(["inf", 2])


def squash(text: str) -> str:
    """Output without whitespace: rich wraps long lines, even inside a path."""
    return "".join(text.split())


# -- a small model trained inside the tests ---------------------------------------------------

def _smooth(generator: torch.Generator, n: int, side: int = 16) -> torch.Tensor:
    coarse = torch.randn(n, 3, 4, 4, generator=generator)
    return F.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def trained():
    """A tiny CNN trained on synthetic 16 x 16 images whose class is the nearest of 4 templates.

    About 80% held-out accuracy after a second of training on one core.
    """
    generator = torch.Generator().manual_seed(0)
    templates = _smooth(generator, 4).flatten(1)
    templates = templates / templates.norm(dim=1, keepdim=True)

    def data(n: int):
        x = (0.5 + 0.12 * _smooth(generator, n)
             + 0.03 * torch.randn(n, 3, 16, 16, generator=generator)).clamp(0, 1)
        return x, ((x - 0.5).flatten(1) @ templates.T).argmax(1)

    x_train, y_train = data(1500)
    x_test, y_test = data(300)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.AvgPool2d(4), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 16, 4))
    optimiser = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(300):
        index = torch.randint(0, len(x_train), (64,))
        loss = F.cross_entropy(net(x_train[index]), y_train[index])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    net.eval()
    accuracy = float((net(x_test).argmax(1) == y_test).float().mean())
    assert accuracy > 0.6, accuracy  # the model must have learnt something to be worth fooling
    return net, x_train, x_test


def linear_net(weight: torch.Tensor, bias: torch.Tensor) -> torch.nn.Module:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(weight.shape[1],
                                                                  weight.shape[0]))
    with torch.no_grad():
        net[1].weight.copy_(weight)
        net[1].bias.copy_(bias)
    return net.eval()


# -- norms --------------------------------------------------------------------------------------

@given(seed=st.integers(0, 2**31), xi=st.floats(0.0, 5.0), p=NORMS,
       scale=st.floats(1e-3, 1e3), size=st.integers(1, 300))
def test_projection_is_within_the_ball_and_idempotent(seed, xi, p, scale, size):
    v = torch.randn(4, size, generator=torch.Generator().manual_seed(seed)) * scale
    out = project(v, xi, p)
    assert bool((lp_norm(out, p) <= xi).all())  # exact: no tolerance
    assert torch.equal(project(out, xi, p), out)
    inside = lp_norm(v, p) <= xi
    assert torch.equal(out[inside], v[inside])  # points inside the ball do not move
    if p == 2:  # the l_2 projection keeps the direction
        a, b = out.double(), v.double()
        cosine = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
        assert bool((cosine[lp_norm(out, 2) > 0] > 0.9999).all())


def test_projection_takes_one_radius_per_image_and_refuses_bad_ones():
    v = torch.full((2, 3), 5.0)
    assert lp_norm(project(v, torch.tensor([1.0, 2.0]), 2), 2).tolist() == \
        pytest.approx([1.0, 2.0])
    with pytest.raises(ValueError, match="xi must be"):
        project(v, -1.0, 2)
    with pytest.raises(ValueError, match="one radius per image"):
        project(v, torch.ones(3), "inf")
    with pytest.raises(ValueError, match="p must be 2 or inf"):
        check_p(1)


# -- every attack keeps its budget --------------------------------------------------------------

@given(seed=st.integers(0, 2**31), xi=st.floats(0.0, 0.3), p=NORMS,
       attack=st.sampled_from(["fgsm", "pgd", "gauss"]))
def test_per_image_attacks_respect_the_budget_before_and_after_clipping(seed, xi, p, attack):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 5))
    images = torch.rand(6, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    images[0] = 1.0  # saturated images: clipping must not push the change over the budget
    images[1] = 0.0
    if attack == "fgsm":
        out = fgsm(net, images, xi=xi, p=p)
    elif attack == "pgd":
        out = pgd(net, images, xi=xi, p=p, steps=3, seed=seed)
    else:
        out = gaussian_noise(images, xi=xi, p=p, seed=seed)
    assert out.shape == images.shape
    assert bool(((out >= 0) & (out <= 1)).all())
    # One float addition separates the change from the projected perturbation.
    assert bool((lp_norm(out - images, p) <= xi + 1e-6).all())
    released = add_quantized(np.rint(images.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8),
                             (out - images).permute(0, 2, 3, 1).numpy())
    clean = np.rint(images.permute(0, 2, 3, 1).numpy() * 255)
    change = torch.from_numpy((released - clean) / 255.0).permute(0, 3, 1, 2)
    # The 8-bit change: towards zero, so within the float change's norm (to 1e-4 grey level).
    assert bool((lp_norm(change, p) <= lp_norm(out - images, p) + 1e-4 / 255 * 60).all())


@given(seed=st.integers(0, 2**31), xi=st.floats(0.0, 1.0), p=NORMS)
def test_the_universal_perturbation_respects_its_budget_exactly(seed, xi, p):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    images = torch.rand(8, 3, 2, 2, generator=torch.Generator().manual_seed(seed))
    result = universal_perturbation(net, images, xi=xi, p=p, max_passes=2, seed=seed,
                                    batch_size=3)
    assert float(lp_norm(result.perturbation[None], p)[0]) <= xi
    out = apply_perturbation(images, result.perturbation)
    assert bool((lp_norm(out - images, p) <= xi + 1e-6).all())
    assert result.params["norm"] <= xi and result.params["p"] == ("inf" if p == "inf" else "2")


def test_gaussian_noise_matches_a_given_perturbations_norm():
    images = torch.full((3, 3, 8, 8), 0.5)
    v = torch.zeros(3, 8, 8)
    v[0, :2] = 0.03
    noisy = gaussian_noise(images, like=v, p=2, seed=0)
    assert lp_norm(noisy - images, 2).tolist() == pytest.approx([float(v.norm())] * 3, rel=1e-5)
    per_image = torch.rand(3, 3, 8, 8) * 0.02
    noisy = gaussian_noise(images, like=per_image, p="inf", seed=0)
    assert lp_norm(noisy - images, "inf").tolist() == \
        pytest.approx(lp_norm(per_image, "inf").tolist(), rel=1e-5)
    with pytest.raises(ValueError, match="exactly one of xi"):
        gaussian_noise(images, xi=0.1, like=v)


def test_randomness_comes_from_os_entropy_unless_seeded():
    images = torch.full((2, 3, 8, 8), 0.5)
    assert torch.equal(gaussian_noise(images, xi=0.1, seed=3), gaussian_noise(images, xi=0.1,
                                                                                seed=3))
    assert not torch.equal(gaussian_noise(images, xi=0.1), gaussian_noise(images, xi=0.1))


# -- DeepFool -----------------------------------------------------------------------------------

@pytest.mark.parametrize("p", ["inf", 2])
def test_deepfool_finds_the_analytically_minimal_flip_of_a_linear_model(p):
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(5, 12, generator=generator)
    net = linear_net(weight, 0.1 * torch.randn(5, generator=generator))
    images = 0.4 + 0.2 * torch.rand(16, 3, 2, 2, generator=generator)
    logits = net(images).detach()
    label = logits.argmax(1)
    # The nearest boundary f_label = f_k of a linear model lies at
    # (f_label - f_k) / ||w_label - w_k||_q, q the dual norm of p.
    gaps = logits.gather(1, label[:, None]) - logits
    normals = weight[label][:, None, :] - weight[None, :, :]
    dual = normals.abs().sum(2) if p == "inf" else normals.norm(dim=2)
    distance = torch.where(gaps > 0, gaps / dual.clamp_min(1e-12), torch.inf).min(1).values
    overshoot = 0.02
    result = deepfool(net, images, p=p, overshoot=overshoot, max_iter=50)
    found = lp_norm(result.perturbation, p)
    assert result.fooled.all() and (result.iterations == 1).all()
    # One exact step onto the boundary, plus DeepFool's 1e-4, times 1 + overshoot.
    assert found.tolist() == pytest.approx(((1 + overshoot) * (distance + 1e-4)).tolist(),
                                           rel=1e-4)
    assert (found >= distance).all()
    assert (net(images + result.perturbation).argmax(1) != label).all()


def test_deepfool_on_a_binary_attribute_is_the_closed_form_step():
    weight = torch.tensor([[3.0, 0.0, 4.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    net = linear_net(weight, torch.tensor([-3.0, 0.0]))
    x = torch.full((1, 1, 2, 2), 0.6)  # f_A = 0.6 * 7 - 3 = 1.2, distance 1.2 / 5 = 0.24
    target = MultiLabel(net, attributes=["A"], names=["A", "B"])
    result = deepfool(target, x, p=2, overshoot=0.0)
    expected = -(1.2 / 5 + 1e-4) * weight[0] / 5  # r = -f(x) grad / ||grad||^2, plus the 1e-4
    assert result.fooled.tolist() == [True]
    assert result.perturbation.flatten().tolist() == pytest.approx(expected.tolist(), rel=1e-5)


def test_a_multilabel_model_is_fooled_only_by_a_chosen_attribute():
    net = linear_net(torch.eye(3), torch.zeros(3))
    clean = torch.full((1, 3, 1, 1), 0.25)  # every logit 0.25: all three attributes present
    flip_b = clean.clone()
    flip_b[0, 1] = 0.0  # B's logit drops to 0: predicted absent
    chosen = MultiLabel(net, attributes=["A", "C"], names=["A", "B", "C"])
    everything = MultiLabel(net, attributes="all", names=["A", "B", "C"])
    assert chosen.fooled(flip_b, chosen.reference(clean)).tolist() == [False]
    assert everything.fooled(flip_b, everything.reference(clean)).tolist() == [True]
    with pytest.raises(ValueError, match="unknown attribute 'D'"):
        MultiLabel(net, attributes=["D"], names=["A", "B", "C"])
    assert as_classifier(net).kind == "multiclass"


def test_attacks_leave_every_module_in_the_mode_it_was_in():
    from privface.adversarial.models import FrameInput

    inner = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3),
                                torch.nn.Dropout()).eval()
    outer = FrameInput(inner, (4, 4))
    outer.train()  # a wrapper in training mode around a network in evaluation mode
    inner.eval()
    images = torch.rand(4, 3, 8, 8)
    fgsm(outer, images, xi=0.1)
    universal_perturbation(outer, images, xi=0.1, max_passes=1, seed=0)
    assert outer.training and not any(m.training for m in inner.modules())


# -- the universal perturbation against noise ---------------------------------------------------

@pytest.mark.slow
def test_the_uap_fools_a_trained_model_far_more_than_noise_of_the_same_norm(trained):
    net, x_train, x_test = trained
    for p, xi in (("inf", 0.03), (2, 0.5)):
        result = universal_perturbation(net, x_train[:150], xi=xi, p=p, max_passes=2, seed=0,
                                        max_iter=20)
        uap = fooling_rate(net, x_test, apply_perturbation(x_test, result.perturbation))
        same_budget = fooling_rate(net, x_test, gaussian_noise(x_test, xi=xi, p=p, seed=1))
        same_l2 = fooling_rate(net, x_test, gaussian_noise(x_test, like=result.perturbation,
                                                            p=2, seed=1))
        assert uap > 0.3, (p, uap)
        assert uap > same_budget + 0.25 and uap > same_l2 + 0.25, (p, uap, same_budget, same_l2)
        # The per-image attacks, with a budget per image, fool more still.
        assert fooling_rate(net, x_test, pgd(net, x_test, xi=xi, p=p, seed=0)) > uap


def test_a_seeded_uap_is_reproducible_and_says_so(trained):
    net, x_train, _ = trained
    kwargs = dict(xi=0.03, p="inf", max_passes=1, batch_size=8)
    first = universal_perturbation(net, x_train[:64], seed=5, **kwargs)
    second = universal_perturbation(net, x_train[:64], seed=5, **kwargs)
    assert torch.equal(first.perturbation, second.perturbation)
    assert first.params["seeded"] is True and first.params["seed"] == 5
    unseeded = universal_perturbation(net, x_train[:64], **kwargs)
    assert unseeded.params["seeded"] is False and unseeded.params["seed"] is None
    assert len(first.fooling_rates) == first.passes == 1


def test_the_uap_stops_at_the_target_fooling_rate(trained):
    net, x_train, _ = trained
    result = universal_perturbation(net, x_train[:64], xi=0.5, p="inf", delta=0.9,
                                    max_passes=5, seed=0, batch_size=16)
    assert result.passes == 1 and result.fooling_rate > 0.1 and result.converged
    assert result.params["kept_pass"] == 1


def test_the_estimator_fits_and_transforms(trained):
    net, x_train, x_test = trained
    uap = UniversalPerturbation(net, xi=0.03, max_passes=1, batch_size=16, seed=0)
    with pytest.raises(RuntimeError, match="fit"):
        uap.transform(x_test)
    out = uap.fit(x_train[:64]).transform(x_test)
    assert torch.equal(out, apply_perturbation(x_test, uap.perturbation_))
    assert 0.0 <= uap.fooling_rate(x_test) <= 1.0
    with pytest.raises(ValueError, match="the perturbation"):
        uap.transform(torch.rand(2, 3, 8, 8))


def test_bad_images_are_refused_with_a_clear_message():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    with pytest.raises(ValueError, match=r"values must lie in \[0, 1\]"):
        universal_perturbation(net, torch.full((2, 3, 2, 2), 255.0), xi=0.1)
    with pytest.raises(ValueError, match="uint8"):
        check_images(torch.zeros(2, 3, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="delta"):
        universal_perturbation(net, torch.rand(2, 3, 2, 2), xi=0.1, delta=1.5)
    with pytest.raises(ValueError, match="logits of shape"):
        fooling_rate(torch.nn.Identity(), torch.rand(2, 3, 2, 2), torch.rand(2, 3, 2, 2))


# -- storage ------------------------------------------------------------------------------------

def test_a_saved_perturbation_reloads_bit_for_bit(trained, tmp_path):
    net, x_train, _ = trained
    result = universal_perturbation(net, x_train[:32], xi=0.03, p="inf", max_passes=1, seed=0,
                                    batch_size=8)
    path = save_perturbation(tmp_path / "uap.npz", result.perturbation, xi=0.03, p="inf",
                             frame={"geometry": "celeba"}, params=result.params,
                             fooling_rates=result.fooling_rates)
    loaded = load_perturbation(path)
    assert loaded.perturbation.dtype == np.float32
    assert loaded.perturbation.tobytes() == result.perturbation.numpy().tobytes()
    assert torch.equal(loaded.tensor(), result.perturbation)
    assert loaded.header["format"] == FORMAT and loaded.header["params"] == result.params
    assert loaded.header["fooling_rates"] == result.fooling_rates
    # Saving what was loaded writes the same file content again.
    again = save_perturbation(tmp_path / "again.npz", loaded.perturbation, xi=loaded.xi,
                              p=loaded.p, frame=loaded.header["frame"],
                              params=loaded.header["params"],
                              fooling_rates=loaded.header["fooling_rates"])
    assert again.read_bytes() == path.read_bytes()


def _npz(path: Path, **arrays) -> Path:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"),
    ("pickle", "not a privface perturbation"),
    ("format", "unknown format"),
    ("arrays", "expected the arrays"),
    ("shape", "must be (3, height, width)"),
    ("dtype", "must be float32"),
    ("budget", "exceeds its budget"),
    ("nan", "not finite"),
    ("p", "p must be '2' or 'inf'"),
])
def test_loading_a_bad_perturbation_names_the_file_and_the_problem(tmp_path, case, message):
    path = tmp_path / f"{case}.npz"
    good = {"format": FORMAT, "xi": 0.04, "p": "inf", "shape": [3, 2, 2]}
    v = np.zeros((3, 2, 2), np.float32)
    if case == "pickle":
        torch.save({"v": torch.zeros(3)}, path)
    elif case == "format":
        _npz(path, perturbation=v, header=np.array(json.dumps({**good, "format": "x/1"})))
    elif case == "arrays":
        _npz(path, perturbation=v)
    elif case == "shape":
        _npz(path, perturbation=np.zeros((2, 2), np.float32),
             header=np.array(json.dumps(good)))
    elif case == "dtype":
        _npz(path, perturbation=v.astype(np.float64), header=np.array(json.dumps(good)))
    elif case == "budget":
        _npz(path, perturbation=v + 0.05, header=np.array(json.dumps(good)))
    elif case == "nan":
        _npz(path, perturbation=v + np.nan, header=np.array(json.dumps(good)))
    elif case == "p":
        _npz(path, perturbation=v, header=np.array(json.dumps({**good, "p": "1"})))
    with pytest.raises(InputError) as error:
        load_perturbation(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_saving_refuses_a_perturbation_over_its_budget(tmp_path):
    with pytest.raises(InputError, match="exceeds its budget"):
        save_perturbation(tmp_path / "v.npz", np.full((3, 2, 2), 0.1, np.float32), xi=0.04,
                          p="inf")
    assert not (tmp_path / "v.npz").exists()


# -- photos -------------------------------------------------------------------------------------

def test_a_photo_changes_only_under_the_face_and_within_the_budget():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (120, 100, 3), dtype=np.uint8)
    v = rng.uniform(-0.04, 0.04, (3, 109, 89)).astype(np.float32)
    delta = resize_perturbation(v, 218, 178)
    assert np.abs(delta).max() <= np.abs(v).max()  # bilinear: convex combinations
    # A face at half scale, rotated a little, in the middle of the photo.
    angle, scale = 0.1, 2.0
    a, b = scale * math.cos(angle), scale * math.sin(angle)
    matrix = np.array([[a, -b, -60.0], [b, a, -50.0]])
    out = perturb_photo(photo, [matrix, matrix], delta)  # the same face twice: no double dose
    change = out.astype(int) - photo
    assert np.abs(change).max() <= math.floor(0.04 * 255)
    assert change[:5].max() == 0 and change[:5].min() == 0  # the top rows lie outside the crop
    assert np.count_nonzero(change) > 1000
    assert np.array_equal(perturb_photo(photo, [], delta), photo)


@pytest.mark.parametrize("method", ["fgsm", "pgd", "gauss"])
def test_per_image_attacks_on_the_faces_of_a_photo_stay_within_the_budget(method):
    from privface.adversarial.models import FrameInput
    from privface.adversarial.photos import attack_faces

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 4))
    net.input_size = (16, 16)
    photo = np.random.default_rng(0).integers(0, 256, (300, 600, 3), dtype=np.uint8)
    points = np.zeros((68, 2))
    points[36:42], points[42:48] = (120, 150), (180, 150)
    out = attack_faces(photo, [points], method=method, xi=0.03, p="inf", steps=2, seed=0,
                       target=MultiClass(FrameInput(net, (16, 16))))
    change = np.abs(out.astype(int) - photo)
    assert 0 < change.max() <= math.floor(0.03 * 255)
    assert change[:, 400:].max() == 0  # right of the aligned crop (x 7..293) nothing moves
    with pytest.raises(ValueError, match="needs a target"):
        attack_faces(photo, [points], method="pgd", xi=0.03)


def test_the_pipeline_perturber_applies_each_method_and_records_it(tmp_path):
    from privface.adversarial.models import FrameInput
    from privface.adversarial.photos import PhotoPerturber

    photo = np.random.default_rng(1).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    points = np.zeros((68, 2))
    points[36:42], points[42:48] = (120, 150), (180, 150)
    v = np.random.default_rng(2).uniform(-0.02, 0.02, (3, 109, 89)).astype(np.float32)
    path = save_perturbation(tmp_path / "uap.npz", v, xi=0.02, p="inf",
                             frame={"geometry": "celeba"})
    uap = PhotoPerturber("uap", uap=path)
    out = uap(photo, [points])
    assert 0 < np.abs(out.astype(int) - photo).max() <= 5
    assert uap.record()["sha256"] == load_perturbation(path).sha256()
    with pytest.raises(InputError, match="differs from the perturbation's own budget"):
        PhotoPerturber("uap", uap=path, xi=0.04)
    with pytest.raises(InputError, match="must be one of"):
        PhotoPerturber("blur", xi=0.1)
    with pytest.raises(InputError, match="needs a budget"):
        PhotoPerturber("gauss")
    first, again = PhotoPerturber("gauss", xi=0.02, seed=3), PhotoPerturber("gauss", xi=0.02,
                                                                             seed=3)
    one, two = first(photo, [points]), first(photo, [points])
    assert np.array_equal(one, again(photo, [points]))  # seeded: repeats photo for photo
    assert not np.array_equal(one, two)  # ... with fresh noise for every photo
    # Keyed by the photo's name, a seeded run repeats whatever the order or the process (the
    # pipeline perturbs photos in several workers); unseeded, copies of one perturber (what
    # each worker holds) still draw different noise.
    a, b = PhotoPerturber("gauss", xi=0.02, seed=3), PhotoPerturber("gauss", xi=0.02, seed=3)
    a_x, a_y = a(photo, [points], key="x.jpg"), a(photo, [points], key="y.jpg")
    b_y, b_x = b(photo, [points], key="y.jpg"), b(photo, [points], key="x.jpg")
    assert np.array_equal(a_x, b_x) and np.array_equal(a_y, b_y)
    assert not np.array_equal(a_x, a_y)
    import copy

    unseeded = PhotoPerturber("gauss", xi=0.02)
    twin = copy.deepcopy(unseeded)
    assert not np.array_equal(unseeded(photo, [points], key="x.jpg"),
                              twin(photo, [points], key="x.jpg"))
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
    pgd_perturber = PhotoPerturber("pgd", xi=0.02, steps=2,
                                   target=MultiClass(FrameInput(net, (8, 8))))
    assert np.abs(pgd_perturber(photo, [points]).astype(int) - photo).max() <= 5
    record = pgd_perturber.record()
    assert record["method"] == "pgd" and record["steps"] == 2 and record["seeded"] is False
    assert record["model"]["kind"] == "multiclass"


def test_quality_and_flip_summaries():
    clean = np.full((2, 20, 20, 3), 120, np.uint8)
    out = add_quantized(clean, np.full((20, 20, 3), 0.02))
    scores = perceptibility(clean, out)
    assert scores["linf_levels"] == 5 and scores["psnr"] == pytest.approx(
        20 * math.log10(255 / 5), abs=1e-4)
    flips = label_flip_rates(np.array([[1, 1], [1, -1]]), np.array([[1, 1], [1, 1]]),
                             ["A", "B"])
    assert flips["any"] == 0.5 and flips["per_attribute"] == {"A": 0.0, "B": 0.5}
    assert to_tensor(out).shape == (2, 3, 20, 20)


# -- the command line ---------------------------------------------------------------------------

def test_cli_bad_input_exits_2(tmp_path):
    missing = runner.invoke(app, ["perturb", "train", "--images", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "expectedafolderofphotos" in squash(missing.output)
    bad_p = runner.invoke(app, ["perturb", "train", "--images", str(tmp_path), "--p", "1"])
    assert bad_p.exit_code == 2 and "pmustbe2orinf" in squash(bad_p.output)
    no_ids = runner.invoke(app, ["perturb", "train", "--images", str(tmp_path), "--model",
                                 "recognizer"])
    assert no_ids.exit_code == 2
    bad_model = runner.invoke(app, ["perturb", "train", "--images", str(tmp_path), "--model",
                                    "other"])
    assert bad_model.exit_code == 2 and "--modelmustbeoneof" in squash(bad_model.output)
    (tmp_path / "fake.npz").write_bytes(b"not a zip")
    photos = tmp_path / "photos"
    photos.mkdir()
    apply = runner.invoke(app, ["perturb", "apply", str(tmp_path / "fake.npz"), str(photos),
                                "--out", str(tmp_path / "out")])
    assert apply.exit_code == 2 and "fake.npz" in squash(apply.output)
    assert not (tmp_path / "out").exists()


def _tiny_network(kind: str, path: Path) -> Path:
    """Untrained small weights of privface's torch models: the CLI runs without shipped ones."""
    from privface.attributes.cnn import AttributeCNN
    from privface.attributes.embedding_net import FaceEmbeddingNet

    torch.manual_seed(0)
    net = AttributeCNN(widths=(4, 8, 8, 8)) if kind == "attributes" else \
        FaceEmbeddingNet(widths=(4, 8, 8, 8), dimension=16)
    net.eval().save(path)
    return path


@pytest.fixture
def few_photos(celeba_dir, tmp_path):
    """Three photos of each of the first two identities of the 200-identity set, and a bad file."""
    from privface.privmetrics.readers import read_celeba_identities

    source = celeba_dir / "img_align_celeba_200ids"
    names = sorted(p.name for p in source.iterdir())
    ids = read_celeba_identities(celeba_dir / "identity_CelebA.txt").reindex(names)
    photos = tmp_path / "photos"
    photos.mkdir()
    for person in sorted(ids.unique())[:2]:
        for name in sorted(ids.index[ids == person])[:3]:
            (photos / name).symlink_to(source / name)
    (photos / "notes.png").write_bytes(b"not an image")
    return photos


@pytest.mark.realdata
@pytest.mark.slow
def test_cli_trains_a_uap_and_applies_it_to_real_photos(few_photos, tmp_path):
    from privface.attributes.cnn import AttributeCNN
    from privface.attributes.images import load_image

    weights = _tiny_network("attributes", tmp_path / "cnn.npz")
    uap = tmp_path / "uap.npz"
    trained = runner.invoke(app, ["perturb", "train", "--images", str(few_photos), "--weights",
                                  str(weights), "--xi", "0.03", "--max-passes", "2",
                                  "--seed", "1", "--out", str(uap)])
    assert trained.exit_code == 0, trained.output
    saved = load_perturbation(uap)
    assert saved.perturbation.shape == (3, *AttributeCNN.input_size)
    assert saved.xi == 0.03 and saved.p == "inf"
    assert saved.header["images"]["used"] == 6 and saved.header["images"]["skipped"] == 1
    assert saved.header["params"]["seeded"] is True and saved.header["params"]["seed"] == 1
    assert saved.header["model"]["attributes"] == ["Black_Hair", "Blond_Hair", "Brown_Hair",
                                                   "Male", "Young"]
    out = tmp_path / "out"
    applied = runner.invoke(app, ["perturb", "apply", str(uap), str(few_photos), "--out",
                                  str(out), "--png"])
    assert applied.exit_code == 0, applied.output
    record = json.loads((out / "perturb.json").read_text())
    assert record["photos"] == {"input": 7, "written": 6, "skipped": 1}
    assert record["perturbation"]["sha256"] == saved.sha256()
    for row in record["written"]:
        before = load_image(few_photos / row["source"]).astype(int)
        after = load_image(out / row["file"]).astype(int)
        assert row["file"].endswith(".png")
        assert 0 < np.abs(after - before).max() <= math.floor(0.03 * 255)
        assert row["max_change_levels"] <= 7 and row["psnr"] > 35


@pytest.mark.realdata
@pytest.mark.slow
def test_cli_trains_a_uap_against_the_recognizer_over_the_photos_identities(celeba_dir,
                                                                           few_photos, tmp_path):
    weights = _tiny_network("recognizer", tmp_path / "embedding.npz")
    uap = tmp_path / "uap.npz"
    trained = runner.invoke(app, ["perturb", "train", "--images", str(few_photos), "--model",
                                  "recognizer", "--identities",
                                  str(celeba_dir / "identity_CelebA.txt"), "--weights",
                                  str(weights), "--p", "2", "--xi", "1.0", "--max-passes", "1",
                                  "--out", str(uap)])
    assert trained.exit_code == 0, trained.output
    saved = load_perturbation(uap)
    assert saved.perturbation.shape == (3, 109, 89) and saved.p == "2"
    assert float(np.linalg.norm(saved.perturbation)) <= 1.0
    assert saved.header["model"]["kind"] == "multiclass"
    assert saved.header["params"]["seeded"] is False


# --- perturb apply: the record always describes the photos beside it ----------------------------

def _uap(tmp_path: Path, value: float) -> Path:
    return save_perturbation(tmp_path / f"uap{value}.npz",
                             np.full((3, 109, 89), value, np.float32), xi=value, p="inf",
                             frame={"geometry": "celeba"})


def _listed(out: Path) -> set[str]:
    return {row["file"] for row in json.loads((out / "perturb.json").read_text())["written"]}


def _photos_in(out: Path) -> set[str]:
    return {p.name for p in out.iterdir() if p.is_file() and p.suffix in (".jpg", ".png")}


@pytest.mark.realdata
def test_an_interrupted_perturb_run_leaves_the_folder_as_it_was(few_photos, tmp_path):
    from privface.adversarial.photos import perturb_photos

    out = tmp_path / "out"
    first = perturb_photos(load_perturbation(_uap(tmp_path, 0.02)), few_photos, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def stop_after_two(name, seen=[]):  # noqa: B006  (counts the calls of one run)
        seen.append(name)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        perturb_photos(load_perturbation(_uap(tmp_path, 0.03)), few_photos, out,
                       on_photo=stop_after_two)
    # Nothing of the stopped run reached OUT: the photos and the record are the first run's.
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert _photos_in(out) == _listed(out) == set(first.written)
    assert [p.name for p in out.iterdir() if p.is_dir()] == []  # no staging left behind


@pytest.mark.realdata
def test_a_new_perturb_run_removes_the_photos_of_the_old_record_it_does_not_rewrite(
        few_photos, tmp_path):
    from privface.adversarial.photos import perturb_photos

    out = tmp_path / "out"
    perturb_photos(load_perturbation(_uap(tmp_path, 0.02)), few_photos, out)
    (out / "mine.txt").write_text("not privface's")
    # The second run writes PNGs: the first run's JPEGs would sit beside a record that does
    # not list them.
    second = perturb_photos(load_perturbation(_uap(tmp_path, 0.03)), few_photos, out,
                            suffix=".png")
    assert _photos_in(out) == _listed(out) == set(second.written)
    assert all(name.endswith(".png") for name in second.written)
    assert (out / "mine.txt").read_text() == "not privface's"  # files it did not write stay


def test_a_second_perturb_run_into_a_locked_folder_is_refused(few_photos, tmp_path):
    from privface.adversarial.photos import perturb_photos
    from privface.base.files import lock_output

    out = tmp_path / "out"
    with lock_output(out):
        with pytest.raises(InputError, match="another privface run"):
            perturb_photos(load_perturbation(_uap(tmp_path, 0.02)), few_photos, out)
