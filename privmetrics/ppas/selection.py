"""PPAS: privacy-preserving attribute selection (docs/making-it-private.md, "PPAS"; docs/design.md).

For each face, PPAS picks the attribute vector a generator should give it: a *target* that is
epsilon-locally differentially private for the editable attributes and whose equivalence class in
a public reference population R meets k-anonymity, distinct l-diversity and t-closeness.

1. **Randomised response** on every editable attribute ``A``, the budget split evenly: each bit
   is kept with probability ``e^(eps/|A|) / (1 + e^(eps/|A|))`` and flipped otherwise. This is
   epsilon-local-DP for the face restricted to ``A``. The generator is
   :func:`numpy.random.default_rng` seeded from OS entropy; a seed is for tests and reproducibility
   only, and the certificate says when one was used.
2. **Projection.** The classes of R (over the QIs) whose size, l-diversity and EMD meet the
   requirements are found once per call. Among those that agree with the noisy face on every
   non-editable QI, the nearest in Hamming distance over ``A`` is chosen (fewest changed
   attributes), ties uniformly at random. Its QI vector is the target.
3. **No feasible class**: :class:`PPASInfeasibleError`, whose message gives the best reachable k,
   l and t and the requirement that cannot be met (or, with ``on_infeasible="skip"``, the face gets
   no target and its certificate says why).

The guarantee. The projection depends only on the noisy vector and the public R, so it is
post-processing and keeps the epsilon-local-DP guarantee for the face restricted to ``A``; the
target's class meets k, l and t in R by construction. (AnonymousNet selects first and perturbs
last, which can break the k/l/t it has just met; this order keeps both guarantees.) The
non-editable QIs are copied from the face: they get no protection, which is what "not editable"
means. Whether a face is feasible depends only on its non-editable QIs, never on the noise.

What is *not* covered: ``changed`` (and each certificate's ``changed`` / ``n_changed``) compares
the target with the *original* face, so together with the target it gives the original editable
values back. It is an audit trail for the data holder, not something to release with the targets.

The quasi-identifiers must be binary (two values in R, any two: 1/-1, True/False, "y"/"n", a value
and missing); non-binary QIs are future work. Matching is vectorised: QI vectors are packed into
``uint64`` words (more than 64 QIs take several words), distances are XOR and popcount, faces
with equal noisy vectors are matched once, and faces are processed in chunks so that memory stays
bounded.

Examples
--------
>>> import pandas as pd
>>> R = pd.DataFrame({"Male":     [1, 1, 1, -1, -1, -1, -1],
...                   "Smiling":  [1, 1, 1, -1, -1, -1,  1],
...                   "identity": [1, 2, 3,  4,  5,  6,  7]})
>>> face = {"Male": -1, "Smiling": 1}
>>> result = select_attributes(R, face, qi=["Male", "Smiling"], editable=["Smiling"],
...                            sensitive="identity", k=3, epsilon=None)
>>> result.targets
   Male  Smiling
0    -1       -1
>>> cert = result.certificates[0]
>>> cert.changed, (cert.k, cert.l), cert.epsilon, cert.dp
(('Smiling',), (3, 3), 0.0, False)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from privface.base.errors import InputError
from privface.base.jsonenc import json_value
from privface.base.validation import check_epsilon, check_seed, did_you_mean

from ..audit import Requirements
from ..closeness import emd_per_class
from ..compare import at_least, at_most
from ..contingency import ContingencyTable, Ordered, contingency_table
from ..dp import keep_probability, respond

from .bits import DP_CHUNK_DRAWS, mask_words, _nearest, pack, row_ids, unpack
from .certificates import (GUARANTEE, NO_DP_GUARANTEE, SCHEMA, PPASCertificates, PPASResult,
                           Context, infeasible_error, infeasible_reason)

# --------------------------------------------------------------------------- validation


def _names(value: Sequence[str] | str | None, what: str) -> list[str]:
    if value is None:
        return []
    names = [value] if isinstance(value, str) else list(value)
    for v in names:
        if not isinstance(v, str):
            raise InputError(f"{what} must be column names (strings), got {v!r}")
    seen: set[str] = set()
    for v in names:
        if v in seen:
            raise InputError(f"{what} listed twice", column=v)
        seen.add(v)
    return names


def _faces_frame(faces: Any) -> pd.DataFrame:
    """The faces as a DataFrame: a DataFrame as is, one Series or mapping as a one-row frame."""
    if isinstance(faces, pd.DataFrame):
        return faces
    if isinstance(faces, pd.Series):
        label = faces.name if faces.name is not None else 0
        return pd.DataFrame([faces.to_dict()], index=pd.Index([label]))
    if isinstance(faces, Mapping):
        return pd.DataFrame([dict(faces)], index=pd.Index([0]))
    raise InputError(f"faces must be a DataFrame (one row per face), or one face as a Series or "
                     f"dict, got {type(faces).__name__}")


@dataclass
class _Binary:
    """The binary QIs of the reference: per QI its two values and the reference classes' bits."""

    values: list[pd.Index]  # values[j][b] is QI j's value for bit b
    class_bits: np.ndarray  # (classes, q) bool


def _binary_qis(ct: ContingencyTable, qi: list[str]) -> _Binary:
    """Check that every QI has at most two values in R; the bits of each class of R."""
    first = ct.class_first_row
    values: list[pd.Index] = []
    bits = np.zeros((ct.n_classes, len(qi)), dtype=bool)
    for j, (name, col) in enumerate(zip(qi, ct.row_keys.columns)):  # a loop over columns
        codes = col.codes
        used = np.flatnonzero(np.bincount(codes, minlength=col.cardinality))
        if len(used) > 2:
            shown = ", ".join(repr(v) for v in col.decode(used[:4]).tolist())
            raise InputError(
                f"PPAS needs binary quasi-identifiers (two values in the reference), but this "
                f"column has {len(used)} distinct values ({shown}"
                f"{', ...' if len(used) > 4 else ''}); non-binary QIs are future work",
                column=name)
        vals = col.decode(used)
        values.append(vals)
        if len(used) == 2:
            bits[:, j] = codes[first] == used[1]
    return _Binary(values=values, class_bits=bits)


def _face_bits(frame: pd.DataFrame, qi: list[str], binary: _Binary) -> np.ndarray:
    """The faces' QI values as bits, with the reference's value pairs (InputError otherwise)."""
    columns = [str(c) for c in frame.columns]
    bits = np.zeros((len(frame), len(qi)), dtype=bool)
    for j, name in enumerate(qi):  # a loop over columns
        if name not in frame.columns:
            hint = did_you_mean(name, columns)
            raise InputError(f"the faces have no such quasi-identifier column{hint}", column=name)
        vals = binary.values[j]
        col = frame[name]
        code = _codes(vals, col.to_numpy())
        bad = code < 0
        if bad.any() and len(vals) == 1:
            # A constant QI of the reference: a face may carry the other value.
            other = pd.unique(col.to_numpy()[bad])
            if len(other) == 1:
                vals = vals.append(pd.Index(other))
                binary.values[j] = vals
                code = _codes(vals, col.to_numpy())
                bad = code < 0
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            expected = " or ".join(repr(v) for v in vals.tolist())
            raise InputError(f"face {frame.index[pos]!r} (row {pos + 1}) has value "
                             f"{col.iloc[pos]!r}, expected {expected} (the values of the "
                             f"reference; PPAS needs binary quasi-identifiers)", column=name)
        bits[:, j] = code == 1
    return bits


def _codes(values: pd.Index, column: np.ndarray) -> np.ndarray:
    """Position of each cell's value in ``values`` (-1 when absent), by comparison for numbers."""
    if (isinstance(column, np.ndarray) and column.dtype.kind in "iu"
            and values.dtype.kind in "iu" and len(values) <= 2):
        code = np.full(len(column), -1, dtype=np.int8)
        for b, v in enumerate(values.tolist()):  # two values at most
            code[column == v] = b
        return code
    return values.get_indexer(column)


# --------------------------------------------------------------------------- the selection


def select_attributes(
    reference: pd.DataFrame,
    faces: pd.DataFrame | pd.Series | Mapping[str, Any],
    *,
    qi: Sequence[str],
    editable: Sequence[str],
    sensitive: str | Sequence[str],
    k: int | None = None,
    l: int | None = None,
    t: float | None = None,
    epsilon: float | None,
    seed: int | None = None,
    ordered: Ordered = (),
    on_infeasible: Literal["raise", "skip"] = "raise",
) -> PPASResult:
    """Choose a private target attribute vector for each face (PPAS, docs/making-it-private.md).

    Step 1 applies randomised response to the editable attributes (budget ``epsilon`` split
    evenly); step 2 projects the noisy vector onto the nearest class of the reference that meets
    the requirements and agrees with the face on every non-editable QI (fewest changed editable
    attributes, ties at random). The projection depends only on the noisy vector and the public
    reference, so it is post-processing: each target is epsilon-locally differentially private
    for the face restricted to ``editable``, and the target's class in the reference meets k, l
    and t.

    Parameters
    ----------
    reference : pandas.DataFrame
        The public reference population R, e.g. CelebA's attribute table with an ``identity``
        column. Its classes over ``qi`` are the candidate targets.
    faces : DataFrame, or one face as a Series or dict
        The faces' values of every QI (other columns are ignored). A Series is one face labelled
        by its name (0 when unnamed); a dict is one face labelled 0.
    qi : sequence of str
        Quasi-identifiers: binary attributes (two values in the reference, any two). A QI with
        more than two values is an InputError; non-binary QIs are future work.
    editable : sequence of str
        The QIs the generator can change (``A``). The others are kept as they are; only the
        editable ones are randomised and protected by the DP guarantee.
    sensitive : str or sequence of str
        The sensitive attribute(s) of the reference (e.g. ``"identity"``). With several, a class
        must meet l and t for each; the reached l and t are the worst over them.
    k : int, optional
        Every target's class has at least k records in the reference.
    l : int, optional
        ... at least l distinct sensitive values (distinct l-diversity).
    t : float, optional
        ... an EMD of at most t from the reference's sensitive distribution (nominal, or the
        ordered distance for a sensitive attribute listed in ``ordered``).
    epsilon : float or None
        Budget of the randomised response per face, finite and > 0 (``epsilon / |A|`` per
        attribute). Required: ``None`` skips the DP step, and then the certificates say that
        epsilon spent is 0 and that no DP guarantee holds.
    seed : int, optional
        For tests and reproducibility only: whoever knows it can undo the noise. The certificates
        record whether a seed was given (never the OS entropy used otherwise).
    ordered : str or sequence of str, optional
        Sensitive attributes with ordered values.
    on_infeasible : {"raise", "skip"}, default "raise"
        What to do with a face that no feasible class agrees with outside ``editable``:
        raise :class:`PPASInfeasibleError` (before any noise is drawn), or give it no target and
        say why in its certificate.

    Returns
    -------
    PPASResult
        ``targets``, ``changed``, ``certificates`` and ``summary``.

    Raises
    ------
    PPASInfeasibleError
        A face has no feasible target (``on_infeasible="raise"``); the message gives the best
        reachable k, l and t and what cannot be met.
    InputError
        Missing columns, a QI with more than two values, a face value the reference does not
        have, an editable attribute that is not a QI, bad requirements, epsilon or seed.

    Notes
    -----
    The feasible classes are computed once per call from the contingency table of R. Faces are
    packed into ``uint64`` words, faces with the same noisy vector are matched together, and the
    distance matrix (faces x feasible classes) is built in chunks of bounded size. The random
    stream is: ``n x |A|`` uniforms for the randomised response (faces in order, editable QIs in
    QI order), then one uniform per face for the tie-break.

    Examples
    --------
    >>> import pandas as pd
    >>> R = pd.DataFrame({"Male":     [1, 1, 1, 1, -1, -1, -1, -1],
    ...                   "Young":    [1, 1, -1, -1, 1, 1, -1, -1],
    ...                   "identity": [1, 2, 3, 4, 5, 6, 7, 7]})
    >>> faces = pd.DataFrame({"Male": [1, -1], "Young": [-1, -1]}, index=["a.jpg", "b.jpg"])
    >>> res = select_attributes(R, faces, qi=["Male", "Young"], editable=["Young"],
    ...                         sensitive="identity", k=2, l=2, epsilon=1.0, seed=0)
    >>> res.targets.loc["b.jpg"].tolist()  # (-1, -1) holds identity 7 twice: l = 1
    [-1, 1]
    >>> res.summary["feasible_classes"], res.summary["epsilon"], res.summary["seeded"]
    (3, 1.0, True)
    >>> res.certificates.for_face("b.jpg").changed
    ('Young',)
    """
    # ---- validation
    if not isinstance(reference, pd.DataFrame):
        raise InputError(f"the reference must be a pandas DataFrame, got "
                         f"{type(reference).__name__}")
    qi_list = _names(qi, "quasi-identifiers")
    editable_list = _names(editable, "editable attributes")
    sens = _names(sensitive, "sensitive attributes")
    if not sens:
        raise InputError("PPAS needs a sensitive attribute of the reference (sensitive=...)")
    for name in editable_list:
        if name not in qi_list:
            raise InputError(f"an editable attribute must be one of the quasi-identifiers "
                             f"({', '.join(qi_list)})", column=name)
    requirements = Requirements(k=k, l=l, t=t)
    eps = None if epsilon is None else check_epsilon(epsilon, none_skips=True)
    if eps is not None and not editable_list:
        raise InputError("epsilon was given but no attribute is editable: randomised response "
                         "needs at least one editable attribute (pass epsilon=None to skip it)")
    seed_value = check_seed(seed)
    if on_infeasible not in ("raise", "skip"):
        raise InputError(f"on_infeasible must be 'raise' or 'skip', got {on_infeasible!r}")
    frame = _faces_frame(faces)

    # ---- the reference: classes, their metrics, the feasible ones (once per call)
    ct = contingency_table(reference, qi_list, sens, ordered=ordered)
    binary = _binary_qis(ct, qi_list)
    sizes = ct.class_sizes.astype(np.int64)
    class_l = np.min([ct[s].distinct for s in sens], axis=0).astype(np.int64)
    class_t = np.max([emd_per_class(ct[s]) for s in sens], axis=0).astype(np.float64)
    ok = np.ones(ct.n_classes, dtype=bool)
    if k is not None:
        ok &= at_least(sizes, k)
    if l is not None:
        ok &= at_least(class_l, l)
    if t is not None:
        ok &= at_most(class_t, t)  # the audit's own test, so that every certificate re-audits
    feasible = np.flatnonzero(ok)

    q = len(qi_list)
    a_pos = np.array(sorted(qi_list.index(c) for c in editable_list), dtype=np.int64)
    n_pos = np.setdiff1d(np.arange(q), a_pos)
    a_mask = mask_words(a_pos, q)
    n_mask = mask_words(n_pos, q)
    class_words = pack(binary.class_bits)

    # ---- the faces
    face_bits = _face_bits(frame, qi_list, binary)
    n = len(frame)
    words = pack(face_bits)

    # Feasibility depends only on the non-editable QIs (the noise never touches them).
    face_key, all_key, feas_key = row_ids(words & n_mask, class_words & n_mask,
                                           class_words[feasible] & n_mask)
    n_groups = int(max(face_key.max(initial=-1), all_key.max(initial=-1),
                       feas_key.max(initial=-1))) + 1
    has_feasible = np.zeros(n_groups, dtype=bool)
    has_feasible[feas_key] = True
    face_ok = has_feasible[face_key]
    reasons = np.full(n, None, dtype=object)
    if not face_ok.all():
        best_k = np.zeros(n_groups, dtype=np.int64)
        best_l = np.zeros(n_groups, dtype=np.int64)
        best_t = np.full(n_groups, np.inf)
        np.maximum.at(best_k, all_key, sizes)
        np.maximum.at(best_l, all_key, class_l)
        np.minimum.at(best_t, all_key, class_t)
        n_classes_agree = np.bincount(all_key, minlength=n_groups)
        bad = np.flatnonzero(~face_ok)
        context = Context(requirements=requirements, editable=editable_list, qi=qi_list,
                           n_feasible=len(feasible), n_classes=ct.n_classes,
                           n_faces=n, n_bad=len(bad))
        if on_infeasible == "raise":
            j = int(bad[0])
            g = face_key[j]
            raise infeasible_error(frame.index[j], j, int(best_k[g]), int(best_l[g]),
                                    float(best_t[g]), int(n_classes_agree[g]), context)
        # One message per group of faces with the same non-editable QIs, shared by its faces.
        groups, which = np.unique(face_key[bad], return_inverse=True)
        text = np.empty(len(groups), dtype=object)
        text[:] = [infeasible_reason(int(best_k[g]), int(best_l[g]), float(best_t[g]),
                                      int(n_classes_agree[g]), context)[0]
                   for g in groups]  # a loop over distinct infeasible groups, for messages only
        reasons[bad] = text[which.reshape(-1)]

    # ---- step 1: randomised response on the editable bits
    rng = np.random.default_rng(seed_value)
    noisy = words.copy()
    if eps is not None:
        keep = keep_probability(eps / len(a_pos))
        step = max(1, DP_CHUNK_DRAWS // len(a_pos))
        for start in range(0, n, step):  # a loop over chunks of faces
            stop = min(n, start + step)
            # The table release's mechanism on each editable bit: a reported 1 is a flip.
            flips = np.zeros((stop - start, q), dtype=bool)
            no_flip = np.zeros((stop - start, len(a_pos)), dtype=np.int64)
            flips[:, a_pos] = respond(no_flip, 2, keep, rng.random(no_flip.shape)).astype(bool)
            noisy[start:stop] ^= pack(flips)
    tie_u = rng.random(n)

    # ---- step 2: projection onto the nearest feasible class
    target_class = np.full(n, -1, dtype=np.int64)
    todo = np.flatnonzero(face_ok)
    if len(todo) and len(feasible):
        chosen = _nearest(noisy[todo], class_words[feasible], a_mask, n_mask, q, tie_u[todo])
        target_class[todo] = feasible[chosen]
    if (target_class[todo] < 0).any():  # pragma: no cover - feasibility was checked above
        raise AssertionError("PPAS: a feasible face got no target")

    # ---- outputs
    has_target = target_class >= 0
    tgt = np.maximum(target_class, 0)
    target_words = np.where(has_target[:, None], class_words[tgt], words)
    changed = unpack(words ^ target_words, q)
    rows = ct.class_first_row[tgt]
    targets = reference[qi_list].iloc[rows]
    targets.index = frame.index
    if not has_target.all():
        targets = _with_missing(targets, ~has_target)
    changed_frame = pd.DataFrame(changed, index=frame.index, columns=pd.Index(qi_list))

    eps_spent = 0.0 if eps is None else eps
    per_attr = 0.0 if eps is None else eps / len(a_pos)
    asked = requirements.asked()
    common = dict(requirements=asked, sensitive=tuple(sens), epsilon=eps_spent,
                  epsilon_per_attribute=per_attr, dp=eps is not None,
                  guarantee=GUARANTEE if eps is not None else NO_DP_GUARANTEE,
                  editable=tuple(qi_list[i] for i in a_pos), seeded=seed_value is not None,
                  reference_size=int(ct.n_records))
    certificates = PPASCertificates(index=frame.index, changed=changed, feasible=has_target,
                                    k=sizes[tgt], l=class_l[tgt], t=class_t[tgt],
                                    reasons=reasons, common=common, qi=qi_list)
    n_changed = changed.sum(axis=1)
    summary = {
        "schema": SCHEMA,
        "requirements": {key: json_value(v) for key, v in asked.items()},
        "sensitive": list(sens),
        "ordered": [s for s in sens if ct[s].ordered],
        "qi": list(qi_list),
        "editable": list(common["editable"]),
        "reference_size": int(ct.n_records),
        "reference_classes": int(ct.n_classes),
        "feasible_classes": int(len(feasible)),
        "faces": int(n),
        "targeted": int(has_target.sum()),
        "skipped": int(n - has_target.sum()),
        "mean_changed": float(n_changed[has_target].mean()) if has_target.any() else 0.0,
        "epsilon": eps_spent,
        "epsilon_per_attribute": per_attr,
        "dp": eps is not None,
        "guarantee": common["guarantee"],
        "seeded": seed_value is not None,
    }
    return PPASResult(targets=targets, changed=changed_frame, certificates=certificates,
                      summary=summary)


def _with_missing(targets: pd.DataFrame, missing: np.ndarray) -> pd.DataFrame:
    """Blank the rows of skipped faces, moving int and bool columns to pandas' nullable dtypes."""
    out = {}
    for name in targets.columns:  # a loop over columns
        col = targets[name]
        kind = col.dtype.kind if isinstance(col.dtype, np.dtype) else None
        if kind in ("i", "u"):
            col = col.astype(f"{'U' if kind == 'u' else ''}Int{col.dtype.itemsize * 8}")
        elif kind == "b":
            col = col.astype("boolean")
        col = col.copy()
        col[missing] = None if kind not in ("i", "u", "b") else pd.NA
        out[name] = col
    return pd.DataFrame(out, index=targets.index)
