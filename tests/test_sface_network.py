"""SFace through onnxruntime against SFace through OpenCV's DNN module, the runtime it replaced.

The tolerance stated in attributes/sface_network.py: identity embeddings at cosine >= 0.99999 and
the attribute model's features (layer means, embedding) within 1e-4 of OpenCV's, on real faces
and on noise.
"""

from __future__ import annotations

import numpy as np
import pytest

from privface.attributes.sface_network import EMBEDDING, INNER_LAYERS, sface_outputs

N_FACES = 24


def _opencv_outputs(images: list[np.ndarray]) -> dict[str, np.ndarray]:
    import cv2

    from privface.attributes.detection import SFACE_FILE, bundled_model

    net = cv2.dnn.readNetFromONNX(str(bundled_model(SFACE_FILE)))
    net.enableFusion(False)  # inner layers are overwritten in place when fused
    names = [EMBEDDING] + [f"onnx_node!{layer}" for layer in INNER_LAYERS]
    out: dict[str, list] = {name: [] for name in [EMBEDDING, *INNER_LAYERS]}
    for image in images:
        net.setInput(cv2.dnn.blobFromImage(image, 1.0, (112, 112), (0, 0, 0), swapRB=False))
        for name, value in zip(out, net.forward(names)):
            out[name].append(value.copy())
    return {name: np.concatenate(values) for name, values in out.items()}


def _assert_agree(images: list[np.ndarray]) -> None:
    expected = _opencv_outputs(images)
    names = [EMBEDDING, *INNER_LAYERS]
    got = {name: np.concatenate(values) for name, values in
           zip(names, zip(*[sface_outputs(image, names) for image in images]))}
    a, b = got[EMBEDDING], expected[EMBEDDING]
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() >= 0.99999, cosine.min()
    for layer in INNER_LAYERS:
        assert got[layer].shape == expected[layer].shape
        means = np.abs(got[layer].mean(axis=(2, 3)) - expected[layer].mean(axis=(2, 3)))
        assert means.max() <= 1e-4, (layer, means.max())


def test_agrees_with_opencv_on_noise():
    rng = np.random.default_rng(0)
    _assert_agree([rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(4)])


@pytest.mark.realdata
def test_agrees_with_opencv_on_real_faces(celeba_dir):
    from privface.attributes.detection import FaceDetector
    from privface.attributes.images import list_images, load_image
    from privface.attributes.recognizers import SFaceRecognizer

    detector, recognizer = FaceDetector(), SFaceRecognizer()
    chips = []
    for path in list_images(celeba_dir / "img_align_celeba_200ids")[:N_FACES]:
        image = load_image(path)
        faces = detector.detect(image)
        assert faces, path
        chips.append(recognizer.chip(image, faces[0], None))
    _assert_agree(chips)


def test_one_face_gives_the_same_outputs_whatever_came_before():
    # A face's outputs must not depend on which faces shared its chunk or worker.
    rng = np.random.default_rng(1)
    faces = [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(3)]
    first = sface_outputs(faces[0], [EMBEDDING, "conv_10_relu"])
    sface_outputs(faces[1])
    sface_outputs(faces[2], INNER_LAYERS)
    again = sface_outputs(faces[0], [EMBEDDING, "conv_10_relu"])
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_bad_input_is_refused_with_what_was_expected():
    with pytest.raises(ValueError, match=r"112 x 112 RGB crop, got shape \(150, 150, 3\)"):
        sface_outputs(np.zeros((150, 150, 3), np.uint8))
    with pytest.raises(ValueError, match="no output \\['conv_99'\\]"):
        sface_outputs(np.zeros((112, 112, 3), np.uint8), ["conv_99"])
