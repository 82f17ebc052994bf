"""The differentiable torch models stage IV attacks: attribute CNN, face embedding, gallery."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from privface.attributes.cnn import (AttributeCNN, attribute_cnn_inputs, default_attribute_cnn_path,
                                     load_attribute_cnn)
from privface.attributes.embedding_net import (FaceEmbeddingNet, GalleryClassifier,
                                               embedding_net_inputs, load_face_embedding_net)
from privface.attributes.embedding_training import (cosface_logits, split_people,
                                                    train_face_embedding, verification_metrics)
from privface.attributes.model import CELEBA_ATTRIBUTES
from privface.attributes.torch_training import augment, read_faces, train_attribute_cnn
from privface.cli.main import app
from privface.base.errors import InputError
from privface.privmetrics.readers import read_celeba_attributes, read_celeba_identities

runner = CliRunner()
TINY = (4, 8, 8, 8)  # backbone widths that train in well under a second


@pytest.fixture(scope="module")
def attribute_cnn() -> AttributeCNN:
    return load_attribute_cnn()


@pytest.fixture(scope="module")
def embedding_net() -> FaceEmbeddingNet:
    return load_face_embedding_net()


# -- the shipped weights ---------------------------------------------------------------------

def test_shipped_attribute_cnn_loads_with_its_record(attribute_cnn):
    assert isinstance(attribute_cnn, AttributeCNN) and not attribute_cnn.training
    assert attribute_cnn.attributes == CELEBA_ATTRIBUTES
    record = attribute_cnn.metadata["test_accuracy"]
    assert record["images"].startswith("008001.jpg .. 010000.jpg")
    assert record["mean"] > record["majority_baseline_mean"] + 0.05
    assert attribute_cnn.metadata["trained_on"] == "000001.jpg .. 008000.jpg"
    # Small enough to ship in the repository, and documented beside it.
    assert default_attribute_cnn_path().stat().st_size < 4_000_000
    card = (default_attribute_cnn_path().parent / "MODEL_CARD_attributes_cnn.md").read_text()
    assert "non-commercial" in card and f"**{record['mean']:.4f}**" in card


def test_shipped_embedding_net_has_calibrated_thresholds(embedding_net):
    assert isinstance(embedding_net, FaceEmbeddingNet) and not embedding_net.training
    low, high = embedding_net.match_threshold(1e-3), embedding_net.match_threshold(1e-2)
    assert 0.0 < low <= high < 2.0
    held_out = embedding_net.metadata["held_out"]
    assert held_out["people"] == 40
    assert held_out["thresholds"]["0.01"] == pytest.approx(high)
    assert 0.5 < held_out["roc_auc"] <= 1.0
    card = (default_attribute_cnn_path().parent / "MODEL_CARD_face_embedding.md").read_text()
    assert "non-commercial" in card and f"{held_out['roc_auc']:.4f}" in card


# -- gradients reach the pixels --------------------------------------------------------------

def test_attribute_gradients_flow_to_the_input(attribute_cnn):
    x = torch.rand(2, 3, *AttributeCNN.input_size, requires_grad=True)
    logits = attribute_cnn(x)
    assert logits.shape == (2, 40)
    logits[:, CELEBA_ATTRIBUTES.index("Male")].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert (x.grad.abs().flatten(1).sum(1) > 0).all()  # every face gets a gradient
    # The weights are frozen by the attack, not by the model: they get gradients too.
    assert attribute_cnn.head.weight.grad is not None
    attribute_cnn.zero_grad(set_to_none=True)


def test_embedding_and_gallery_gradients_flow_to_the_input(embedding_net):
    x = torch.rand(3, 3, *FaceEmbeddingNet.input_size, requires_grad=True)
    e = embedding_net(x)
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    gallery = GalleryClassifier(embedding_net, e.detach(), ["a", "b", "c"])
    logits = gallery(x)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    embedding_net.zero_grad(set_to_none=True)


def test_models_refuse_inputs_of_the_wrong_shape(attribute_cnn, embedding_net):
    with pytest.raises(ValueError, match=r"\(n, 3, 78, 64\)"):
        attribute_cnn(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="float tensor"):
        embedding_net(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


# -- input helpers ---------------------------------------------------------------------------

@pytest.mark.parametrize("helper, size", [(attribute_cnn_inputs, AttributeCNN.input_size),
                                          (embedding_net_inputs, FaceEmbeddingNet.input_size)])
def test_input_helpers_take_one_face_a_batch_or_a_list(helper, size):
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (3, 218, 178, 3), dtype=np.uint8)
    batch = helper(faces)
    assert batch.shape == (3, 3, *size) and batch.dtype == torch.float32
    assert 0.0 <= float(batch.min()) and float(batch.max()) <= 1.0
    assert torch.equal(helper(faces[1]), batch[1:2])
    assert torch.equal(helper(list(faces)), batch)
    assert helper([]).shape == (0, 3, *size)
    # Channel order: a BGR copy declared as such gives the same tensor.
    assert torch.equal(helper(faces[..., ::-1], channels="bgr"), batch)


@pytest.mark.parametrize("helper", [attribute_cnn_inputs, embedding_net_inputs])
def test_input_helpers_accept_any_scale_of_the_geometry(helper):
    # A smooth face at 178 x 218 and at half size (CelebA's shared copies) give nearly the same
    # input: the helpers read geometry in fractions of the crop, not in pixels.
    yy, xx = np.mgrid[0:218, 0:178]
    face = np.stack([xx * 255 // 177, yy * 255 // 217, (xx + yy) * 255 // 394], -1)
    face = face.astype(np.uint8)
    half = np.asarray(Image.fromarray(face).resize((89, 109), Image.BILINEAR))
    assert float((helper(face) - helper(half)).abs().max()) < 0.03


@pytest.mark.parametrize("bad, message", [
    (np.zeros((218, 178, 3), np.float32), "uint8"),
    (np.zeros((218, 178), np.uint8), r"\(h, w, 3\)"),
    (np.zeros((2, 218, 178, 4), np.uint8), r"\(h, w, 3\)"),
])
def test_input_helpers_refuse_what_is_not_an_rgb_face(bad, message):
    with pytest.raises(ValueError, match=message):
        attribute_cnn_inputs(bad)
    with pytest.raises(ValueError, match="channels"):
        embedding_net_inputs(np.zeros((10, 10, 3), np.uint8), channels="rgba")


@given(st.integers(1, 4), st.integers(20, 60), st.integers(20, 60))
def test_input_helpers_give_the_model_size_for_any_face(n, height, width):
    faces = np.zeros((n, height, width, 3), np.uint8)
    assert attribute_cnn_inputs(faces).shape == (n, 3, *AttributeCNN.input_size)
    assert embedding_net_inputs(faces).shape == (n, 3, *FaceEmbeddingNet.input_size)


# -- the gallery classifier ------------------------------------------------------------------

def test_gallery_classifier_uses_each_person_s_mean_embedding():
    net = FaceEmbeddingNet(widths=TINY, dimension=4).eval()
    gallery = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [1.0, 1.0, 0, 0], [0, 0, 0, 1.0]])
    clf = GalleryClassifier(net, gallery, ["b", "a", "a", "c"], scale=10.0)
    assert clf.classes == ("a", "b", "c")
    centre_a = torch.nn.functional.normalize(
        gallery[1] + torch.nn.functional.normalize(gallery[2], dim=0), dim=0)
    assert torch.allclose(clf.centres[0], centre_a)
    x = torch.rand(2, 3, 64, 64)
    expected = 10.0 * net(x) @ clf.centres.T
    assert torch.allclose(clf(x), expected, atol=1e-6)
    assert torch.allclose(clf.cosine_distances(x), 1.0 - expected / 10.0, atol=1e-6)
    net.thresholds = {1e-2: 0.3}
    logits, distances = clf(x), clf.cosine_distances(x)
    assert torch.equal(logits >= clf.match_logit(1e-2) - 1e-5, distances <= 0.3 + 1e-6)


def test_gallery_classifier_refuses_mismatched_gallery():
    net = FaceEmbeddingNet(widths=TINY, dimension=4)
    with pytest.raises(ValueError, match="one label per gallery embedding"):
        GalleryClassifier(net, torch.zeros(3, 4), ["a", "b"])
    with pytest.raises(ValueError, match=r"\(m, 4\)"):
        GalleryClassifier(net, torch.zeros(3, 5), ["a", "b", "c"])
    with pytest.raises(ValueError, match="empty"):
        GalleryClassifier(net, np.zeros((0, 4)), [])


# -- weight files ----------------------------------------------------------------------------

def test_weights_roundtrip_exactly(tmp_path):
    model = train_attribute_cnn(torch.randint(0, 256, (6, 3, 78, 64), dtype=torch.uint8),
                                np.ones((6, 40)), epochs=1, batch_size=3, widths=TINY, seed=3)
    model.save(tmp_path / "a.npz")
    again = load_attribute_cnn(tmp_path / "a.npz")
    x = torch.rand(2, 3, 78, 64)
    # The trainer rounds to what the file stores (half precision): the file is the model.
    assert torch.equal(model(x), again(x))
    assert again.metadata["seed"] == 3 and again.widths == TINY

    net = FaceEmbeddingNet(widths=TINY, dimension=8).eval()
    net.thresholds = {1e-2: 0.4, 1e-3: 0.3}
    net.save(tmp_path / "e.npz")
    loaded = load_face_embedding_net(tmp_path / "e.npz")
    assert loaded.thresholds == {1e-2: 0.4, 1e-3: 0.3} and loaded.dimension == 8


class _Exploit:
    """A pickle that would create a file when unpickled."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_loading_refuses_pickles_and_foreign_files(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"state": _Exploit(marker)}, tmp_path / "evil.pt")
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Exploit(marker)))
    torch.save(AttributeCNN(widths=TINY).state_dict(), tmp_path / "plain.pt")
    for name in ["evil.pt", "evil.pkl", "plain.pt"]:
        with pytest.raises(InputError, match="not a privface weight file") as error:
            load_attribute_cnn(tmp_path / name)
        assert name in str(error.value)
    assert not marker.exists()
    # privface's own SFace attribute model is an .npz too, but of another format.
    from privface.attributes.model import default_model_path

    with pytest.raises(InputError, match="unknown weight format 'privface.attribute-model/1'"):
        load_attribute_cnn(default_model_path())
    AttributeCNN(widths=TINY).save(tmp_path / "cnn.npz")
    with pytest.raises(InputError, match="unknown weight format 'privface.attribute-cnn/1'"):
        load_face_embedding_net(tmp_path / "cnn.npz")
    with pytest.raises(InputError, match="not found"):
        load_attribute_cnn(tmp_path / "missing.npz")


def test_loading_refuses_weights_of_another_shape(tmp_path):
    AttributeCNN(widths=TINY).save(tmp_path / "a.npz")
    with np.load(tmp_path / "a.npz") as data:
        arrays = dict(data)
    arrays["state.head.weight"] = np.zeros((40, 3), np.float16)
    np.savez(tmp_path / "b.npz", **arrays)
    with pytest.raises(InputError, match="head.weight has shape"):
        load_attribute_cnn(tmp_path / "b.npz")


# -- training --------------------------------------------------------------------------------

def _two_kinds_of_face(n: int, size) -> tuple[torch.Tensor, np.ndarray]:
    """Dark and bright noisy faces: something a network can learn in a few steps."""
    generator = torch.Generator().manual_seed(0)
    kind = np.arange(n) % 2
    base = torch.from_numpy(np.where(kind == 1, 190, 60)).view(n, 1, 1, 1)
    noise = torch.randint(-40, 40, (n, 3, *size), generator=generator)
    return (base + noise).clamp(0, 255).to(torch.uint8), kind


def test_attribute_training_lowers_the_loss():
    faces, kind = _two_kinds_of_face(16, AttributeCNN.input_size)
    labels = np.where(kind[:, None] == 1, 1, -1).repeat(40, axis=1)
    targets = torch.from_numpy((labels > 0).astype(np.float32))

    def loss(model):
        with torch.no_grad():
            return float(torch.nn.functional.binary_cross_entropy_with_logits(
                model.eval()(faces.float() / 255.0), targets))

    widths = (8, 16, 16, 16)
    torch.manual_seed(5)
    untrained = AttributeCNN(widths=widths)
    model = train_attribute_cnn(faces, labels, epochs=15, batch_size=8, lr=0.2, widths=widths,
                                seed=5)
    assert loss(model) < 0.6 * loss(untrained)
    assert (model.predict(faces.float() / 255.0) == labels).mean() > 0.9


def test_embedding_training_lowers_the_loss_and_separates_people():
    faces, kind = _two_kinds_of_face(16, FaceEmbeddingNet.input_size)
    net = train_face_embedding(faces, kind, epochs=6, batch_size=8, lr=0.05, widths=TINY,
                               dimension=8, seed=5)
    losses = net.metadata["loss_per_epoch"]
    assert losses[-1] < losses[0]
    metrics = verification_metrics(net.embed_faces(faces.float() / 255.0), kind, fars=[0.1])
    assert metrics["roc_auc"] > 0.9


def test_training_refuses_bad_input():
    with pytest.raises(InputError, match=r"labels must have shape \(4, 40\)"):
        train_attribute_cnn(torch.zeros(4, 3, 78, 64, dtype=torch.uint8), np.ones((4, 39)))
    with pytest.raises(InputError, match="uint8"):
        train_attribute_cnn(torch.zeros(4, 3, 78, 64), np.ones((4, 40)))
    with pytest.raises(InputError, match="at least two people"):
        train_face_embedding(torch.zeros(4, 3, 64, 64, dtype=torch.uint8), [1, 1, 1, 1])
    with pytest.raises(InputError, match="can hold out between 0 and 1"):
        split_people(pd.Series([1, 2, 3]), 2)


def test_augment_keeps_the_face_and_mirrors_it():
    faces = torch.zeros(64, 3, 20, 16, dtype=torch.uint8)
    faces[..., :8] = 255  # left half white
    out = augment(faces, torch.Generator().manual_seed(0), scale=0, shift=0, rotation=0,
                  colour=0)
    left = out[..., :8].mean(dim=(1, 2, 3))
    # About half the faces are mirrored (white on the right), the others unchanged.
    assert 10 < int((left < 0.5).sum()) < 54
    assert torch.all((left > 0.99) | (left < 0.01))


def test_cosface_penalises_only_the_true_class():
    e = torch.nn.functional.normalize(torch.randn(5, 8), dim=1)
    w = torch.randn(3, 8)
    target = torch.tensor([0, 1, 2, 0, 1])
    plain = cosface_logits(e, w, target, scale=10, margin=0.0)
    penalised = cosface_logits(e, w, target, scale=10, margin=0.3)
    diff = plain - penalised
    assert torch.allclose(diff[torch.arange(5), target], torch.full((5,), 3.0), atol=1e-5)
    assert diff.abs().sum() == pytest.approx(15.0, abs=1e-4)


def test_verification_metrics_match_a_direct_count():
    rng = np.random.default_rng(2)
    people = np.repeat(np.arange(6), 5)
    e = rng.normal(size=(6, 16))[people] + rng.normal(scale=1.2, size=(30, 16))
    m = verification_metrics(e, people, fars=[0.1])
    from privface.attributes.recognizers import pairwise_distances

    d = pairwise_distances(e, e)
    i, j = np.triu_indices(30, 1)
    genuine, impostor = d[i, j][people[i] == people[j]], d[i, j][people[i] != people[j]]
    auc = np.mean(genuine[:, None] < impostor[None, :]) + \
        0.5 * np.mean(genuine[:, None] == impostor[None, :])
    assert m["roc_auc"] == pytest.approx(auc)
    assert m["genuine_pairs"] == len(genuine) == 6 * 10
    assert np.mean(impostor <= m["thresholds"]["0.1"]) <= 0.1
    assert m["tar"]["0.1"] == pytest.approx(np.mean(genuine <= m["thresholds"]["0.1"]))


# -- the commands ----------------------------------------------------------------------------

def _folder_of_faces(tmp_path, n: int):
    folder = tmp_path / "faces"
    folder.mkdir()
    faces, kind = _two_kinds_of_face(n, (109, 89))
    for i in range(n):
        Image.fromarray(faces[i].permute(1, 2, 0).numpy()).save(folder / f"{i + 1:06d}.png")
    return folder, kind


def test_train_attributes_cnn_command(tmp_path):
    folder, kind = _folder_of_faces(tmp_path, 12)
    labels = tmp_path / "attrs.txt"
    rows = [f"{i + 1:06d}.png " + " ".join(["1" if kind[i] else "-1"] * 40) for i in range(12)]
    labels.write_text(f"12\n{' '.join(CELEBA_ATTRIBUTES)}\n" + "\n".join(rows) + "\n")
    out, report = tmp_path / "cnn.npz", tmp_path / "report.json"
    result = runner.invoke(app, ["train", "attributes-cnn", "--images", str(folder), "--labels",
                                 str(labels), "--train-count", "8", "--epochs", "2",
                                 "--batch-size", "4", "--seed", "1", "--threads", "1",
                                 "--out", str(out), "--report", str(report)])
    assert result.exit_code == 0, result.output
    summary = json.loads(report.read_text())
    assert summary["seed"] == 1
    assert summary["test_accuracy"]["images"] == "000009.png .. 000012.png (4 images)"
    assert load_attribute_cnn(out).metadata["trained_on"] == "000001.png .. 000008.png"
    bad = runner.invoke(app, ["train", "attributes-cnn", "--images", str(folder), "--labels",
                              str(tmp_path / "missing.txt")])
    assert bad.exit_code == 2 and "missing.txt" in bad.output


def test_train_face_embedding_command(tmp_path):
    folder, kind = _folder_of_faces(tmp_path, 12)
    extra = tmp_path / "extra"
    extra.mkdir()
    for i in range(13, 19):
        (extra / f"{i:06d}.png").write_bytes((folder / "000001.png").read_bytes())
    (extra / "000001.png").write_bytes((folder / "000002.png").read_bytes())
    ids = tmp_path / "ids.txt"
    # Four people: 1 and 2 train, 3 and 4 are held out. The extra folder adds two people with
    # two photos each (5, 6), one with a single photo (7), a photo of a held-out person (3) and
    # another copy of 000001.png: only people 5 and 6 join the training.
    others = {13: 5, 14: 5, 15: 6, 16: 6, 17: 7, 18: 3}
    ids.write_text("".join(f"{i + 1:06d}.png {1 + kind[i] + 2 * (i >= 8)}\n" for i in range(12))
                   + "".join(f"{i:06d}.png {person}\n" for i, person in others.items()))
    out = tmp_path / "emb.npz"
    result = runner.invoke(app, ["train", "face-embedding", "--images", str(folder),
                                 "--identities", str(ids), "--holdout", "2", "--epochs", "1",
                                 "--batch-size", "4", "--seed", "1", "--out", str(out),
                                 "--extra-images", str(extra)])
    assert result.exit_code == 0, result.output
    net = load_face_embedding_net(out)
    assert net.metadata["held_out"]["people"] == 2 and net.metadata["train_people"] == 4
    assert net.metadata["train_images"] == 8 + 4
    assert set(net.thresholds) == {1e-2, 1e-3}
    bad = runner.invoke(app, ["train", "face-embedding", "--images", str(folder),
                              "--identities", str(ids), "--holdout", "3"])
    assert bad.exit_code == 2 and "hold out" in bad.output


# -- real CelebA faces -----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.realdata
def test_attribute_cnn_gives_its_documented_held_out_accuracy(celeba_dir, attribute_cnn):
    from privface.attributes.training import accuracy_table

    labels = read_celeba_attributes(celeba_dir / "list_attr_celeba_first20k.txt")
    names = [f"{i:06d}.jpg" for i in range(8001, 10001)]
    kept, faces, skipped = read_faces(celeba_dir / "img_align_celeba_89x109", names,
                                      AttributeCNN.input_size)
    assert skipped.empty
    predicted = attribute_cnn.predict(faces.float() / 255.0)
    table = accuracy_table(predicted, labels.loc[kept],
                           labels.loc[[f"{i:06d}.jpg" for i in range(1, 8001)]])
    record = attribute_cnn.metadata["test_accuracy"]
    assert table["accuracy"].mean() == pytest.approx(record["mean"], abs=2e-3)
    assert table["majority_baseline"].mean() == pytest.approx(record["majority_baseline_mean"])
    for attribute in ["Male", "Smiling", "Eyeglasses", "Wearing_Hat"]:
        assert table.loc[attribute, "accuracy"] > table.loc[attribute, "majority_baseline"]


@pytest.fixture(scope="module")
def held_out_people(celeba_dir, embedding_net):
    """Face squares and identities of the 40 people the shipped network never saw."""
    folder = celeba_dir / "img_align_celeba_200ids"
    identities = read_celeba_identities(celeba_dir / "identity_CelebA.txt")
    people = identities[identities.index.isin([p.name for p in folder.iterdir()])].sort_index()
    _, test = split_people(people, 40)
    chosen = people[people.isin(test)]
    kept, faces, _ = read_faces(folder, list(chosen.index), FaceEmbeddingNet.input_size,
                                box=(25 / 178, 58 / 218, 153 / 178, 186 / 218))
    return faces.float() / 255.0, chosen.loc[kept].to_numpy()


@pytest.mark.slow
@pytest.mark.realdata
def test_embedding_net_gives_its_documented_verification(held_out_people, embedding_net):
    faces, people = held_out_people
    metrics = verification_metrics(embedding_net.embed_faces(faces), people)
    held_out = embedding_net.metadata["held_out"]
    assert metrics["roc_auc"] == pytest.approx(held_out["roc_auc"], abs=1e-4)
    assert metrics["genuine_pairs"] == held_out["genuine_pairs"]
    for far in ("0.01", "0.001"):
        assert metrics["tar"][far] == pytest.approx(held_out["tar"][far], abs=2e-3)


@pytest.mark.slow
@pytest.mark.realdata
def test_gallery_classifier_picks_the_right_person_on_real_photos(held_out_people,
                                                                  embedding_net):
    faces, people = held_out_people
    # Ten photos of each held-out person form the gallery; the others are the probes.
    rank = pd.Series(people).groupby(people).cumcount().to_numpy()
    gallery, probes = rank < 10, rank >= 10
    clf = GalleryClassifier(embedding_net, embedding_net.embed_faces(faces[gallery]),
                            people[gallery])
    with torch.no_grad():
        predicted = np.asarray(clf.classes)[clf(faces[probes]).argmax(1).numpy()]
    top1 = float(np.mean(predicted == people[probes]))
    assert top1 == pytest.approx(0.629, abs=0.005)  # the model card's number; chance is 1 in 40
