"""Identity embeddings: distances, threshold calibration and real verification accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial.distance import cdist

from privface.attributes.recognizers import (DlibRecognizer, SFaceRecognizer, calibrate_threshold,
                                             load_recognizer, pairwise_distances)

# --- calibrate_threshold ----------------------------------------------------------------------

# Few distinct values, so that ties are common; or any distance.
tied = st.sampled_from([0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 1.0, 1.5])
distance_lists = st.lists(st.one_of(tied, st.floats(0.0, 2.0)), min_size=1, max_size=300)
rates = st.one_of(st.sampled_from([1e-3, 1e-2, 0.05, 0.1, 0.25, 0.29, 0.5]),
                  st.floats(1e-4, 0.999))


def allowed_pairs(far: float, n: int) -> int:
    """Most impostor pairs a threshold may accept: floor(far * n), robust to float error."""
    return math.floor(far * n + 1e-9)


@given(distances=distance_lists, far=rates)
def test_threshold_accepts_at_most_far_and_is_the_largest_such(distances, far):
    d = np.array(distances)
    threshold = calibrate_threshold(d, far)
    accepted = int((d <= threshold).sum())
    cap = allowed_pairs(far, d.size)
    assert accepted <= cap
    assert accepted / d.size <= far + 1e-9
    # The largest: the next impostor distance above the threshold would accept too many pairs.
    above = d[d > threshold]
    if above.size:
        assert int((d <= above.min()).sum()) > cap
    # The threshold is an impostor distance, or just below the smallest when none may pass.
    if accepted:
        assert threshold in d
    else:
        assert threshold == np.nextafter(d.min(), -np.inf)


@given(distances=distance_lists, far=rates, seed=st.integers(0, 2**32 - 1))
def test_threshold_ignores_order_and_shape(distances, far, seed):
    d = np.array(distances)
    shuffled = np.random.default_rng(seed).permutation(d)
    assert calibrate_threshold(shuffled, far) == calibrate_threshold(d, far)
    if d.size % 2 == 0:
        assert calibrate_threshold(d.reshape(2, -1), far) == calibrate_threshold(d, far)


def test_threshold_ties_at_the_cut_step_below():
    # far 0.5 of 4 pairs allows 2; accepting 0.5 would let 3 through, so the cut falls to 0.2.
    assert calibrate_threshold(np.array([0.2, 0.5, 0.5, 0.9]), 0.5) == 0.2
    # Every candidate tied: nothing may pass, the threshold sits just below the tied value.
    t = calibrate_threshold(np.array([0.5, 0.5, 0.5, 0.9]), 0.5)
    assert t < 0.5 and t == np.nextafter(0.5, -np.inf)
    # No tie: exactly floor(far * n) pairs pass.
    assert calibrate_threshold(np.array([0.9, 0.5, 0.7, 0.8]), 0.5) == 0.7


def test_threshold_rate_boundaries():
    d = np.linspace(0.0, 1.0, 1000)
    assert calibrate_threshold(d, 1e-3) == d[0]  # exactly one of 1,000 pairs
    assert (d <= calibrate_threshold(d, 1e-2)).sum() == 10
    # 0.29 * 100 is 28.999999999999996 in floating point: still 29 pairs.
    d = np.arange(100) / 100
    assert (d <= calibrate_threshold(d, 0.29)).sum() == 29
    # Too few pairs for the rate: nothing may pass.
    assert calibrate_threshold(np.array([0.3, 0.6]), 1e-3) < 0.3


def test_threshold_refuses_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        calibrate_threshold(np.array([]), 0.1)
    for far in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="far"):
            calibrate_threshold(np.array([0.1, 0.2]), far)


# --- pairwise_distances -----------------------------------------------------------------------


def matrices(rows: st.SearchStrategy[int], columns: int):
    return hnp.arrays(np.float64, st.tuples(rows, st.just(columns)),
                      elements=st.floats(-100, 100, allow_nan=False))


@st.composite
def pairs_of_matrices(draw):
    k = draw(st.integers(1, 16))
    return draw(matrices(st.integers(1, 8), k)), draw(matrices(st.integers(1, 8), k))


@given(pairs_of_matrices())
def test_euclidean_matches_scipy(pair):
    a, b = pair
    ours = pairwise_distances(a, b, "euclidean")
    scale = max(1.0, np.abs(a).max(), np.abs(b).max())
    # The expansion |a|^2 + |b|^2 - 2ab loses ~sqrt(eps) * scale near zero distance.
    assert ours.shape == (len(a), len(b))
    assert np.allclose(ours, cdist(a, b, "euclidean"), rtol=1e-9, atol=1e-6 * scale)


@given(pairs_of_matrices())
def test_cosine_matches_scipy(pair):
    a, b = pair
    # Cosine is undefined for zero vectors: keep rows of some length.
    a = a[np.linalg.norm(a, axis=1) > 1e-3]
    b = b[np.linalg.norm(b, axis=1) > 1e-3]
    if not (len(a) and len(b)):
        return
    ours = pairwise_distances(a, b, "cosine")
    assert np.allclose(ours, np.clip(cdist(a, b, "cosine"), 0, 2), atol=1e-9)
    assert ((ours >= 0) & (ours <= 2)).all()


def test_distances_of_a_set_to_itself():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20, 128))
    for metric in ("cosine", "euclidean"):
        d = pairwise_distances(a, a, metric)
        assert np.allclose(d, d.T) and np.allclose(np.diag(d), 0, atol=1e-6)
    # Cosine ignores length; Euclidean does not.
    assert np.allclose(pairwise_distances(a, 3 * a, "cosine").diagonal(), 0, atol=1e-12)


def test_zero_vectors_and_bad_metric():
    d = pairwise_distances(np.zeros((1, 4)), np.ones((2, 4)), "cosine")
    assert np.isfinite(d).all()
    assert pairwise_distances([1.0, 0.0], [0.0, 1.0]).shape == (1, 1)  # 1-D rows
    with pytest.raises(ValueError, match="metric"):
        pairwise_distances(np.ones((1, 2)), np.ones((1, 2)), "manhattan")


def test_load_recognizer_by_name():
    with pytest.raises(ValueError, match="sface"):
        load_recognizer("facenet")


# --- real faces -------------------------------------------------------------------------------

N_IDENTITIES, N_PHOTOS = 25, 4  # 100 photos: 150 genuine and 4,800 impostor pairs


@pytest.fixture(scope="module")
def recognizers():
    return {"sface": load_recognizer("sface"), "dlib": load_recognizer("dlib")}


@pytest.fixture(scope="module")
def subset(celeba_dir):
    """The first photos of the first identities of the 200-identity set, detected and landmarked.

    Returns the identity labels and one ``(image, face, landmarks68)`` per photo.
    """
    from privface.attributes.detection import FaceDetector
    from privface.attributes.images import list_images, load_image
    from privface.attributes.landmarks import LandmarkPredictor
    from privface.privmetrics.readers import read_celeba_identities

    identities = read_celeba_identities(celeba_dir / "identity_CelebA.txt")
    names = [p.name for p in list_images(celeba_dir / "img_align_celeba_200ids")]
    labels = identities.reindex(names)
    chosen = np.sort(labels.unique())[:N_IDENTITIES]
    picked = labels[labels.isin(chosen)].groupby(labels[labels.isin(chosen)]).head(N_PHOTOS)
    assert len(picked) == N_IDENTITIES * N_PHOTOS
    detector, predictor = FaceDetector(), LandmarkPredictor()
    photos = []
    for name in picked.index:
        image = load_image(celeba_dir / "img_align_celeba_200ids" / name)
        faces = detector.detect(image)
        assert faces, name
        photos.append((image, faces[0], predictor.predict(image, faces[0])))
    return picked.to_numpy(), photos


@pytest.fixture(scope="module")
def embeddings(subset, recognizers):
    _, photos = subset
    return {name: rec.embed_chips([rec.chip(*photo) for photo in photos])
            for name, rec in recognizers.items()}


@pytest.mark.realdata
def test_verification_auc_is_high(subset, recognizers, embeddings):
    from sklearn.metrics import roc_auc_score

    labels, _ = subset
    upper = np.triu_indices(len(labels), k=1)
    genuine = (labels[:, None] == labels[None, :])[upper]
    aucs = {}
    for name, rec in recognizers.items():
        distances = rec.distances(embeddings[name], embeddings[name])[upper]
        aucs[name] = roc_auc_score(genuine, -distances)
    print(f"\nverification ROC AUC on {N_IDENTITIES} identities x {N_PHOTOS} photos "
          f"({genuine.sum()} genuine, {(~genuine).sum()} impostor pairs): "
          + ", ".join(f"{k} {v:.4f}" for k, v in aucs.items()))
    assert max(aucs.values()) >= 0.97, aucs
    assert min(aucs.values()) >= 0.9, aucs


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["sface", "dlib"])
def test_same_photo_is_at_distance_zero(subset, recognizers, embeddings, name):
    import cv2

    rec = recognizers[name]
    image, face, points = subset[1][0]
    again = rec.embed(image, [face], [points])
    assert again.shape == (1, 128)
    assert rec.distances(again, embeddings[name][:1])[0, 0] < 1e-6
    # Re-encoded as a JPEG the photo stays far closer to itself than to another photo of the
    # same person.
    ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    recoded = np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])
    near = rec.distances(rec.embed(recoded, [face], [points]), again)[0, 0]
    labels = subset[0]
    same_person = rec.distances(embeddings[name][1:][labels[1:] == labels[0]], again)
    assert near < 0.5 * same_person.min(), (near, same_person.ravel())


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["sface", "dlib"])
def test_batch_equals_one_by_one(subset, recognizers, embeddings, name):
    rec = recognizers[name]
    chips = [rec.chip(*photo) for photo in subset[1][:5]]
    one_by_one = np.vstack([rec.embed_chips([chip]) for chip in chips])
    assert np.allclose(rec.embed_chips(chips), one_by_one, atol=1e-5)
    assert np.allclose(embeddings[name][:5], one_by_one, atol=1e-5)
    assert rec.embed_chips([]).shape == (0, 128)


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["sface", "dlib"])
def test_two_faces_of_one_photo(subset, recognizers, name):
    # embed() on a photo with two faces equals embedding each face on its own.
    from privface.attributes.detection import FaceDetector
    from privface.attributes.landmarks import LandmarkPredictor

    rec = recognizers[name]
    (a, *_), (b, *_) = subset[1][0], subset[1][N_PHOTOS]  # two different people
    canvas = np.full((238, 400, 3), 60, np.uint8)
    canvas[10:228, 10:188] = a
    canvas[10:228, 210:388] = b
    faces = FaceDetector().detect(canvas)
    assert len(faces) == 2
    predictor = LandmarkPredictor()
    points = [predictor.predict(canvas, f) for f in faces]
    both = rec.embed(canvas, faces, points)
    each = np.vstack([rec.embed(canvas, [f], [p]) for f, p in zip(faces, points)])
    assert both.shape == (2, 128) and np.allclose(both, each, atol=1e-5)


@pytest.mark.realdata
def test_sface_matches_opencv_reference(subset, recognizers):
    # OpenCV's FaceRecognizerSF.feature is SFace's reference preprocessing (BGR crop, swapRB).
    import cv2

    from privface.attributes.detection import SFACE_FILE, bundled_model

    reference = cv2.FaceRecognizerSF.create(str(bundled_model(SFACE_FILE)), "")
    rec: SFaceRecognizer = recognizers["sface"]
    for image, face, points in subset[1][:3]:
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        expected = reference.feature(reference.alignCrop(bgr, face.as_yunet_row())).ravel()
        assert np.allclose(rec.embed(image, [face], [points])[0], expected, atol=1e-5)


@pytest.mark.realdata
def test_dlib_matches_dlib_reference(subset, recognizers):
    # dlib's own compute_face_descriptor(image, shape) crops the same 150 x 150 chip.
    import dlib

    from privface.attributes.landmarks import LandmarkPredictor, dlib_model

    model = dlib.face_recognition_model_v1(dlib_model("resnet"))
    predictor = LandmarkPredictor()
    rec: DlibRecognizer = recognizers["dlib"]
    for image, face, points in subset[1][:2]:
        shape = predictor.full_object_detection(image, face)
        expected = np.asarray(model.compute_face_descriptor(image, shape))
        assert np.allclose(rec.embed(image, [face], [points])[0], expected, atol=1e-5)


@pytest.mark.parametrize("recognizer", [SFaceRecognizer, DlibRecognizer])
def test_recognizers_travel_to_worker_processes(recognizer):
    # Worker processes receive pickled copies; the copy must embed exactly as the original.
    import pickle

    original = recognizer()
    chip = np.random.default_rng(0).integers(0, 256, (150, 150, 3), dtype=np.uint8)
    copy = pickle.loads(pickle.dumps(original))
    np.testing.assert_array_equal(copy.embed_chips([chip]), original.embed_chips([chip]))
