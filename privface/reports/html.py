"""The page skeleton of every HTML report: escaping, CSS, sections, tables, figures.

Everything that comes from data (file names, column names, values, messages) is untrusted: a
column may be called ``<script>``. Every helper here escapes what it is given unless it is
:class:`Markup`, the one type that marks HTML this package built itself. The page is one file with
inline CSS and no JavaScript; images are ``data:`` URIs, so it opens offline and can be mailed.
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

import numpy as np

from privface.base import __version__


class Markup(str):
    """HTML built by this package: trusted, never escaped again.

    Examples
    --------
    >>> esc(Markup("<b>x</b>")), esc("<b>x</b>")
    ('<b>x</b>', '&lt;b&gt;x&lt;/b&gt;')
    """


def esc(value: Any) -> Markup:
    """Escape ``value`` for HTML text and attributes, unless it already is :class:`Markup`.

    Examples
    --------
    >>> esc('a "b" & <c>')
    'a &quot;b&quot; &amp; &lt;c&gt;'
    """
    if isinstance(value, Markup):
        return value
    return Markup(escape("" if value is None else str(value), quote=True))


def fmt(value: Any, spec: str | None = None) -> str:
    """A number for people: ints with thousands separators, floats to 4 significant digits.

    ``None`` and NaN become ``-``; infinity ``inf``. ``spec`` is a format spec for floats
    (``".1%"``, ``".3f"``).

    Examples
    --------
    >>> fmt(12345), fmt(0.123456), fmt(float("inf")), fmt(None), fmt(0.25, ".1%"), fmt("inf")
    ('12,345', '0.1235', 'inf', '-', '25.0%', 'inf')
    """
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, str):
        return value
    v = float(value)
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return format(v, spec) if spec else f"{v:.4g}"


def join(parts: Iterable[Any]) -> Markup:
    """Concatenate, escaping every part that is not :class:`Markup`.

    Examples
    --------
    >>> join(["<", Markup("<br>")])
    '&lt;<br>'
    """
    return Markup("".join(esc(p) for p in parts))


def tag(name: str, content: Any = "", **attrs: Any) -> Markup:
    """One element; attribute values are escaped (``class_`` gives ``class``).

    Examples
    --------
    >>> tag("td", "<x>", class_="num")
    '<td class="num">&lt;x&gt;</td>'
    """
    rendered = "".join(f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"'
                       for k, v in attrs.items() if v is not None)
    return Markup(f"<{name}{rendered}>{esc(content)}</{name}>")


def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], *,
          numeric: Sequence[int] = (), id: str | None = None,
          row_classes: Sequence[str | None] | None = None) -> Markup:
    """An HTML table; cells are escaped unless :class:`Markup`; ``numeric`` columns align right.

    Examples
    --------
    >>> html = table(["name", "n"], [["<a>", 3]], numeric=[1])
    >>> html[html.index("<tbody>"):]
    '<tbody><tr><td>&lt;a&gt;</td><td class="num">3</td></tr></tbody></table>'
    """
    numeric = set(numeric)
    head = join(tag("th", h, class_="num" if i in numeric else None)
                for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cells = join(tag("td", c if isinstance(c, Markup) else fmt(c) if not isinstance(c, str)
                         else c, class_="num" if i in numeric else None)
                     for i, c in enumerate(row))
        cls = row_classes[r] if row_classes is not None else None
        body.append(tag("tr", cells, class_=cls))
    return tag("table", join([tag("thead", tag("tr", head)), tag("tbody", join(body))]), id=id)


def definitions(items: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> Markup:
    """A two-column list of facts (``<dl>``); values are formatted with :func:`fmt`.

    Examples
    --------
    >>> definitions({"records": 1200})
    '<dl class="facts"><dt>records</dt><dd>1,200</dd></dl>'
    """
    pairs = items.items() if isinstance(items, Mapping) else items
    return tag("dl", join(join([tag("dt", k), tag("dd", v if isinstance(v, (Markup, str))
                                                   else fmt(v))]) for k, v in pairs),
               class_="facts")


def badge(passed: bool | None, text: str | None = None) -> Markup:
    """A coloured verdict: green when ``passed``, red when not, grey when unknown.

    Examples
    --------
    >>> badge(True)
    '<span class="badge pass">PASSED</span>'
    """
    cls = "unknown" if passed is None else ("pass" if passed else "fail")
    label = text or {"pass": "PASSED", "fail": "FAILED", "unknown": "NOT CHECKED"}[cls]
    return tag("span", label, class_=f"badge {cls}")


def data_uri(data: bytes, mime: str) -> str:
    """A ``data:`` URI holding ``data`` (base64).

    Examples
    --------
    >>> data_uri(b"hi", "text/plain")
    'data:text/plain;base64,aGk='
    """
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def figure(png: bytes, alt: str, caption: str | None = None) -> Markup:
    """An embedded PNG figure with its caption.

    Examples
    --------
    >>> figure(b"\\x89PNG", "chart", "A <chart>").startswith('<figure><img src="data:image/png')
    True
    """
    image = Markup(f'<img src="{esc(data_uri(png, "image/png"))}" alt="{esc(alt)}">')
    return tag("figure", join([image, tag("figcaption", caption) if caption else ""]))


def prose(text: Any) -> Markup:
    """Text with its `backticked` commands set as ``<code>``; everything escaped.

    Examples
    --------
    >>> prose("run `privface audit <x>` again")
    'run <code>privface audit &lt;x&gt;</code> again'
    """
    if isinstance(text, Markup):
        return text
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: plain text
        return esc(text)
    return join(tag("code", part) if i % 2 else part for i, part in enumerate(parts))


def note(text: Any, kind: str = "note") -> Markup:
    """A highlighted paragraph (``note``, ``warn`` or ``bad``); `backticks` mark commands.

    Examples
    --------
    >>> note("careful", "warn")
    '<p class="callout warn">careful</p>'
    """
    return tag("p", prose(text), class_=f"callout {kind}")


_CSS = """
:root { --fg: #1d232b; --muted: #5b6572; --line: #d9dee5; --pass: #1a7f37; --fail: #c62828;
        --warn: #9a6700; --bg-alt: #f5f7fa; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); margin: 0; background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; }
header.top { border-bottom: 3px solid var(--line); padding-bottom: 12px; margin-bottom: 8px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 10px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 20px 0 8px; }
p.meta { color: var(--muted); margin: 2px 0; overflow-wrap: anywhere; }
.verdict { font-size: 20px; margin: 14px 0 4px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff;
         font-weight: 700; letter-spacing: .04em; font-size: 0.85em; }
.badge.pass { background: var(--pass); } .badge.fail { background: var(--fail); }
.badge.unknown { background: var(--muted); }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 14px; max-width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }
th { background: var(--bg-alt); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.fail td { background: #fdecea; } tr.pass td { background: #eaf5ec; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 18px; margin: 8px 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
figure { margin: 10px 0 18px; } figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.callout { border-left: 4px solid var(--muted); background: var(--bg-alt); padding: 8px 12px; }
.callout.warn { border-color: var(--warn); background: #fff8e5; }
.callout.bad { border-color: var(--fail); background: #fdecea; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 14px; }
.pair { border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
.pair.alert { border: 2px solid var(--fail); }
.pair .imgs { display: flex; gap: 6px; } .pair .imgs div { flex: 1; text-align: center; }
.pair img { width: 100%; height: auto; border-radius: 3px; background: var(--bg-alt); }
.pair .label { font-size: 11px; color: var(--muted); text-transform: uppercase; }
.pair .name { font-weight: 600; font-size: 13px; overflow-wrap: anywhere; margin-top: 4px; }
.pair .caption { font-size: 12px; color: var(--muted); }
.missing { display: flex; align-items: center; justify-content: center; min-height: 110px;
           background: var(--bg-alt); color: var(--muted); font-size: 12px; padding: 6px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
ul.compact { margin: 4px 0; padding-left: 22px; }
code { font: 13px ui-monospace, "DejaVu Sans Mono", monospace; background: var(--bg-alt);
       padding: 1px 4px; border-radius: 3px; }
"""


class Page:
    """One report: a title, a verdict, then sections in order.

    Examples
    --------
    >>> page = Page("privface audit", meta=["data: <x>.csv"])
    >>> page.verdict(False, "2 requirements fail")
    >>> page.section("requirements", "Requirements", table(["a"], [["b"]]))
    >>> html = page.render()
    >>> "&lt;x&gt;.csv" in html and 'id="requirements"' in html and "<script" not in html
    True
    """

    def __init__(self, title: str, *, meta: Sequence[Any] = ()) -> None:
        self.title = title
        self.meta = list(meta)
        self._verdict: Markup | None = None
        self._sections: list[Markup] = []

    def verdict(self, passed: bool | None, text: Any = "", *, label: str | None = None) -> None:
        """The verdict line under the title (``label`` replaces PASSED / FAILED)."""
        self._verdict = tag("p", join([badge(passed, label), " ", text]), class_="verdict",
                            id="verdict")

    def section(self, id: str, heading: str, *content: Any) -> None:
        """A section with an ``id`` (for links and tests), a heading and its content."""
        self._sections.append(tag("section", join([tag("h2", heading), *content]), id=id))

    def render(self) -> str:
        """The whole page as one self-contained HTML document."""

        when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        head = join([Markup('<meta charset="utf-8">'),
                     Markup('<meta name="viewport" content="width=device-width, '
                            'initial-scale=1">'),
                     tag("title", self.title), Markup(f"<style>{_CSS}</style>")])
        top = tag("header", join([tag("h1", self.title),
                                  *(tag("p", m, class_="meta") for m in self.meta),
                                  self._verdict or ""]), class_="top")
        footer = tag("footer", f"Generated by privface {__version__} on {when}. "
                               "A self-contained file: no scripts, no external resources.")
        body = tag("main", join([top, *self._sections, footer]))
        return "<!DOCTYPE html>\n" + tag("html", join([tag("head", head), tag("body", body)]),
                                         lang="en") + "\n"
