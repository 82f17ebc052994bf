"""Attribute prediction (stage I): deep face features, then one linear classifier per attribute.

:class:`AttributeModel` follows AnonymousNet's recipe (CNN features, one classifier per CelebA
attribute) with the parts that measured best here (see ``attributes/models/MODEL_CARD.md``):
:class:`~privface.attributes.features.SFaceFeatures` and, per attribute, a ridge classifier on
standardised features whose regularisation is chosen by generalised cross-validation on the
training faces alone. Ridge beat logistic regression and random forests on these features.

A fitted model is saved as plain arrays in a ``.npz`` file and loaded with ``allow_pickle=False``:
a model file from elsewhere can never run code. The package ships one default model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np

from privface.base.errors import InputError
from privface.base.files import atomic_write

from .features import DEFAULT_BLOCKS, SFaceFeatures

#: CelebA's 40 binary attributes, in the order of its attribute file.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup",
    "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard",
    "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns",
    "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)

DEFAULT_MODEL = "celeba_attributes_v1.npz"
_FORMAT = "privface.attribute-model/1"


class AttributeModel:
    """Predicts binary facial attributes from CelebA-aligned crops.

    Parameters
    ----------
    alphas : sequence of float
        Candidate ridge penalties, per feature; each attribute picks its own by cross-validation.
    views, blocks : sequence of str
        Feature views and blocks (see :class:`~privface.attributes.features.SFaceFeatures`).
    flip : bool
        Also train on the mirror image of every face (attributes are left-right symmetric).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> features = rng.normal(size=(200, 5))
    >>> labels = np.where(features[:, :2] > 0, 1, -1)
    >>> model = AttributeModel().fit_features(features, labels, ["A", "B"])
    >>> bool((model.predict_features(features) == labels).mean() > 0.95)
    True
    """

    def __init__(self, alphas: Sequence[float] = (0.1, 0.3, 1.0, 3.0, 10.0),
                 views: Sequence[str] = ("full", "tight"),
                 blocks: Sequence[str] | None = None, flip: bool = True) -> None:
        if not len(alphas) or min(alphas) <= 0:
            raise ValueError(f"alphas must be positive, got {list(alphas)}")
        self.alphas = tuple(float(a) for a in alphas)
        self.views = tuple(views)
        self.blocks = tuple(blocks) if blocks is not None else DEFAULT_BLOCKS
        self.flip = flip
        self.metadata: dict = {}
        self._extractor = None

    # The feature extractor holds an OpenCV network, which does not pickle; it is rebuilt lazily.
    def __getstate__(self) -> dict:
        return {**self.__dict__, "_extractor": None}

    # -- features ---------------------------------------------------------------------------
    @property
    def extractor(self):
        """The feature extractor, built on first use."""
        if self._extractor is None:
            self._extractor = SFaceFeatures(self.views, self.blocks)
        return self._extractor

    def features(self, crops: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Feature vectors of CelebA-aligned RGB crops."""
        return self.extractor.transform(crops, batch_size=batch_size)

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, crops: Sequence[np.ndarray], labels, attributes: Sequence[str] | None = None
            ) -> AttributeModel:
        """Fit on CelebA-aligned RGB crops and their labels (1 / -1 or 1 / 0, one column each)."""
        names = _names(labels, attributes)
        features = self.features(crops)
        labels = np.asarray(labels)
        if self.flip:
            mirrored = self.features([np.ascontiguousarray(c[:, ::-1]) for c in crops])
            features = np.vstack([features, mirrored])
            labels = np.vstack([labels, labels])
        return self.fit_features(features, labels, names)

    def fit_features(self, features: np.ndarray, labels, attributes: Sequence[str] | None = None
                     ) -> AttributeModel:
        """Fit the per-attribute classifiers on precomputed features.

        The ridge penalty is ``alpha * n_features`` with ``alpha`` chosen per attribute among
        :attr:`alphas` by efficient leave-one-out cross-validation (scikit-learn's ``RidgeCV``).
        """
        from sklearn.linear_model import RidgeCV
        from sklearn.preprocessing import StandardScaler

        names = _names(labels, attributes)
        y = np.where(np.asarray(labels) > 0, 1.0, -1.0)
        features = np.asarray(features, dtype=np.float64)
        if y.ndim != 2 or y.shape[1] != len(names) or y.shape[0] != len(features):
            raise ValueError(f"labels must be ({len(features)}, {len(names)}), got {y.shape}")
        scaler = StandardScaler().fit(features)
        x = scaler.transform(features)
        dimension = x.shape[1]
        heads = RidgeCV(alphas=[a * dimension for a in self.alphas],
                        alpha_per_target=True).fit(x, y)
        coef = np.atleast_2d(heads.coef_)
        # Fold the standardisation into the weights: one matrix product at prediction time.
        self.attributes = tuple(names)
        self.weights = (coef / scaler.scale_).T.astype(np.float32)
        self.bias = (np.atleast_1d(heads.intercept_) - (coef / scaler.scale_) @ scaler.mean_
                     ).astype(np.float32)
        self.metadata["alpha_per_attribute"] = dict(zip(
            names, (np.atleast_1d(heads.alpha_) / dimension).round(6).tolist()))
        return self

    # -- prediction -------------------------------------------------------------------------
    def decision_features(self, features: np.ndarray) -> np.ndarray:
        """Signed scores per attribute from precomputed features, shape ``(n, n_attributes)``."""
        self._check_fitted()
        return np.asarray(features, np.float32) @ self.weights + self.bias

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """1 / -1 per attribute from precomputed features (int8)."""
        return np.where(self.decision_features(features) > 0, 1, -1).astype(np.int8)

    def decision_function(self, crops: Sequence[np.ndarray], batch_size: int = 64
                          ) -> np.ndarray:
        """Signed scores per attribute (positive: present), shape ``(n, n_attributes)``."""
        return self.decision_features(self.features(crops, batch_size))

    def probability(self, scores: np.ndarray) -> np.ndarray:
        """The probability that each attribute is present, from :meth:`decision_function`'s
        scores (same shape).

        With a calibration (``metadata["calibration"]``: per attribute ``[a, b]`` of a Platt
        fit ``1 / (1 + exp(-(a * score + b)))`` on held-out faces, see
        benchmarks/calibrate_attributes.py) it is that; without one, the ridge heads' own
        reading: they regress the 1 / -1 labels, so ``(1 + score) / 2`` estimates the
        probability (clipped to [0, 1]).

        Examples
        --------
        >>> model = AttributeModel()
        >>> model.attributes = ("Male",)
        >>> model.probability(np.array([[0.5], [-2.0]])).round(2).tolist()
        [[0.75], [0.0]]
        >>> model.metadata["calibration"] = {"Male": [4.0, 0.0]}
        >>> model.probability(np.array([[0.0], [1.0]])).round(3).tolist()
        [[0.5], [0.982]]
        """
        scores = np.asarray(scores, np.float64)
        calibration = self.metadata.get("calibration") or {}
        out = np.clip((1.0 + scores) / 2.0, 0.0, 1.0)
        for column, name in enumerate(self.attributes):
            if name in calibration:
                a, b = calibration[name]
                out[..., column] = 1.0 / (1.0 + np.exp(-(a * scores[..., column] + b)))
        return out

    def predict(self, crops: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """1 / -1 per attribute for CelebA-aligned RGB crops (int8, CelebA's coding)."""
        if len(crops) == 0:
            return np.zeros((0, len(self.attributes)), np.int8)
        return self.predict_features(self.features(crops, batch_size))

    def _check_fitted(self) -> None:
        if not hasattr(self, "weights"):
            raise RuntimeError("the attribute model is not fitted; call fit() or load()")

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the model as arrays in a ``.npz`` file (atomically; no pickle)."""

        self._check_fitted()
        header = {"format": _FORMAT, "alphas": list(self.alphas), "views": list(self.views),
                  "blocks": list(self.blocks), "flip": self.flip,
                  "attributes": list(self.attributes), "metadata": self.metadata}

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, weights=self.weights, bias=self.bias,
                                    header=np.array(json.dumps(header)))

        atomic_write(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike) -> AttributeModel:
        """Read a model written by :meth:`save` (arrays only; nothing is unpickled)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(str(data["header"]))
                weights, bias = data["weights"], data["bias"]
        except (OSError, ValueError, KeyError) as error:
            raise InputError(f"not a privface attribute model ({error})", file=str(path)
                             ) from None
        if header.get("format") != _FORMAT:
            raise InputError(f"unknown model format {header.get('format')!r}; expected "
                             f"{_FORMAT!r}", file=str(path))
        if weights.shape != (weights.shape[0], len(header["attributes"])) or \
                bias.shape != (len(header["attributes"]),):
            raise InputError("the model's arrays do not match its attribute list", file=str(path))
        model = cls(alphas=header["alphas"], views=header["views"], blocks=header["blocks"],
                    flip=header["flip"])
        model.attributes = tuple(header["attributes"])
        model.weights, model.bias = weights.astype(np.float32), bias.astype(np.float32)
        model.metadata = header.get("metadata", {})
        return model


def default_model_path() -> Path:
    """Where the shipped model lies inside the installed package."""
    return Path(str(files("privface.attributes") / "models" / DEFAULT_MODEL))


@lru_cache(maxsize=1)
def load_default_model() -> AttributeModel:
    """The model shipped with privface (trained on CelebA 000001-008000; see its model card).

    CelebA is for non-commercial research only, and so is this model.
    """
    model = AttributeModel.load(default_model_path())
    # The Platt calibration of its scores (benchmarks/calibrate_attributes.py) lies beside it.
    calibration = default_model_path().with_suffix(".calibration.json")
    if calibration.exists():
        model.metadata["calibration"] = json.loads(calibration.read_text())["calibration"]
    return model


def _names(labels, attributes: Sequence[str] | None) -> list[str]:
    if attributes is not None:
        return list(attributes)
    if hasattr(labels, "columns"):
        return [str(c) for c in labels.columns]
    return list(CELEBA_ATTRIBUTES)
