"""PPAS for a released set of faces (the photo model v2 of docs/photo-pipeline.md).

:func:`select_attributes` picks each face's target in isolation, against the classes of a
reference population. A photo set is released as a whole, though, and what an attacker reads off
it is the table of released faces: one row per face, the controlled attributes it shows, and the
person it hides. :func:`assign_targets` therefore chooses every face's target *for the whole run*:

* **k** (and distinct **l**): every released class holds faces of at least k (l) different persons;
* **t** (the paper's Eq. 5, as its Algorithm 1 uses it): for every controlled attribute, the share
  of released faces that show it is within t of its share in the reference population (for a
  binary attribute the EMD is that absolute difference);
* each face gets the nearest such target: among all assignments that meet the requirements, one
  that changes the fewest attributes in total.

Method. Randomised response (epsilon) first, on the editable attributes, exactly as
:func:`select_attributes` does; the rest is post-processing of the noisy vectors and keeps the
epsilon-local-DP guarantee. Faces with the same person, noisy vector and locked attributes form
one *slot* and move together. The assignment is a mixed-integer program solved exactly by HiGHS
(:func:`scipy.optimize.milp`): a binary ``a[u, y]`` sends slot ``u`` to class ``y`` (only classes
that agree with the slot on its locked attributes: not editable, or read with too little
confidence), a binary ``open[y]`` says class ``y`` is released, and ``z[p, y]`` in [0, 1] counts
person ``p`` in class ``y`` (``z <= sum of p's slots in y``, so the sum of ``z`` over persons is
the number of distinct persons). Constraints: one class per slot; ``sum_p z[p, y] >= k open[y]``;
``|sum_{u, y: y_j = 1} n_u a[u, y] / N - r_j| <= t`` for each attribute j. Objective: the number
of changed attributes, ``sum n_u hamming(u, y) a[u, y]``. With 5 binary QIs there are at most 32
classes, so a run of thousands of faces has a few thousand slots and solves in seconds.

Never collapse silently: an assignment that releases one class where the faces showed several,
that erases a value the faces showed (no released face keeps it: every man made a woman), or
that changes more than ``max_changed_share`` of the controlled attributes per face on average,
is reported as a collapse (:attr:`Assignment.collapsed`); the caller refuses it unless the user
allows it. No assignment at all: :attr:`Assignment.feasible` is False and
:attr:`Assignment.best` holds the best reachable k and t, to say what to relax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from privface.base.errors import InputError
from privface.base.validation import check_epsilon, check_seed

from ..dp import keep_probability, respond

#: Seconds HiGHS may spend on one assignment; the result says when it stopped at the limit.
TIME_LIMIT = 120.0


@dataclass
class Assignment:
    """What :func:`assign_targets` chose.

    Attributes
    ----------
    targets : DataFrame
        One row per face (the input's index), the controlled attributes as 1 / -1: what each
        face should show. All rows are filled when :attr:`feasible`, none otherwise.
    noisy : DataFrame or None
        The randomised response's output (None without epsilon).
    changed : ndarray of int
        Attributes changed per face (target against the original reading).
    feasible : bool
        Whether an assignment meets every requirement.
    reached : dict
        Of the chosen assignment: ``k`` and ``l`` (fewest distinct persons in a released class),
        ``t`` (largest |share - reference share| over the attributes), ``shares`` and
        ``reference_shares`` per attribute, ``classes`` (released classes and their face counts),
        ``mean_changed``.
    best : dict
        When infeasible: the best reachable ``k`` with the requested t, and the best ``t``
        with the requested k (None where not computed).
    collapsed : list of str
        Why the assignment counts as a collapse (empty when it does not).
    solver : dict
        HiGHS's status, seconds, and the size of the program.
    epsilon : float
    seeded : bool
    """

    targets: pd.DataFrame
    noisy: pd.DataFrame | None
    changed: np.ndarray
    feasible: bool
    reached: dict
    best: dict = field(default_factory=dict)
    collapsed: list = field(default_factory=list)
    solver: dict = field(default_factory=dict)
    epsilon: float = 0.0
    seeded: bool = False


def binary_matrix(table: pd.DataFrame, what: str) -> np.ndarray:
    """1 / -1 (or 1 / 0, or bool) columns as a bool matrix; anything else is an InputError.

    Examples
    --------
    >>> binary_matrix(pd.DataFrame({"Male": [1, -1], "Young": [0, 1]}), "faces").tolist()
    [[True, False], [False, True]]
    """
    values = table.to_numpy()
    if values.dtype == bool:
        return values.copy()
    numeric = pd.DataFrame(table).apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = ~np.isin(numeric, (1.0, -1.0, 0.0))
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise InputError(f"{what}: the quasi-identifiers must be binary (1 / -1, 1 / 0 or "
                         f"True / False), got {table.iat[row, column]!r}",
                         row=table.index[row], column=table.columns[column])
    return numeric > 0


def _candidates(q: int) -> np.ndarray:
    """Every class vector over q binary attributes, ``(2^q, q)`` bool."""
    codes = np.arange(2 ** q)
    return ((codes[:, None] >> np.arange(q)[::-1]) & 1).astype(bool)


@dataclass
class _Program:
    """The slots and the class options of one assignment problem."""

    slot_bits: np.ndarray  # (s, q) noisy vector of each slot
    slot_person: np.ndarray  # (s,) person code
    slot_count: np.ndarray  # (s,) faces
    pair_slot: np.ndarray  # (m,) which slot each option belongs to
    pair_class: np.ndarray  # (m,) which class (row of ``classes``)
    pair_cost: np.ndarray  # (m,) attributes changed per face
    classes: np.ndarray  # (c, q) bool
    n_persons: int


def _program(bits: np.ndarray, locked: np.ndarray, persons: np.ndarray,
             max_distance: int | None) -> tuple[_Program, np.ndarray]:
    n, q = bits.shape
    keys = np.concatenate([persons[:, None], bits, locked], axis=1).astype(np.int64)
    unique, slot_of_face, counts = np.unique(keys, axis=0, return_inverse=True,
                                             return_counts=True)
    slot_of_face = slot_of_face.reshape(-1)
    slot_person = unique[:, 0]
    slot_bits = unique[:, 1:1 + q].astype(bool)
    slot_locked = unique[:, 1 + q:].astype(bool)
    classes = _candidates(q)
    # Options: the classes that agree with each slot on its locked attributes.
    differs = slot_bits[:, None, :] != classes[None, :, :]  # (s, c, q)
    options = ~(differs & slot_locked[:, None, :]).any(axis=2)
    if max_distance is not None:
        options &= differs.sum(axis=2) <= max_distance
    pair_slot, pair_class = np.nonzero(options)
    pair_cost = differs[pair_slot, pair_class].sum(axis=1)
    used = np.unique(pair_class)
    remap = np.full(len(classes), -1)
    remap[used] = np.arange(len(used))
    program = _Program(slot_bits, slot_person, counts, pair_slot, remap[pair_class],
                       pair_cost, classes[used], int(persons.max()) + 1 if n else 0)
    return program, slot_of_face


def _solve(program: _Program, *, k: int, shares: np.ndarray | None, t: float | None,
           n_faces: int, time_limit: float, slack: bool = False, group_k: int = 1,
           group_of_class: np.ndarray | None = None):
    """Solve one assignment; returns (class per slot or None, status dict, t_slack)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    m = len(program.pair_slot)
    n_slots = len(program.slot_count)
    n_classes = len(program.classes)
    # Persons per class: one z per (person, class) pair that some option reaches.
    pair_person = program.slot_person[program.pair_slot]
    pc_key = pair_person * n_classes + program.pair_class
    pc_unique, pair_pc = np.unique(pc_key, return_inverse=True)
    n_pc = len(pc_unique)
    pc_class = pc_unique % n_classes
    use_k = k > 1
    n_open = n_classes if use_k else 0
    n_z = n_pc if use_k else 0
    use_groups = group_k > 1
    if group_of_class is None:
        group_of_class = np.arange(n_classes)
    n_groups = int(group_of_class.max()) + 1 if n_classes else 0
    n_f = n_groups if use_groups else 0
    f0 = m + n_open + n_z  # F[y]: the faces of class y (for the groups' balance)
    n_var = m + n_open + n_z + n_f + (1 if slack else 0)
    cost = np.zeros(n_var)
    cost[:m] = program.pair_cost * program.slot_count[program.pair_slot]
    if slack:
        # The slack's price outweighs every change: minimise t first, changes second.
        cost[-1] = float(program.slot_count.sum()) * program.classes.shape[1] + 1.0
    integrality = np.zeros(n_var)
    integrality[:m + n_open] = 1
    upper = np.ones(n_var)
    upper[f0:f0 + n_f] = float(n_faces)
    if slack:
        upper[-1] = 1.0
    rows, cols, vals, lo, hi = [], [], [], [], []
    row = 0

    def add(r_cols, r_vals, r_rows, low, high, count):
        nonlocal row
        rows.append(r_rows + row)
        cols.append(r_cols)
        vals.append(r_vals)
        lo.append(np.broadcast_to(low, count).astype(float))
        hi.append(np.broadcast_to(high, count).astype(float))
        row += count

    # Each slot takes exactly one class.
    add(np.arange(m), np.ones(m), program.pair_slot, 1.0, 1.0, n_slots)
    if use_k:
        slots_per_class = np.bincount(program.pair_class, minlength=n_classes)
        # sum_u a[u, y] - M open[y] <= 0
        add(np.concatenate([np.arange(m), m + np.arange(n_classes)]),
            np.concatenate([np.ones(m), -slots_per_class.astype(float)]),
            np.concatenate([program.pair_class, np.arange(n_classes)]), -np.inf, 0.0, n_classes)
        # z[p, y] - sum_{u of p} a[u, y] <= 0
        add(np.concatenate([m + n_open + np.arange(n_pc), np.arange(m)]),
            np.concatenate([np.ones(n_pc), -np.ones(m)]),
            np.concatenate([np.arange(n_pc), pair_pc]), -np.inf, 0.0, n_pc)
        # k open[y] - sum_p z[p, y] <= 0
        add(np.concatenate([m + np.arange(n_classes), m + n_open + np.arange(n_pc)]),
            np.concatenate([np.full(n_classes, float(k)), -np.ones(n_pc)]),
            np.concatenate([np.arange(n_classes), pc_class]), -np.inf, 0.0, n_classes)
    if use_groups:
        # A group generator cuts each class into groups of group_k different persons, one face
        # each: possible exactly when no person has more than 1/group_k of the class's faces
        # (floor(F / k) >= c  <=>  F >= k c for an integer c), which also gives the class
        # group_k persons.
        weights = program.slot_count[program.pair_slot].astype(float)
        pair_group = group_of_class[program.pair_class]
        add(np.concatenate([np.arange(m), f0 + np.arange(n_groups)]),
            np.concatenate([weights, -np.ones(n_groups)]),
            np.concatenate([pair_group, np.arange(n_groups)]), 0.0, 0.0, n_groups)
        pg_unique, pair_pg = np.unique(pair_person * n_groups + pair_group, return_inverse=True)
        add(np.concatenate([np.arange(m), f0 + pg_unique % n_groups]),
            np.concatenate([group_k * weights, -np.ones(len(pg_unique))]),
            np.concatenate([pair_pg, np.arange(len(pg_unique))]), -np.inf, 0.0,
            len(pg_unique))
    if (t is not None or slack) and shares is not None:
        q = program.classes.shape[1]
        shows = program.classes[program.pair_class]  # (m, q)
        pair_idx, attr = np.nonzero(shows)
        weights = program.slot_count[program.pair_slot[pair_idx]].astype(float) / n_faces
        if slack:
            # |share_j - r_j| <= t_slack, as two rows per attribute.
            add(np.concatenate([pair_idx, np.full(q, n_var - 1)]),
                np.concatenate([weights, -np.ones(q)]),
                np.concatenate([attr, np.arange(q)]), -np.inf, shares, q)
            add(np.concatenate([pair_idx, np.full(q, n_var - 1)]),
                np.concatenate([weights, np.ones(q)]),
                np.concatenate([attr, np.arange(q)]), shares, np.inf, q)
        else:
            # A hair's breadth of room: shares are ratios of integers, t is a float.
            add(pair_idx, weights, attr, shares - t - 1e-9, shares + t + 1e-9, q)
    matrix = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                        shape=(row, n_var)).tocsr()
    result = milp(cost, integrality=integrality, bounds=Bounds(np.zeros(n_var), upper),
                  constraints=LinearConstraint(matrix, np.concatenate(lo), np.concatenate(hi)),
                  options={"time_limit": time_limit, "mip_rel_gap": 1e-6})
    status = {"status": int(result.status), "message": str(result.message),
              "variables": int(n_var), "constraints": int(row), "slots": int(n_slots)}
    if result.x is None:
        return None, status, None
    chosen = result.x[:m] > 0.5
    slot_class = np.full(n_slots, -1)
    slot_class[program.pair_slot[chosen]] = program.pair_class[chosen]
    return slot_class, status, (float(result.x[-1]) if slack else None)


def _measure(classes: np.ndarray, persons: np.ndarray, shares: np.ndarray | None,
             changed: np.ndarray, names: Sequence[str]) -> dict:
    """k, l, t and the class table of a released set (``classes``: (n, q) bool)."""
    n = len(classes)
    if n == 0:
        return {"k": None, "l": None, "t": None, "classes": [], "mean_changed": None}
    vectors, codes = np.unique(classes, axis=0, return_inverse=True)
    codes = codes.reshape(-1)
    pairs = np.unique(np.stack([codes, persons]), axis=1)
    distinct = np.bincount(pairs[0], minlength=len(vectors))
    released = classes.mean(axis=0)
    table = [{"class": {name: int(1 if v else -1) for name, v in zip(names, vector)},
              "faces": int(count), "persons": int(d)}
             for vector, count, d in zip(vectors, np.bincount(codes), distinct)]
    table.sort(key=lambda entry: -entry["faces"])
    out = {"k": int(distinct.min()), "l": int(distinct.min()),
           "shares": {name: round(float(s), 6) for name, s in zip(names, released)},
           "classes": table, "n_classes": len(vectors),
           "mean_changed": round(float(changed.mean()), 4)}
    if shares is not None:
        out["reference_shares"] = {name: round(float(s), 6) for name, s in zip(names, shares)}
        out["t"] = round(float(np.abs(released - shares).max()), 6)
    return out


def assign_targets(faces: pd.DataFrame, persons: Sequence, *, editable: Sequence[str],
                   reference_shares: pd.Series | None = None, k: int | None = None,
                   l: int | None = None, t: float | None = None,
                   uncertain: pd.DataFrame | None = None, epsilon: float | None = None,
                   seed: int | None = None, max_changed_share: float = 0.5,
                   original: pd.DataFrame | None = None, max_distance: int | None = 2,
                   group_k: int | None = None,
                   group_by: Sequence[str] | None = None,
                   time_limit: float = TIME_LIMIT) -> Assignment:
    """Choose every face's target so that the released set meets k, l and t (v2 model).

    Parameters
    ----------
    faces : DataFrame
        One row per face, the controlled attributes as 1 / -1 (or 1 / 0, bool): what each face
        shows.
    persons : sequence
        The person of each face (identities, or a recognizer's clusters).
    editable : sequence of str
        The attributes the generator can change; the others keep the face's value.
    reference_shares : Series, optional
        Share of the reference population showing each attribute; default: the faces' own.
    k, l : int, optional
        Persons per released class (distinct l counts persons too).
    t : float, optional
        Largest allowed |share among released faces - reference share|, per attribute.
    uncertain : DataFrame of bool, optional
        Readings too uncertain to act on (same shape as ``faces``): those attributes keep the
        face's reading, as if not editable.
    epsilon : float, optional
        Randomised-response budget per face over the editable attributes.
    seed : int, optional
        For reproducibility only; default OS entropy.
    max_changed_share : float
        An assignment that changes more than this share of the controlled attributes per face
        on average counts as a collapse.
    original : DataFrame, optional
        What the faces showed before a randomised response the caller already drew
        (:func:`randomised_response`): ``faces`` is then its output, ``epsilon`` must be None,
        and changes are counted against ``original``.
    max_distance : int or None
        A face's target differs from its (noisy) vector in at most this many attributes: the
        generator has to realise every change, and two are already a different-looking person.
        None: any number.
    group_k : int, optional
        The k of a group generator that cuts each released class into groups of group_k
        different persons, one face each (k-Same): no person may hold more than 1/group_k of a
        class's faces (which also gives each class group_k persons).
    group_by : sequence of str, optional
        The attributes the group generator groups by (those it realises); default all. The
        balance above then holds per group class (the faces' targets over these attributes).
    time_limit : float
        Seconds for the solver.

    Returns
    -------
    Assignment

    Examples
    --------
    Four persons, two of them in a class of their own; with k = 2 each keeps its class:

    >>> faces = pd.DataFrame({"Male": [1, 1, -1, -1], "Young": [1, 1, 1, 1]})
    >>> out = assign_targets(faces, ["a", "b", "c", "d"], editable=["Male"], k=2, t=0.2)
    >>> out.feasible, out.targets["Male"].tolist(), out.reached["t"]
    (True, [1, 1, -1, -1], 0.0)

    With k = 3 someone must move, but t = 0.2 forbids any move that shifts the share of men by
    more than 0.2 (one face of four is 0.25): no assignment, and the best reachable numbers:

    >>> out = assign_targets(faces, ["a", "b", "c", "d"], editable=["Male"], k=3, t=0.2)
    >>> out.feasible, out.best
    (False, {'k': 2, 't': 0.5})
    """
    names = [str(c) for c in faces.columns]
    persons = np.asarray(persons)
    if len(persons) != len(faces):
        raise ValueError(f"{len(persons)} person labels for {len(faces)} faces")
    unknown = [e for e in editable if e not in names]
    if unknown:
        raise InputError(f"editable attribute(s) {unknown} are not among the controlled "
                         f"attributes {names}", column=unknown[0])
    for name, value in (("k", k), ("l", l)):
        if value is not None and (int(value) != value or value < 1):
            raise InputError(f"{name} must be a positive integer, got {value}")
    if t is not None and not 0 <= t <= 1:
        raise InputError(f"t must be between 0 and 1 for binary attributes, got {t}")
    if not 0 < max_changed_share <= 1:
        raise InputError(f"max_changed_share must be in (0, 1], got {max_changed_share}")
    epsilon = None if epsilon is None else check_epsilon(epsilon, none_skips=True)
    seed = check_seed(seed)
    if original is not None and epsilon is not None:
        raise ValueError("pass either epsilon or an original drawn before, not both")
    bits_in = binary_matrix(faces, "faces")
    original = bits_in if original is None else binary_matrix(original[faces.columns], "original")
    n, q = original.shape
    locked = np.broadcast_to(~np.isin(names, list(editable)), (n, q)).copy()
    if uncertain is not None:
        locked |= np.asarray(uncertain, bool)
    shares = None
    if reference_shares is not None:
        shares = np.asarray(pd.Series(reference_shares).reindex(names), np.float64)
        if np.isnan(shares).any():
            missing = [name for name, s in zip(names, shares) if np.isnan(s)]
            raise InputError(f"the reference gives no share for {missing}", column=missing[0])
    elif t is not None:
        shares = original.mean(axis=0) if n else np.zeros(q)

    bits = bits_in
    noisy = None
    if epsilon:
        noisy = randomised_response(faces, editable, epsilon, seed)
        bits = binary_matrix(noisy, "faces")

    _, person_codes = np.unique(persons.astype(str), return_inverse=True)
    person_codes = person_codes.reshape(-1)
    need = max(k or 1, l or 1)
    if n == 0:
        empty = pd.DataFrame(columns=names, index=faces.index, dtype=np.int8)
        return Assignment(empty, noisy, np.zeros(0, int), True, _measure(
            original, person_codes, shares, np.zeros(0), names), epsilon=epsilon or 0.0,
            seeded=seed is not None)
    program, slot_of_face = _program(bits, locked, person_codes, max_distance)
    group_k = int(group_k or 1)
    columns = [names.index(c) for c in (names if group_by is None else group_by)]
    _, group_of_class = np.unique(program.classes[:, columns], axis=0, return_inverse=True)
    group_of_class = group_of_class.reshape(-1)
    solve = dict(shares=shares, t=t, n_faces=n, time_limit=time_limit, group_k=group_k,
                 group_of_class=group_of_class)
    slot_class, status, _ = _solve(program, k=need, **solve)
    info = {"solver": "HiGHS mixed-integer program (scipy.optimize.milp)", **status}
    if slot_class is None or (slot_class < 0).any():
        best = _best_reachable(program, need=need, **solve)
        empty = pd.DataFrame(np.nan, index=faces.index, columns=names)
        return Assignment(empty, noisy, np.zeros(n, int), False,
                          {"requirements": {"k": k, "l": l, "t": t}}, best, [], info,
                          epsilon or 0.0, seed is not None)
    chosen = program.classes[slot_class[slot_of_face]]
    changed = (chosen != original).sum(axis=1)
    targets = pd.DataFrame(np.where(chosen, 1, -1).astype(np.int8), index=faces.index,
                           columns=names)
    reached = _measure(chosen, person_codes, shares, changed, names)
    collapsed = []
    shown = len(np.unique(original, axis=0))
    if reached["n_classes"] == 1 and shown > 1:
        collapsed.append(f"every face is released in one class, where the faces showed "
                         f"{shown} classes")
    if q and changed.mean() > max_changed_share * q:
        collapsed.append(f"{changed.mean():.2f} of the {q} controlled attributes change per "
                         f"face on average, more than {max_changed_share:.0%} of them")
    # A value the faces showed that no released face keeps: a group erased (every man made a
    # woman), however few faces changed in all.
    shown, kept = original.sum(axis=0), chosen.sum(axis=0)
    for value, count, gone in ((1, shown, (shown > 0) & (kept == 0)),
                               (-1, n - shown, (shown < n) & (kept == n))):
        collapsed += [f"no released face keeps {names[j]} = {value}, which {count[j]} of the "
                      f"faces showed" for j in np.flatnonzero(gone)]
    return Assignment(targets, noisy, changed, True, reached, {}, collapsed, info,
                      epsilon or 0.0, seed is not None)


def randomised_response(faces: pd.DataFrame, editable: Sequence[str], epsilon: float,
                        seed: int | None = None) -> pd.DataFrame:
    """PPAS's step 1 on a table of faces: each editable attribute is kept with probability
    ``e^(eps/|A|) / (1 + e^(eps/|A|))`` and flipped otherwise (:func:`~privface.privmetrics.dp.
    respond`); epsilon-local-DP for each face restricted to the editable attributes. OS entropy
    unless ``seed`` is given. Returns 1 / -1 int8 columns.

    Examples
    --------
    >>> faces = pd.DataFrame({"Male": [1, -1] * 500, "Young": [1] * 1000})
    >>> noisy = randomised_response(faces, ["Male"], epsilon=1.0, seed=0)
    >>> bool((noisy["Young"] == 1).all()), round(float((noisy["Male"] != faces["Male"]).mean()), 1)
    (True, 0.3)
    """
    epsilon = check_epsilon(epsilon)
    seed = check_seed(seed)
    names = [str(c) for c in faces.columns]
    bits = binary_matrix(faces, "faces")
    columns = np.flatnonzero(np.isin(names, list(editable)))
    if len(columns):
        rng = np.random.default_rng(seed)
        keep = keep_probability(epsilon / len(columns))
        draws = rng.random((len(bits), len(columns)))
        bits[:, columns] = respond(bits[:, columns].astype(np.int64), 2, keep, draws
                                   ).astype(bool)
    return pd.DataFrame(np.where(bits, 1, -1).astype(np.int8), index=faces.index, columns=names)


def _best_reachable(program: _Program, *, need: int, shares: np.ndarray | None,
                    t: float | None, n_faces: int, time_limit: float, group_k: int = 1,
                    group_of_class: np.ndarray | None = None) -> dict:
    """The best k reachable with the requested t, and the best t with the requested k."""
    best: dict = {"k": None, "t": None}
    for candidate in range(max(need, group_k) - 1, 0, -1):  # k is small: a few solves
        slot_class, _, _ = _solve(program, k=min(need, candidate), shares=shares, t=t,
                                  n_faces=n_faces, time_limit=time_limit,
                                  group_k=min(group_k, candidate),
                                  group_of_class=group_of_class)
        if slot_class is not None and (slot_class >= 0).all():
            best["k"] = candidate
            break
    if shares is not None:
        slot_class, _, reached_t = _solve(program, k=need, shares=shares, t=t,
                                          n_faces=n_faces, time_limit=time_limit, slack=True,
                                          group_k=group_k, group_of_class=group_of_class)
        if slot_class is not None:
            best["t"] = round(float(reached_t), 6)
    return best
