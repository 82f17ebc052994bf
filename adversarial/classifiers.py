"""What "fooling a model" means: the prediction an attack tries to change, stated explicitly.

Every attack here works on a :class:`Classifier`, which wraps a differentiable torch model and
says three things about it:

* its **prediction** on clean images (a :class:`Reference`, computed once, without gradients);
* whether a perturbed image is **fooled** (its prediction differs from the reference);
* its **margins** ``(N, J)``: differentiable functions that are all positive while the prediction
  holds. DeepFool linearises them and crosses the nearest; FGSM and PGD ascend :meth:`loss`.

Two kinds cover the models privface attacks:

* :class:`MultiClass`, for a model with one logit per class and the prediction ``argmax`` (a
  face recognizer turned into a classifier over a gallery of identities). The margins are
  ``f_label - f_k`` for the ``candidates`` classes ranked highest on the clean image, as in
  DeepFool's reference implementation; fooled means the arg-max changed to any class.
* :class:`MultiLabel`, for a model with one logit per binary attribute (CelebA's 40, predicted
  present when the logit is > 0). Each chosen attribute is its own binary classifier with margin
  ``s_j * f_j`` (``s_j`` the sign predicted on the clean image); the prediction is the vector of
  chosen bits, and an image is fooled when **at least one** chosen attribute flips. The default
  choice is the five attributes that StarGAN and PPAS edit (:data:`DEFAULT_ATTRIBUTES`): they are
  the quasi-identifiers privface protects, so flipping one of them is the event that matters;
  ``attributes="all"`` asks for any of the 40.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from privface.attributes.model import CELEBA_ATTRIBUTES
from privface.base.errors import InputError

#: The attributes StarGAN's release and PPAS edit: the multi-label default.
DEFAULT_ATTRIBUTES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")


@dataclass
class Reference:
    """The clean prediction of a batch, row for row: what an attack must change.

    Attributes
    ----------
    labels : Tensor
        :class:`MultiClass`: the predicted class, ``(N,)`` long. :class:`MultiLabel`: the chosen
        attributes' predicted bits, ``(N, J)`` bool.
    candidates : Tensor or None
        :class:`MultiClass` only: the classes DeepFool considers crossing to, ``(N, K)`` long.
    """

    labels: torch.Tensor
    candidates: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index) -> Reference:
        """The rows ``index`` (a boolean mask or integer indices)."""
        return Reference(self.labels[index],
                         None if self.candidates is None else self.candidates[index])

    def to(self, device) -> Reference:
        """The same reference on another device."""
        return Reference(self.labels.to(device),
                         None if self.candidates is None else self.candidates.to(device))

    @staticmethod
    def cat(parts: Sequence[Reference]) -> Reference:
        """Rows of several references, one after the other."""
        labels = torch.cat([p.labels for p in parts])
        candidates = None if parts[0].candidates is None else \
            torch.cat([p.candidates for p in parts])
        return Reference(labels, candidates)


class Classifier(ABC):
    """A torch model and the prediction an attack tries to change.

    Parameters
    ----------
    model : nn.Module
        Takes a float batch ``(N, C, H, W)`` of images in [0, 1] and returns logits ``(N, K)``.
        It is put in evaluation mode while attacked (see :func:`evaluating`).
    """

    kind: str

    def __init__(self, model: nn.Module) -> None:
        if not callable(model):
            raise TypeError(f"expected a torch model (callable), got {type(model).__name__}")
        self.model = model

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The model's logits, checked to be a 2-d batch of the right length."""
        out = self.model(x)
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or len(out) != len(x):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"the model must return logits of shape ({len(x)}, classes), "
                             f"got {shape}")
        return out

    @torch.no_grad()
    def reference(self, x: torch.Tensor) -> Reference:
        """The clean prediction of ``x``."""
        return self.reference_from_logits(self.logits(x))

    @torch.no_grad()
    def fooled(self, x: torch.Tensor, reference: Reference) -> torch.Tensor:
        """``(N,)`` bool: whose prediction on ``x`` differs from ``reference``."""
        return self.fooled_from_logits(self.logits(x), reference)

    def margins(self, x: torch.Tensor, reference: Reference) -> torch.Tensor:
        """``(N, J)``, differentiable; all positive while the prediction equals ``reference``."""
        return self.margins_from_logits(self.logits(x), reference)

    def loss(self, x: torch.Tensor, reference: Reference) -> torch.Tensor:
        """``(N,)``, differentiable: what FGSM and PGD increase to leave ``reference``."""
        return self.loss_from_logits(self.logits(x), reference)

    def references(self, x: torch.Tensor, batch_size: int = 64) -> Reference:
        """The clean prediction of a large ``x``, computed ``batch_size`` images at a time."""
        return Reference.cat([self.reference(x[i:i + batch_size])
                              for i in range(0, len(x), batch_size)])

    @abstractmethod
    def reference_from_logits(self, logits: torch.Tensor) -> Reference: ...

    @abstractmethod
    def fooled_from_logits(self, logits: torch.Tensor, reference: Reference) -> torch.Tensor: ...

    @abstractmethod
    def margins_from_logits(self, logits: torch.Tensor, reference: Reference
                            ) -> torch.Tensor: ...

    @abstractmethod
    def loss_from_logits(self, logits: torch.Tensor, reference: Reference) -> torch.Tensor: ...

    def describe(self) -> dict:
        """What is being fooled, JSON-ready (saved with a perturbation, shown in reports)."""
        return {"kind": self.kind, "model": type(self.model).__name__}


class MultiClass(Classifier):
    """One logit per class; the prediction is the arg-max.

    Parameters
    ----------
    model : nn.Module
    candidates : int
        Classes ranked highest on the clean image that DeepFool may cross to (its ``num_classes``
        parameter; 10 in the reference implementation).

    Examples
    --------
    >>> model = torch.nn.Linear(2, 3, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
    >>> clf = MultiClass(model)
    >>> x = torch.tensor([[2.0, 1.0]])
    >>> ref = clf.reference(x)
    >>> ref.labels.tolist(), ref.candidates.tolist()
    ([0], [[1, 2]])
    >>> clf.margins(x, ref).tolist()  # f_0 - f_1, f_0 - f_2
    [[1.0, 5.0]]
    >>> clf.fooled(torch.tensor([[0.0, 1.0]]), ref).tolist()
    [True]
    """

    kind = "multiclass"

    def __init__(self, model: nn.Module, *, candidates: int = 10) -> None:
        super().__init__(model)
        if candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        self.candidates = int(candidates)

    def reference_from_logits(self, logits: torch.Tensor) -> Reference:
        if logits.shape[1] < 2:
            raise ValueError("a multi-class model needs at least two classes")
        k = min(self.candidates, logits.shape[1] - 1)
        ranked = logits.topk(k + 1, dim=1).indices
        return Reference(ranked[:, 0], ranked[:, 1:])

    def fooled_from_logits(self, logits: torch.Tensor, reference: Reference) -> torch.Tensor:
        return logits.argmax(dim=1) != reference.labels

    def margins_from_logits(self, logits: torch.Tensor, reference: Reference) -> torch.Tensor:
        own = logits.gather(1, reference.labels[:, None])
        return own - logits.gather(1, reference.candidates)

    def loss_from_logits(self, logits: torch.Tensor, reference: Reference) -> torch.Tensor:
        return F.cross_entropy(logits, reference.labels, reduction="none")

    def describe(self) -> dict:
        return {**super().describe(), "candidates": self.candidates}


class MultiLabel(Classifier):
    """One logit per binary attribute; fooled when at least one chosen attribute flips.

    Parameters
    ----------
    model : nn.Module
    attributes : sequence of str or int, or "all"
        The attributes whose flip counts, by name (looked up in ``names``) or by column.
        Default :data:`DEFAULT_ATTRIBUTES`.
    names : sequence of str, optional
        The model's attribute names, column for column; default ``model.attributes`` when it
        has them, else CelebA's 40.

    Examples
    --------
    >>> model = torch.nn.Linear(2, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.eye(2))
    >>> clf = MultiLabel(model, attributes=["A"], names=["A", "B"])
    >>> ref = clf.reference(torch.tensor([[1.0, -1.0]]))
    >>> ref.labels.tolist()
    [[True]]
    >>> clf.fooled(torch.tensor([[-0.5, 3.0], [0.5, 3.0]]), ref.take([0, 0])).tolist()
    [True, False]
    """

    kind = "multilabel"

    def __init__(self, model: nn.Module, *, attributes: Sequence[str | int] | str =
                 DEFAULT_ATTRIBUTES, names: Sequence[str] | None = None) -> None:
        super().__init__(model)
        if names is None:
            names = getattr(model, "attributes", None)
        if names is None:
            names = CELEBA_ATTRIBUTES
        self.names = tuple(str(n) for n in names)
        if isinstance(attributes, str):
            attributes = self.names if attributes == "all" else \
                [a.strip() for a in attributes.split(",") if a.strip()]
        columns = []
        for item in attributes:
            if isinstance(item, int) and not isinstance(item, bool):
                if not 0 <= item < len(self.names):
                    raise InputError(f"attribute column {item} is out of range 0..."
                                     f"{len(self.names) - 1}")
                columns.append(item)
            elif item in self.names:
                columns.append(self.names.index(item))
            else:
                raise InputError(f"unknown attribute {item!r}; the model predicts "
                                 f"{', '.join(self.names)}")
        if not columns or len(set(columns)) != len(columns):
            raise InputError(f"expected distinct attributes to attack, got {list(attributes)}")
        self.columns = tuple(columns)
        self.attributes = tuple(self.names[c] for c in columns)
        self._index = torch.tensor(columns, dtype=torch.long)

    def _chosen(self, logits: torch.Tensor) -> torch.Tensor:
        if logits.shape[1] != len(self.names):
            raise ValueError(f"the model returned {logits.shape[1]} logits for "
                             f"{len(self.names)} attribute names")
        return logits.index_select(1, self._index.to(logits.device))

    def reference_from_logits(self, logits: torch.Tensor) -> Reference:
        return Reference(self._chosen(logits) > 0)

    def fooled_from_logits(self, logits: torch.Tensor, reference: Reference) -> torch.Tensor:
        return ((self._chosen(logits) > 0) != reference.labels).any(dim=1)

    def margins_from_logits(self, logits: torch.Tensor, reference: Reference) -> torch.Tensor:
        sign = reference.labels.to(logits.dtype) * 2.0 - 1.0
        return sign * self._chosen(logits)

    def loss_from_logits(self, logits: torch.Tensor, reference: Reference) -> torch.Tensor:
        target = reference.labels.to(logits.dtype)
        return F.binary_cross_entropy_with_logits(self._chosen(logits), target,
                                                  reduction="none").sum(dim=1)

    def describe(self) -> dict:
        return {**super().describe(), "attributes": list(self.attributes)}


def as_classifier(model) -> Classifier:
    """A :class:`Classifier` as it is, a bare torch model as :class:`MultiClass`.

    A multi-label model (such as the 40-attribute CNN) must be wrapped in :class:`MultiLabel`
    explicitly: read as a multi-class model, its arg-max over attributes would be meaningless.

    Examples
    --------
    >>> as_classifier(torch.nn.Linear(4, 3)).kind
    'multiclass'
    """
    if isinstance(model, Classifier):
        return model
    if isinstance(model, nn.Module) or callable(model):
        return MultiClass(model)
    raise TypeError(f"expected a torch model or a Classifier, got {type(model).__name__}")


class evaluating:  # noqa: N801 (used as a context manager, like torch.no_grad)
    """Put a classifier's model (or a module) in evaluation mode inside the block; restore after.

    Batch-norm and dropout must not change while an attack is computed: in training mode one
    image's perturbation would depend on the others in its batch.

    Examples
    --------
    >>> net = torch.nn.Sequential(torch.nn.Dropout(), torch.nn.Dropout().eval())
    >>> with evaluating(MultiClass(net)):
    ...     net[0].training
    False
    >>> net[0].training, net[1].training
    (True, False)
    """

    def __init__(self, classifier: Classifier | nn.Module) -> None:
        self.model = classifier.model if isinstance(classifier, Classifier) else classifier
        self.modes: dict[nn.Module, bool] = {}

    def __enter__(self):
        if isinstance(self.model, nn.Module):
            # Each module's own mode: a wrapper in training mode around a network in evaluation
            # mode must get both back as they were, not the wrapper's mode everywhere.
            self.modes = {module: module.training for module in self.model.modules()}
            self.model.eval()
        return self

    def __exit__(self, *exc) -> None:
        for module, mode in self.modes.items():
            module.training = mode
