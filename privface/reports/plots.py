"""The charts of the HTML reports, drawn with matplotlib's Agg renderer into PNG bytes.

Only :class:`matplotlib.figure.Figure` is used, never ``pyplot``: no global state, no GUI backend,
safe in any thread, and the caller's matplotlib settings are left alone. Labels that come from data
are passed through :func:`label`, because matplotlib would read ``$...$`` in a column name as
mathematics (and fail on a malformed one).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .deps import require_matplotlib

PASS, FAIL, NEUTRAL, LIGHT = "#1a7f37", "#c62828", "#3b6ea8", "#9fb7d6"


def label(text: object, width: int = 32) -> str:
    """Data text made safe for a matplotlib label: ``$`` escaped, long text shortened.

    Examples
    --------
    >>> label("price $5 and $6"), label("x" * 40, width=10)
    ('price \\\\$5 and \\\\$6', 'xxxxxxxxx…')
    """
    text = str(text)
    if len(text) > width:
        text = text[:width - 1] + "\u2026"
    return text.replace("$", r"\$")


def _percent(share: float) -> str:
    """A share as a bar label: a small share that is not zero must not read as 0.0%.

    Examples
    --------
    >>> [_percent(v) for v in (0, 0.0004, 0.25)]
    ['', '<0.1%', '25.0%']
    """
    if share <= 0:
        return ""
    return "<0.1%" if share < 0.0005 else f"{share:.1%}"


def _figure(width: float, height: float):
    require_matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    return buffer.getvalue()


def _tidy(ax, axis: str = "y") -> None:
    """Light grid behind the bars, no top or right frame."""
    ax.grid(axis=axis, alpha=0.3)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)


def size_bins(max_size: int) -> np.ndarray:
    """Bin edges for class sizes: one bin per size up to 10, then 1-2-5 steps.

    Examples
    --------
    >>> size_bins(4).tolist()
    [1, 2, 3, 4, 5]
    >>> size_bins(120).tolist()
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 50, 100, 200]
    >>> size_bins(10).tolist()[-2:]
    [10, 11]
    """
    max_size = max(int(max_size), 1)
    if max_size <= 10:
        return np.arange(1, max_size + 2)
    edges = list(range(1, 11))
    step = 10
    while edges[-1] <= max_size:
        for m in (2, 5, 10):
            if edges[-1] <= max_size:
                edges.append(step * m)
        step *= 10
    return np.array(sorted(set(edges)))


def _bin_labels(edges: np.ndarray) -> list[str]:
    return [f"{a}" if b - a == 1 else f"{a}-{b - 1}" for a, b in zip(edges[:-1], edges[1:])]


def class_size_histogram(sizes: np.ndarray, k: int | None = None) -> bytes:
    """Equivalence classes per class size; classes smaller than ``k`` in red.

    Examples
    --------
    >>> class_size_histogram(np.array([1, 1, 2, 5, 30]), k=2)[:4]
    b'\\x89PNG'
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    edges = size_bins(int(sizes.max()) if sizes.size else 1)
    counts = np.histogram(sizes, bins=edges)[0]
    fig = _figure(7.5, 3.2)
    ax = fig.add_subplot()
    colors = [FAIL if k is not None and lo < k else NEUTRAL for lo in edges[:-1]]
    x = np.arange(len(counts))
    ax.bar(x, counts, color=colors)
    ax.set_xticks(x, _bin_labels(edges), rotation=45 if len(x) > 12 else 0, ha="right"
                  if len(x) > 12 else "center")
    for tick, color in zip(ax.get_xticklabels(), colors):
        tick.set_color(FAIL if color == FAIL else "#222")
    ax.set_xlabel("class size (records)")
    ax.set_ylabel("classes")
    if counts.max(initial=0) > 50 * max(1, np.median(counts[counts > 0])):
        ax.set_yscale("log")
        ax.set_ylabel("classes (log scale)")
    title = f"{len(sizes):,} equivalence classes"
    if k is not None:
        title += f"; red: smaller than k = {k}"
    ax.set_title(title, fontsize=11)
    _tidy(ax, "y")
    return _png(fig)


#: Class sizes that start each risk band of :func:`risk_distribution` (a record's risk is one
#: over its class size). Fixed bands make the charts of two reports comparable.
RISK_BANDS = np.array([1, 2, 3, 4, 5, 6, 10, 20, 50, 100])


def _band_labels(starts: np.ndarray) -> list[str]:
    labels = []
    for a, b in zip(starts, list(starts[1:]) + [None]):
        if b is None:
            labels.append(f"1/{a} or less")
        elif b - a == 1:
            labels.append("1" if a == 1 else f"1/{a}")
        else:
            labels.append(f"1/{a}\u20131/{b - 1}")
    return labels


def risk_distribution(sizes: np.ndarray, threshold: float) -> bytes:
    """Share of records per prosecutor-risk band ``1/|E|``; bands above ``threshold`` in red.

    Each record's risk is one over its class size, so the records are the class sizes' weights.

    Examples
    --------
    >>> _band_labels(RISK_BANDS)[:2] + _band_labels(RISK_BANDS)[-2:]
    ['1', '1/2', '1/50–1/99', '1/100 or less']
    >>> risk_distribution(np.array([1, 4, 10]), 0.2)[:4]
    b'\\x89PNG'
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    edges = np.append(RISK_BANDS, max(int(sizes.max(initial=1)), RISK_BANDS[-1]) + 1)
    records = np.histogram(sizes, bins=edges, weights=sizes)[0]
    share = records / max(records.sum(), 1)
    fig = _figure(7.5, 3.2)
    ax = fig.add_subplot()
    x = np.arange(len(share))
    bars = ax.bar(x, share * 100, color=[FAIL if 1 / lo > threshold else NEUTRAL
                                         for lo in RISK_BANDS])
    ax.bar_label(bars, [_percent(v) for v in share], fontsize=8, padding=2)
    ax.set_xticks(x, _band_labels(RISK_BANDS), fontsize=9, rotation=30, ha="right")
    for tick, lo in zip(ax.get_xticklabels(), RISK_BANDS):
        tick.set_color(FAIL if 1 / lo > threshold else "#222")  # red even where bars are tiny
    ax.set_xlabel("re-identification risk of a record (1 / size of its class)")
    ax.set_ylabel("% of records")
    ax.set_ylim(0, max(share.max(initial=0) * 100 * 1.15, 1))
    at_risk = share[1 / RISK_BANDS > threshold].sum()
    ax.set_title(f"{at_risk:.1%} of records above the risk threshold {threshold:g} (red)",
                 fontsize=11)
    _tidy(ax, "y")
    return _png(fig)


def distinguishing_power_chart(power: pd.DataFrame, top: int = 20) -> bytes:
    """Sample uniques removed, and k reached, when each quasi-identifier is dropped.

    Examples
    --------
    >>> frame = pd.DataFrame({"attribute": ["a", "b"], "k": [2, 1], "uniques_removed": [4, 0]})
    >>> distinguishing_power_chart(frame)[:4]
    b'\\x89PNG'
    """
    shown = power.head(top).iloc[::-1]
    names = [label(a, 28) for a in shown["attribute"]]
    fig = _figure(9, 0.8 + 0.28 * len(shown))
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=[3, 2])
    y = np.arange(len(shown))
    left.barh(y, shown["uniques_removed"], color=NEUTRAL)
    left.set_yticks(y, names, fontsize=9)
    left.set_xlabel("sample uniques removed by dropping it")
    right.barh(y, shown["k"], color=LIGHT)
    right.set_xlabel("k without it")
    for ax in (left, right):
        _tidy(ax, "x")
    return _png(fig)


def share_bars(values: Mapping[str, float], *, xlabel: str, limit: float | None = None,
               top: int = 40, percent: bool = True, higher_is_worse: bool = True) -> bytes:
    """Horizontal bars of one share per name (sorted, largest first), with an optional limit line.

    Bars beyond ``limit`` (above it when ``higher_is_worse``, else below) are red.

    Examples
    --------
    >>> share_bars({"k": 0.5, "l": 0.1}, xlabel="records breaking it")[:4]
    b'\\x89PNG'
    """
    items = [(k, float(v)) for k, v in values.items() if v is not None and np.isfinite(v)]
    items.sort(key=lambda kv: -kv[1] if higher_is_worse else kv[1])
    items = items[:top][::-1]
    scale = 100 if percent else 1
    fig = _figure(8, 0.8 + 0.26 * max(len(items), 1))
    ax = fig.add_subplot()
    y = np.arange(len(items))
    vals = np.array([v for _, v in items])
    bad = (vals > limit if higher_is_worse else vals < limit) if limit is not None else \
        np.zeros(len(vals), bool)
    bars = ax.barh(y, vals * scale, color=np.where(bad, FAIL, NEUTRAL))
    # Values beside the bars: a bar of 0.2% is invisible on a 0-100 axis, its number is not.
    ax.bar_label(bars, [(_percent(v) or "0%") if percent else f"{v:.4g}" for v in vals],
                 fontsize=8,
                 padding=3)
    ax.set_yticks(y, [label(k, 30) for k, _ in items], fontsize=9)
    ax.set_ylim(-0.6, len(items) - 0.4)
    ax.set_xlabel(xlabel + (" (%)" if percent else ""))
    if limit is not None:
        ax.axvline(limit * scale, color="#333", linestyle="--", linewidth=1)
    if percent:
        ax.set_xlim(0, 112)  # room for the labels of full bars
        ax.set_xticks([0, 20, 40, 60, 80, 100])
    _tidy(ax, "x")
    return _png(fig)


def leakage_chart(rates: Mapping[str, Mapping[str, object]]) -> bytes:
    """Grouped bars per recognizer: each rate with its 95% interval and chance level.

    ``rates`` maps a recognizer to ``{label: (value, (low, high) or None, chance or None)}``.

    Examples
    --------
    >>> leakage_chart({"sface": {"top-1": (0.5, (0.3, 0.7), 0.25), "match": (0.8, None, None)}}
    ...               )[:4]
    b'\\x89PNG'
    """
    recognizers = list(rates)
    measures = list(dict.fromkeys(m for r in rates.values() for m in r))
    fig = _figure(8, 3.8)
    ax = fig.add_subplot()
    width = 0.8 / max(len(recognizers), 1)
    palette = [NEUTRAL, "#d08c2b", "#6a4c93", "#2a9d8f"]
    x = np.arange(len(measures))
    for i, name in enumerate(recognizers):
        offset = (i - (len(recognizers) - 1) / 2) * width
        labelled = False
        for j, m in enumerate(measures):
            value, interval, chance = rates[name].get(m, (None, None, None))
            if value is None:
                continue
            xs = x[j] + offset
            value = float(value)
            ax.bar(xs, value, width * 0.95, color=palette[i % len(palette)],
                   label=None if labelled else label(name))
            labelled = True
            # The value at the foot of the bar, clear of the interval's whiskers at its top;
            # above the bar when it is too short: a rate of 0 is a bar too.
            inside = value > 0.12
            ax.text(xs, 0.02 if inside else value + 0.01, f"{value:.2f}", ha="center",
                    va="bottom", fontsize=8, color="white" if inside else "#222")
            if interval is not None:  # only rates with an interval get error bars
                lo, hi = float(interval[0]), float(interval[1])
                ax.errorbar(xs, float(value), yerr=[[max(value - lo, 0)], [max(hi - value, 0)]],
                            color="#222", capsize=3, linewidth=1)
            if chance is not None:
                ax.hlines(float(chance), xs - width / 2, xs + width / 2, colors="#333",
                          linestyles="dotted", linewidth=1.5)
    ax.set_xticks(x, [label(m, 40) for m in measures], fontsize=9)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of faces")
    ax.set_title("lower is more private; bars: 95% interval; dotted: chance level", fontsize=10)
    # Below the axis: a legend inside would hide bars that reach 1.
    ax.legend(frameon=False, fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.12),
              ncol=max(len(recognizers), 1))
    _tidy(ax, "y")
    return _png(fig)


def _histograms(series: Mapping[str, Sequence[float]], width: float, height: float):
    """One histogram panel per series (finite values only); returns the figure and, per panel,
    ``(axes, name, values)``."""
    fig = _figure(width * max(len(series), 1), height)
    axes = np.atleast_1d(fig.subplots(1, max(len(series), 1)))
    panels = []
    for ax, (name, values) in zip(axes, series.items()):
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        if values.size:
            ax.hist(values, bins=min(30, max(5, values.size // 3)), color=LIGHT,
                    edgecolor=NEUTRAL)
        ax.set_ylabel("pairs")
        ax.spines[["top", "right"]].set_visible(False)
        panels.append((ax, name, values))
    return fig, panels


def distance_histograms(distances: Mapping[str, np.ndarray],
                        thresholds: Mapping[str, Mapping[str, float | None]]) -> bytes:
    """Per recognizer: distance of each anonymized face to its own original, with thresholds.

    A face left of a threshold line is still matched to its original at that false-accept rate.

    Examples
    --------
    >>> distance_histograms({"sface": np.array([0.2, 0.9, 1.1])}, {"sface": {"1e-3": 0.5}})[:4]
    b'\\x89PNG'
    """
    fig, panels = _histograms(distances, 4.2, 3.3)
    for ax, name, _ in panels:
        for i, (far, thr) in enumerate((thresholds.get(name) or {}).items()):
            if thr is not None and np.isfinite(thr):
                ax.axvline(thr, color=FAIL, linestyle=["--", ":", "-."][i % 3], linewidth=1.2,
                           label=f"threshold at FAR {far}")
        ax.set_title(label(name), fontsize=10)
        ax.set_xlabel("distance to own original")
    handles, labels = panels[0][0].get_legend_handles_labels() if panels else ([], [])
    if handles:  # one legend under the panels: inside, it would hide bars
        fig.legend(handles, labels, loc="outside lower center", ncol=len(handles),
                   frameon=False, fontsize=8)
    return _png(fig)


def quality_histograms(scores: Mapping[str, Sequence[float]]) -> bytes:
    """One histogram per image-quality score (PSNR, SSIM, MS-SSIM) over the pairs.

    Examples
    --------
    >>> quality_histograms({"PSNR (dB)": [20.0, 25.0], "SSIM": [0.5, 0.7]})[:4]
    b'\\x89PNG'
    """
    fig, panels = _histograms(scores, 3.2, 2.6)
    for ax, name, values in panels:
        if values.size:
            ax.axvline(values.mean(), color="#333", linestyle="--", linewidth=1)
        ax.set_title(f"{label(name)}: mean {values.mean():.4g}" if values.size else
                     label(name), fontsize=10)
    return _png(fig)
