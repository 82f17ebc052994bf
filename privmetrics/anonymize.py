"""Anonymising a whole table: Mondrian partitioning with generalisation to ``"*"``.

``anonymize_table`` returns a table whose own audit passes by construction. It splits the table
top-down (Mondrian, LeFevre et al. 2006): a partition is split on a quasi-identifier only when every
resulting part still satisfies k-anonymity, l-diversity and t-closeness; in the final partitions a
QI that is constant keeps its value and every other QI is generalised to ``"*"``. Partitions
differ on the attribute that split them, so each partition is exactly one equivalence class of the
output, and every class meets the requirements. No record is dropped.

The work is done on *atoms*, the distinct (QI values, sensitive values) combinations with their
counts, so a million-row table with few distinct faces costs what its distinct faces cost. Each
level of the partitioning is vectorised over all partitions and processed attribute by attribute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from privface.base.errors import InputError
from privface.base.jsonenc import json_value

from .audit import Requirements, audit
from .closeness import emd_per_class
from .compare import at_least, at_most
from .contingency import Ordered, SensitiveCounts, check_columns, encode_sensitive, ordered_orders
from .dp import randomized_response
from .encoding import GENERALISED, ColumnCodes, combine_codes, encode_column
from .report import AuditReport


@dataclass(frozen=True)
class InformationLoss:
    """How much the anonymisation cost.

    Attributes
    ----------
    generalised_cells : int
        QI cells replaced by ``"*"``.
    generalised_share : float
        ``generalised_cells / (records * QIs)``.
    suppressed_rows : int
        Records removed (Mondrian removes none; kept for comparison with other methods).
    n_classes : int
        Equivalence classes of the output.
    discernibility : int
        Sum over classes of ``|E|^2`` (lower is better; n for a table of uniques).
    average_class_size : float
        ``records / classes``.
    normalized_average_class_size : float
        ``(records / classes) / k`` (LeFevre's C_avg; 1 is ideal), ``nan`` without k.
    per_attribute : dict
        Share of records generalised, per QI.
    """

    generalised_cells: int
    generalised_share: float
    suppressed_rows: int
    n_classes: int
    discernibility: int
    average_class_size: float
    normalized_average_class_size: float
    per_attribute: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        out = {k: json_value(v) for k, v in self.__dict__.items() if k != "per_attribute"}
        out["per_attribute"] = {k: float(v) for k, v in self.per_attribute.items()}
        return out


@dataclass
class AnonymizationResult:
    """The anonymised table and what it cost.

    Attributes
    ----------
    table : pandas.DataFrame
        Same index and columns as the input; QI cells generalised to ``"*"`` where needed.
    loss : InformationLoss
    audit : AuditReport
        The output's own audit with the requested requirements (``audit.passed`` is True).
    qi, sensitive : list of str
    requirements : dict
    dp : dict or None
        The randomised-response release summary when ``epsilon`` was given.
    """

    table: pd.DataFrame
    loss: InformationLoss
    audit: AuditReport
    qi: list[str]
    sensitive: list[str]
    requirements: dict
    dp: dict | None = None

    def certificate(self) -> dict:
        """A JSON-ready certificate: requirements asked and reached, loss, DP budget."""
        return {
            "schema": "privface.anonymize-certificate/1",
            "method": "mondrian-generalisation",
            "generalised_value": GENERALISED,
            "quasi_identifiers": self.qi,
            "sensitive": self.sensitive,
            "requirements": {k: json_value(v) for k, v in self.requirements.items()},
            "reached": {k: json_value(v) for k, v in self.audit.metrics.items()},
            "passed": bool(self.audit.passed),
            "information_loss": self.loss.to_dict(),
            "differential_privacy": self.dp or {"epsilon": 0, "applied": False},
            "n_records": int(len(self.table)),
        }


def anonymize_table(
    data: pd.DataFrame,
    qi: Sequence[str],
    sensitive: Sequence[str] | str | None = None,
    *,
    k: int | None = None,
    l: int | None = None,
    t: float | None = None,
    ordered: Ordered = (),
    epsilon: float | None = None,
    seed: int | None = None,
) -> AnonymizationResult:
    """Generalise a table until it meets k-anonymity, l-diversity and t-closeness.

    Parameters
    ----------
    data : pandas.DataFrame
        The table; not modified.
    qi : sequence of str
        Quasi-identifiers to generalise.
    sensitive : str or sequence of str, optional
        Sensitive attributes (needed for ``l`` and ``t``); every one must meet them.
    k, l, t : optional
        The requirements (at least one).
    ordered : str, sequence of str or mapping, optional
        Sensitive attributes measured with the ordered distance for ``t`` (a mapping gives a
        column's order of values, as for :func:`~.contingency.contingency_table`).
    epsilon : float, optional
        First apply randomised response to the QIs with this total budget (split evenly), so the
        released QIs are also epsilon-locally differentially private.
    seed : int, optional
        Seed for the randomised response (OS entropy when omitted).

    Returns
    -------
    AnonymizationResult

    Raises
    ------
    InputError
        When no generalisation can meet the requirements (the whole table, as one class, already
        fails them: fewer records than k, fewer than l distinct sensitive values), or for bad
        columns and requirements.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Male": [1, 1, 1, 1, -1, -1, -1, -1],
    ...                    "Young": [1, 1, -1, -1, 1, -1, 1, -1],
    ...                    "identity": [1, 2, 3, 4, 5, 6, 7, 8]})
    >>> result = anonymize_table(df, ["Male", "Young"], "identity", k=4)
    >>> result.table["Male"].tolist(), result.table["Young"].tolist()[:2]
    ([1, 1, 1, 1, -1, -1, -1, -1], ['*', '*'])
    >>> result.audit.passed, result.loss.n_classes
    (True, 2)
    """
    qi_list, sens, _ = check_columns(data, qi, sensitive, ordered)
    if k is None and l is None and t is None:
        raise InputError("anonymize_table needs at least one requirement (k, l or t)")
    if (l is not None or t is not None) and not sens:
        raise InputError("l-diversity and t-closeness need a sensitive attribute")
    orders = ordered_orders(ordered)
    # Validate the requirements the same way audit() does, before any work.
    Requirements(k=k, l=l, t=t)
    dp_summary = None
    source = data
    if epsilon is not None:
        # CelebA-style attributes have the domain {-1, 1} even where a column shows one value.
        domains = {c: [-1, 1] for c in qi_list
                   if pd.api.types.is_integer_dtype(data[c]) and data[c].isin([-1, 1]).all()}
        release = randomized_response(data, qi_list, epsilon, seed=seed, domains=domains or None)
        source = release.table
        dp_summary = release.to_dict()

    qi_codes = [encode_column(source[c]) for c in qi_list]
    sa_codes = [_dense(encode_sensitive(source[c], c, ordered=c in orders, order=orders.get(c)))
                for c in sens]
    atoms, counts, row_atom = _atoms(qi_codes, sa_codes, len(source))
    partition = _mondrian(atoms, counts, len(qi_codes), [c.cardinality for c in sa_codes],
                          k=k, l=l, t=t, ordered=[s in orders for s in sens])
    row_part = partition[row_atom]
    table, generalised = _generalise(source, qi_list, qi_codes, row_part)
    report = audit(table, qi_list, sens, k=k, l=l, t=t, ordered=orders, worst=5)
    if not report.passed:  # a bug, never a user error: the construction guarantees it
        raise AssertionError("anonymised table fails its own audit: " +
                             ", ".join(r.name for r in report.failed))
    # Each partition is one class of the output (the audit above counted them the same way).
    loss = _information_loss(generalised, np.bincount(row_part), k)
    requirements = {name: v for name, v in (("k", k), ("l", l), ("t", t)) if v is not None}
    return AnonymizationResult(table=table, loss=loss, audit=report, qi=qi_list, sensitive=sens,
                               requirements=requirements, dp=dp_summary)


def _dense(codes: ColumnCodes) -> ColumnCodes:
    """Codes renumbered 0..m-1 over the values present, keeping their order.

    Offset-coded integers can leave unused codes between values; the ordered EMD counts values,
    so the gaps must go.
    """
    present, dense = np.unique(codes.codes, return_inverse=True)
    return ColumnCodes(dense.reshape(-1).astype(np.int64), len(present), codes.decode(present))


def _atoms(qi_codes: list[ColumnCodes], sa_codes: list[ColumnCodes], n: int):
    """Distinct rows over QIs and SAs: codes (atoms x columns), counts, and each row's atom.

    Rows are told apart by their combined integer key (one 1-D sort), not by a row-wise unique.
    """
    columns = qi_codes + sa_codes
    keys = combine_codes(columns, n).keys
    _, first, row_atom, counts = np.unique(keys, return_index=True, return_inverse=True,
                                           return_counts=True)
    atoms = (np.column_stack([c.codes[first].astype(np.int64) for c in columns]) if columns
             else np.zeros((len(first), 0), np.int64))
    return atoms, counts.astype(np.int64), row_atom.reshape(-1)


def _mondrian(atoms: np.ndarray, counts: np.ndarray, n_qi: int, sa_cards: list[int], *,
              k: int | None, l: int | None, t: float | None, ordered: list[bool]) -> np.ndarray:
    """Partition the atoms top-down; returns the final partition index of each atom."""
    sa_cols = [atoms[:, n_qi + i] for i in range(len(sa_cards))]
    overall = [np.bincount(s, weights=counts, minlength=m).astype(np.int64)
               for s, m in zip(sa_cols, sa_cards)]
    part = np.zeros(len(atoms), dtype=np.int64)
    whole_ok = _parts_ok(part, 1, counts, sa_cols, sa_cards, overall, k, l, t, ordered)
    if not whole_ok[0]:
        raise InputError(_infeasible_message(counts, sa_cols, k, l))
    base = int(atoms.max()) + 2 if atoms.size else 2
    active = np.ones(1, dtype=bool)  # partitions that may still split
    while True:
        # Only atoms of partitions that may still split take part in this level.
        act = active[part]
        if not act.any():
            break
        ids, sub_part = np.unique(part[act], return_inverse=True)
        sub_part = sub_part.reshape(-1)
        sub_atoms, sub_counts = atoms[act], counts[act]
        sub_sa = [s[act] for s in sa_cols]
        best_attr = _best_splits(sub_atoms, sub_counts, sub_part, len(ids), n_qi, sub_sa,
                                 sa_cards, overall, k, l, t, ordered)
        splitting = best_attr >= 0
        value = np.where(splitting[sub_part],
                         sub_atoms[np.arange(len(sub_atoms)), np.maximum(best_attr[sub_part], 0)],
                         -1)
        children, child_of_atom = np.unique(sub_part * base + value + 1, return_inverse=True)
        parent = children // base
        is_new = splitting[parent]
        new_ids = np.where(is_new, len(active) + np.cumsum(is_new) - 1, ids[parent])
        part[act] = new_ids[child_of_atom.reshape(-1)]
        # A partition that found no valid split never will: its candidates depend only on its
        # own atoms. The children of a split may split again.
        active[ids] = False
        active = np.concatenate([active, np.ones(int(is_new.sum()), dtype=bool)])
    return np.unique(part, return_inverse=True)[1].reshape(-1)


def _best_splits(atoms, counts, part, n_parts, n_qi, sa_cols, sa_cards, overall, k, l, t,
                 ordered) -> np.ndarray:
    """For each partition, the QI whose split is valid and most balanced (-1 when none is)."""
    best_score = np.full(n_parts, -np.inf)
    best_attr = np.full(n_parts, -1)
    for j in range(n_qi):
        values = atoms[:, j]
        card = int(values.max()) + 1
        child_ids, child_of_atom = np.unique(part * card + values, return_inverse=True)
        child_of_atom = child_of_atom.reshape(-1)
        child_part = child_ids // card
        n_children = np.bincount(child_part, minlength=n_parts)
        ok = _parts_ok(child_of_atom, len(child_ids), counts, sa_cols, sa_cards, overall,
                       k, l, t, ordered)
        all_ok = np.bincount(child_part, weights=~ok, minlength=n_parts) == 0
        sizes = np.bincount(child_of_atom, weights=counts, minlength=len(child_ids))
        smallest = np.full(n_parts, np.inf)
        np.minimum.at(smallest, child_part, sizes)
        # Prefer the most balanced split: it keeps the most detail in both halves.
        score = np.where(all_ok & (n_children > 1), smallest, -np.inf)
        better = score > best_score
        best_score[better] = score[better]
        best_attr[better] = j
    return best_attr


def _parts_ok(part: np.ndarray, n_parts: int, counts: np.ndarray, sa_cols: list[np.ndarray],
              sa_cards: list[int], overall: list[np.ndarray], k, l, t, ordered) -> np.ndarray:
    """Whether each part meets k, l and t (every sensitive attribute), vectorised over parts.

    l and t come from the engine's own per-class functions on the parts' counts, so a part
    accepted here has exactly the values the output's audit will compute.
    """
    sizes = np.bincount(part, weights=counts, minlength=n_parts)
    ok = np.ones(n_parts, dtype=bool)
    if k is not None:
        ok &= at_least(sizes, k)
    if l is None and t is None:
        return ok
    for s, m, total, is_ordered in zip(sa_cols, sa_cards, overall, ordered):
        cell_ids, cell_of_atom = np.unique(part * m + s, return_inverse=True)
        cell_count = np.bincount(cell_of_atom.reshape(-1), weights=counts,
                                 minlength=len(cell_ids)).astype(np.int64)
        cell_part = cell_ids // m
        sc = SensitiveCounts(name="", values=pd.RangeIndex(m), ordered=is_ordered,
                             overall=total, cell_class=cell_part, cell_value=cell_ids % m,
                             cell_count=cell_count,
                             class_start=np.searchsorted(cell_part, np.arange(n_parts + 1)))
        if l is not None:
            ok &= at_least(sc.distinct, l)
        if t is not None:
            ok &= at_most(emd_per_class(sc), t)
    return ok


def _infeasible_message(counts, sa_cols, k, l) -> str:
    n = int(counts.sum())
    problems = []
    if k is not None and n < k:
        problems.append(f"the table has {n} records, fewer than k={k}")
    if l is not None:
        distinct = min(len(np.unique(s)) for s in sa_cols)
        if distinct < l:
            problems.append(f"a sensitive attribute has only {distinct} distinct values, "
                            f"fewer than l={l}")
    detail = "; ".join(problems) or "the requirements are not met even by the whole table"
    return f"no generalisation can meet the requirements: {detail}"


def _generalise(source: pd.DataFrame, qi: list[str], qi_codes: list[ColumnCodes],
                row_part: np.ndarray) -> tuple[pd.DataFrame, dict[str, int]]:
    """Replace, in each partition, the QIs that are not constant by ``"*"``.

    Returns the table and the number of generalised cells per QI.
    """
    out = source.copy()
    n_parts = int(row_part.max()) + 1
    generalised = {}
    for name, col in zip(qi, qi_codes):
        codes = col.codes.astype(np.int64)
        lo = np.full(n_parts, np.iinfo(np.int64).max)
        hi = np.full(n_parts, -1)
        np.minimum.at(lo, row_part, codes)
        np.maximum.at(hi, row_part, codes)
        varies = (lo != hi)[row_part]
        generalised[name] = int(varies.sum())
        if generalised[name]:
            column = source[name]
            # "*" fits a text column as it is (pandas 3 reads text as `str`: keep that dtype);
            # any other column becomes object to hold it beside its values.
            column = column.copy() if isinstance(column.dtype, pd.StringDtype) else \
                column.astype(object)
            column[varies] = GENERALISED
            out[name] = column
    return out, generalised


def _information_loss(generalised: dict[str, int], sizes: np.ndarray, k: int | None
                      ) -> InformationLoss:
    n = int(sizes.sum())
    cells = sum(generalised.values())
    n_classes = len(sizes)
    return InformationLoss(
        generalised_cells=cells,
        generalised_share=cells / (n * len(generalised)),
        suppressed_rows=0,
        n_classes=n_classes,
        discernibility=int((sizes.astype(np.int64) ** 2).sum()),
        average_class_size=n / n_classes,
        normalized_average_class_size=(n / n_classes) / k if k else float("nan"),
        per_attribute={q: c / n for q, c in generalised.items()},
    )
