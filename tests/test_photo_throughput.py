"""Issue 18, the photo run's throughput: no model loaded where it is not used, chunks that keep
every worker busy. (Warping in bounded memory: tests/test_ksame.py.)"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 500), st.integers(1, 80), st.integers(1, 8))
def test_photo_chunks_keep_order_and_leave_no_worker_one_long_chunk(n, batch_size, workers):
    from privface.attributes.analysis import photo_chunks

    chunks = photo_chunks(range(n), batch_size, workers)
    assert [i for chunk in chunks for i in chunk] == list(range(n))
    assert all(0 < len(chunk) <= batch_size for chunk in chunks)
    if workers > 1:
        # No chunk holds more than a quarter of one worker's share (so 80 photos, 64 per
        # batch and 2 workers no longer leave one worker 64 of them).
        assert all(len(chunk) <= -(-n // (4 * workers)) for chunk in chunks)
    else:
        assert len(chunks) == -(-n // batch_size)


def _count_loads(monkeypatch) -> dict:
    """Count the loads of dlib's 68-point predictor and of SFace (OpenCV's aligner and the
    network, which loads once per process: the count starts from none loaded)."""
    from functools import cache

    import cv2
    import dlib

    from privface.attributes import sface_network

    loads = {"dlib": 0, "sface": 0}
    predictor, aligner = dlib.shape_predictor, cv2.FaceRecognizerSF.create

    def counted(key, load):
        def wrapper(*args, **kwargs):
            loads[key] += 1
            return load(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(dlib, "shape_predictor", counted("dlib", predictor))
    monkeypatch.setattr(cv2.FaceRecognizerSF, "create", counted("sface", aligner))
    monkeypatch.setattr(sface_network, "_session",
                        cache(counted("sface", sface_network._session.__wrapped__)))
    return loads


def test_the_analyzer_loads_landmarks_and_recognizer_on_first_use(monkeypatch):
    # With workers the main process only hands out photos: it loaded dlib's predictor and
    # SFace twice for nothing (about 2 s before the workers even started).
    import pickle

    from privface.attributes.analysis import FaceAnalyzer
    from privface.attributes.recognizers import SFaceRecognizer

    loads = _count_loads(monkeypatch)
    analyzer = FaceAnalyzer(recognizer=SFaceRecognizer())
    copy = pickle.loads(pickle.dumps(analyzer))  # what a worker gets
    assert loads == {"dlib": 0, "sface": 0}
    assert copy.faces(np.zeros((120, 100, 3), np.uint8)) == []  # no face: no landmarks
    assert copy.recognizer.embed_chips([np.zeros((112, 112, 3), np.uint8)]).shape == (1, 128)
    assert loads == {"dlib": 0, "sface": 1}  # the network, once (chips need no aligner)
    copy.recognizer.embed_chips([np.zeros((112, 112, 3), np.uint8)])
    from privface.attributes.detection import DetectedFace

    face = DetectedFace((20.0, 20.0, 60.0, 60.0), 0.9, np.zeros((5, 2)))
    assert copy.landmarks.predict(np.zeros((100, 100, 3), np.uint8), face).shape == (68, 2)
    copy.landmarks.predict(np.zeros((100, 100, 3), np.uint8), face)
    assert loads == {"dlib": 1, "sface": 1}


def test_a_writer_loads_its_checks_networks_when_asked(monkeypatch):
    # A writing worker loads them while the main process still makes the faces (k-Same).
    from privface.attributes.model import AttributeModel, default_model_path
    from privface.pipeline.writing import PhotoWriter

    loads = _count_loads(monkeypatch)
    model = AttributeModel.load(default_model_path())  # its own (the default is shared)
    writer = PhotoWriter(feather_px=4.0, model=model, columns=[0])
    assert loads["sface"] == 0
    writer.load_models()
    # The leakage check's aligner, and one network for the check and the model's extractor.
    assert loads["sface"] == 2
    PhotoWriter(feather_px=4.0).load_models()  # no check: nothing to load
    assert loads["sface"] == 2


def test_features_are_pooled_face_by_face_with_the_same_values(monkeypatch):
    # A batch of 64 faces held 38 MB of feature maps, fresh memory for every batch.
    from privface.attributes.features import SFaceFeatures

    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (218, 178, 3), dtype=np.uint8) for _ in range(3)]
    extractor = SFaceFeatures()
    alone = np.vstack([extractor.transform([crop]) for crop in crops])
    sizes = []
    forward = extractor._forward

    def counted(images):
        sizes.append(len(images))
        return forward(images)

    monkeypatch.setattr(extractor, "_forward", counted)
    np.testing.assert_array_equal(extractor.transform(crops), alone)
    assert sizes == [1] * 6  # two views of three faces, one face at a time
