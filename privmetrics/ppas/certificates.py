"""PPAS results: certificates per face, the result object, and the infeasibility error."""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import pandas as pd

from privface.base.errors import InputError
from privface.base.jsonenc import json_value

from ..audit import Requirements
from ..compare import at_most, falls_short

#: Version tag of :meth:`PPASCertificate.to_dict`.
SCHEMA = "privface.ppas/1"

#: What a certificate promises when a budget was spent.
GUARANTEE = (
    "epsilon-local differential privacy for the face restricted to the editable attributes "
    "(randomised response, budget split evenly); the target is chosen from the noisy vector and "
    "the public reference only (post-processing), and the target's class in the reference meets "
    "the requirements asked")

#: What a certificate says when ``epsilon=None``.
NO_DP_GUARANTEE = (
    "NO differential-privacy guarantee: epsilon=None, no randomised response was applied; the "
    "target's class in the reference meets the requirements asked, but the target is a "
    "deterministic function of the face (up to tie-breaking)")


# --------------------------------------------------------------------------- errors


@dataclass
class PPASInfeasibleError(InputError):
    """No class of the reference meets the requirements and agrees with a face outside ``A``.

    The message says which face, the best reachable k, l and t over the classes of the reference
    that agree with it on every non-editable QI (max size, max l, min t; each may come from a
    different class), and which requirement cannot be met.

    Attributes
    ----------
    face : hashable
        Index label of the (first) infeasible face.
    best_k, best_l : int
        Largest class size and largest distinct l-diversity reachable (0 when no class of the
        reference agrees with the face outside the editable attributes).
    best_t : float
        Smallest EMD reachable (``inf`` when no class agrees).
    unmet : tuple of str
        The requirements (``"k"``, ``"l"``, ``"t"``) that no reachable class meets on its own;
        empty when each is met by some class but none meets all together.
    n_infeasible : int
        How many of the faces have no feasible target.

    Examples
    --------
    >>> from privface.privmetrics.ppas import select_attributes
    >>> import pandas as pd
    >>> R = pd.DataFrame({"Male": [1, 1, -1], "identity": [1, 2, 3]})
    >>> try:
    ...     select_attributes(R, {"Male": -1}, qi=["Male"], editable=[], sensitive="identity",
    ...                       k=2, epsilon=None)
    ... except PPASInfeasibleError as exc:
    ...     print(exc.best_k, exc.best_l, exc.best_t, exc.unmet)
    1 1 0.6666666666666667 ('k',)
    """

    face: Hashable = None
    best_k: int = 0
    best_l: int = 0
    best_t: float = math.inf
    unmet: tuple[str, ...] = ()
    n_infeasible: int = 0


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class PPASCertificate:
    """What PPAS did to one face and what the target guarantees.

    Attributes
    ----------
    face : hashable
        The face's index label.
    requirements : dict
        The requirements asked (``k``, ``l``, ``t``; only those given).
    sensitive : tuple of str
        The sensitive attribute(s) l and t are measured on.
    feasible : bool
        Whether the face got a target. False only with ``on_infeasible="skip"``.
    k, l, t : int, int, float or None
        Size, distinct l-diversity and EMD (worst over sensitive attributes) of the target's
        class in the reference; ``None`` without a target.
    epsilon : float
        Budget spent on the face (0.0 with ``epsilon=None``).
    epsilon_per_attribute : float
        ``epsilon / |A|`` spent on each editable attribute.
    dp : bool
        Whether the epsilon-local-DP guarantee holds (False with ``epsilon=None``).
    guarantee : str
        The guarantee in words (:data:`GUARANTEE` or :data:`NO_DP_GUARANTEE`).
    editable : tuple of str
        The attributes PPAS was allowed to change.
    changed : tuple of str
        The attributes whose target differs from the *original* face (after DP and projection).
        Not covered by the DP guarantee (with the target it gives the original back): a record
        for the data holder, not for release.
    n_changed : int
    seeded : bool
        Whether a seed was given (the noise is then reproducible by whoever knows it).
    reference_size : int
        Rows of the reference population.
    reason : str or None
        Why the face has no target (``feasible`` False).

    Examples
    --------
    >>> from privface.privmetrics.ppas import select_attributes
    >>> import pandas as pd
    >>> R = pd.DataFrame({"Male": [1, 1, -1, -1], "identity": [1, 2, 3, 4]})
    >>> cert = select_attributes(R, {"Male": 1}, qi=["Male"], editable=["Male"],
    ...                          sensitive="identity", k=2, epsilon=1.0, seed=3).certificates[0]
    >>> d = cert.to_dict()
    >>> d["reached"], d["epsilon"], d["seeded"]
    ({'k': 2, 'l': 2, 't': 0.5}, 1.0, True)
    """

    face: Hashable
    requirements: dict[str, float]
    sensitive: tuple[str, ...]
    feasible: bool
    k: int | None
    l: int | None
    t: float | None
    epsilon: float
    epsilon_per_attribute: float
    dp: bool
    guarantee: str
    editable: tuple[str, ...]
    changed: tuple[str, ...]
    n_changed: int
    seeded: bool
    reference_size: int
    reason: str | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict (schema ``privface.ppas/1``); infinities are written ``"inf"``."""
        return {
            "schema": SCHEMA,
            "face": json_value(self.face),
            "feasible": self.feasible,
            "requirements": {k: json_value(v) for k, v in self.requirements.items()},
            "sensitive": list(self.sensitive),
            "reached": {"k": json_value(self.k), "l": json_value(self.l), "t": json_value(self.t)},
            "epsilon": json_value(self.epsilon),
            "epsilon_per_attribute": json_value(self.epsilon_per_attribute),
            "dp": self.dp,
            "guarantee": self.guarantee,
            "editable": list(self.editable),
            "changed": list(self.changed),
            "n_changed": self.n_changed,
            "seeded": self.seeded,
            "reference_size": self.reference_size,
            "reason": self.reason,
        }


class PPASCertificates(Sequence):
    """One :class:`PPASCertificate` per face, in the order of the faces.

    The certificates are stored as arrays and built on access, so that 100,000 faces cost no
    100,000 Python objects until someone asks for them. Index by position (``certs[0]``), or by
    face label with :meth:`for_face`; :meth:`to_frame` gives one row per face.

    Examples
    --------
    >>> from privface.privmetrics.ppas import select_attributes
    >>> import pandas as pd
    >>> R = pd.DataFrame({"Male": [1, 1, -1, -1], "identity": [1, 2, 3, 4]})
    >>> faces = pd.DataFrame({"Male": [1, -1]}, index=["a.jpg", "b.jpg"])
    >>> certs = select_attributes(R, faces, qi=["Male"], editable=["Male"], sensitive="identity",
    ...                           k=2, epsilon=None).certificates
    >>> len(certs), certs.for_face("b.jpg").k
    (2, 2)
    >>> certs.to_frame()[["feasible", "k", "l", "n_changed"]]
           feasible  k  l  n_changed
    a.jpg      True  2  2          0
    b.jpg      True  2  2          0
    """

    def __init__(self, *, index: pd.Index, changed: np.ndarray, feasible: np.ndarray,
                 k: np.ndarray, l: np.ndarray, t: np.ndarray, reasons: np.ndarray,
                 common: Mapping[str, Any], qi: Sequence[str]) -> None:
        self._index = index
        self._changed = changed
        self._feasible = feasible
        self._k, self._l, self._t = k, l, t
        self._reasons = reasons
        self._common = dict(common)
        self._qi = np.asarray(list(qi), dtype=object)

    def __len__(self) -> int:
        return len(self._index)

    @overload
    def __getitem__(self, i: int) -> PPASCertificate: ...

    @overload
    def __getitem__(self, i: slice) -> list[PPASCertificate]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise TypeError("certificates are indexed by position; use for_face(label) for a "
                            "face label")
        n = len(self)
        j = int(i) + n if i < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(f"certificate {i} out of range for {n} faces")
        ok = bool(self._feasible[j])
        changed = tuple(self._qi[self._changed[j]].tolist())
        return PPASCertificate(
            face=self._index[j], feasible=ok,
            k=int(self._k[j]) if ok else None, l=int(self._l[j]) if ok else None,
            t=float(self._t[j]) if ok else None,
            changed=changed, n_changed=len(changed), reason=self._reasons[j],
            **{**self._common, "requirements": dict(self._common["requirements"])})

    def __iter__(self) -> Iterator[PPASCertificate]:
        for j in range(len(self)):
            yield self[j]

    def for_face(self, label: Hashable) -> PPASCertificate:
        """The certificate of the face with this index label (the first, if labels repeat)."""
        loc = self._index.get_indexer_for([label])
        if len(loc) == 0 or loc[0] < 0:
            raise KeyError(f"no face labelled {label!r}")
        return self[int(loc[0])]

    def to_frame(self) -> pd.DataFrame:
        """One row per face: feasible, k, l, t (missing without a target), n_changed, reason."""
        ok = self._feasible
        out = pd.DataFrame({
            "feasible": ok,
            "k": pd.array(np.where(ok, self._k, 0), dtype="Int64"),
            "l": pd.array(np.where(ok, self._l, 0), dtype="Int64"),
            "t": np.where(ok, self._t, np.nan),
            "n_changed": self._changed.sum(axis=1).astype(np.int64),
            "reason": self._reasons,
        }, index=self._index)
        out.loc[~ok, ["k", "l"]] = pd.NA
        return out

    def to_list(self) -> list[dict]:
        """Every certificate as a JSON-ready dict (see :meth:`PPASCertificate.to_dict`)."""
        return [c.to_dict() for c in self]

    def __repr__(self) -> str:
        return f"<PPASCertificates: {len(self)} faces, {int(self._feasible.sum())} with a target>"


@dataclass(eq=False)
class PPASResult:
    """What :func:`select_attributes` returns.

    Attributes
    ----------
    targets : pandas.DataFrame
        Same index as the faces, one column per QI, the target values in the reference's dtypes.
        Faces skipped (``on_infeasible="skip"``) have missing values; their integer and boolean
        columns then use pandas' nullable dtypes (``int8`` becomes ``Int8``).
    changed : pandas.DataFrame
        Booleans, same shape: which attributes of the *original* face the target changes.
        All False for skipped faces. Computed from the original face, so not covered by the DP
        guarantee: with the targets it reveals the original values; keep it with the data holder.
    certificates : PPASCertificates
        One :class:`PPASCertificate` per face.
    summary : dict
        JSON-ready: requirements, sensitive, qi, editable, reference size and classes, number of
        feasible classes, faces, faces with a target, skipped, mean changed attributes, epsilon
        and per-attribute epsilon, whether the DP guarantee holds, seeded, the guarantee text.
    """

    targets: pd.DataFrame
    changed: pd.DataFrame
    certificates: PPASCertificates
    summary: dict = field(default_factory=dict)

    @property
    def skipped(self) -> pd.Series:
        """Boolean per face: True where the face got no target."""
        return pd.Series(~self.certificates._feasible, index=self.targets.index, name="skipped")


# --------------------------------------------------------------------------- messages


@dataclass
class Context:
    """What PPAS knew when a face had no feasible target, for the message that says why."""

    requirements: Requirements
    editable: list[str]
    qi: list[str]
    n_feasible: int
    n_classes: int
    n_faces: int
    n_bad: int
    asked: str = field(init=False)
    where: str = field(init=False)
    any_fixed: bool = field(init=False)

    def __post_init__(self) -> None:
        items = self.requirements.asked().items()
        self.asked = ", ".join(f"{key}={_fmt(v) if key == 't' else v}" for key, v in items)
        self.asked = self.asked or "none"
        fixed = [c for c in self.qi if c not in set(self.editable)]
        self.any_fixed = bool(fixed)
        self.where = ("the non-editable QIs (" + ", ".join(fixed[:8])
                      + (", ..." if len(fixed) > 8 else "") + ")") if fixed else "the QIs"


def _fmt(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.6g}"


def infeasible_reason(best_k: int, best_l: int, best_t: float, n_agree: int,
                       ctx: Context) -> tuple[str, tuple[str, ...]]:
    """The explanation shared by the error and the certificates of skipped faces."""
    req, asked, where = ctx.requirements, ctx.asked, ctx.where
    unmet = []
    if req.k is not None and falls_short(best_k, req.k):
        unmet.append("k")
    if req.l is not None and falls_short(best_l, req.l):
        unmet.append("l")
    if req.t is not None and not at_most(best_t, req.t):
        unmet.append("t")
    if n_agree == 0:
        head = (f"no class of the reference agrees with this face on {where}, so no target "
                f"meets the requirements ({asked}); best reachable k=0, l=0, t=inf")
    else:
        head = (f"no target meets the requirements ({asked}): best reachable over the "
                f"{n_agree} class{'es' if n_agree != 1 else ''} of the reference that agree with "
                f"this face on {where} is k={best_k}, l={best_l}, t={_fmt(best_t)}")
    if unmet:
        parts = {"k": f"k={req.k} (best {best_k})", "l": f"l={req.l} (best {best_l})",
                 "t": f"t={_fmt(req.t) if req.t is not None else ''} (best {_fmt(best_t)})"}
        tail = "cannot be met: " + ", ".join(parts[u] for u in unmet)
    else:
        tail = ("each requirement is met by some of these classes, but no single class meets "
                "them together")
    if ctx.n_feasible == 0:
        tail += f"; no class of the reference ({ctx.n_classes} classes) meets them at all"
    elif ctx.any_fixed:
        tail += "; making more attributes editable may help"
    return f"{head}; {tail}", tuple(unmet)


def infeasible_error(label: Hashable, position: int, best_k: int, best_l: int, best_t: float,
                      n_agree: int, ctx: Context) -> PPASInfeasibleError:
    """The error PPAS raises for the first face with no feasible target (on_infeasible="raise")."""
    reason, unmet = infeasible_reason(best_k, best_l, best_t, n_agree, ctx)
    message = f"face {label!r} (row {position + 1} of {ctx.n_faces}): {reason}"
    if ctx.n_faces > 1:
        message += (f" ({ctx.n_bad} of {ctx.n_faces} faces have no feasible target; pass "
                    "on_infeasible='skip' to skip them)")
    return PPASInfeasibleError(message, face=label, best_k=best_k, best_l=best_l, best_t=best_t,
                               unmet=unmet, n_infeasible=ctx.n_bad)

