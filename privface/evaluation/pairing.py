"""Pairing original and anonymized photos by file name."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path




def pair_photos(originals: Sequence[Path], anonymized: Sequence[Path]
                ) -> tuple[list[tuple[Path, Path]], list[dict]]:
    """Pair photos by file name; a name with another suffix pairs when it is unambiguous.

    ``000001.jpg`` pairs with ``000001.jpg`` first, else with ``000001.png`` (anonymizers often
    write PNG). Photos left without a partner come back as skipped rows with the reason.

    Returns
    -------
    pairs : list of (original, anonymized) paths, in the originals' order
    skipped : list of dicts with ``file``, ``folder`` (``originals`` or ``anonymized``), ``reason``

    Examples
    --------
    >>> pairs, skipped = pair_photos([Path("a.jpg"), Path("b.jpg"), Path("c.jpg")],
    ...                              [Path("a.jpg"), Path("b.png"), Path("d.png")])
    >>> [(o.name, a.name) for o, a in pairs]
    [('a.jpg', 'a.jpg'), ('b.jpg', 'b.png')]
    >>> [(s["file"], s["reason"]) for s in skipped]
    [('c.jpg', 'no anonymized photo with this name'), ('d.png', 'no original with this name')]
    """
    by_name = {p.name: p for p in anonymized}
    matched: dict[Path, Path] = {o: by_name[o.name] for o in originals if o.name in by_name}
    used = set(matched.values())
    free_by_stem: dict[str, list[Path]] = defaultdict(list)
    for p in anonymized:
        if p not in used:
            free_by_stem[p.stem].append(p)
    waiting_by_stem: dict[str, list[Path]] = defaultdict(list)
    for o in originals:
        if o not in matched:
            waiting_by_stem[o.stem].append(o)
    skipped: list[dict] = []
    for stem, waiting in waiting_by_stem.items():
        free = free_by_stem.get(stem, [])
        if len(waiting) == 1 and len(free) == 1:
            matched[waiting[0]] = free[0]
            used.add(free[0])
        elif not free:
            skipped += [{"file": o.name, "folder": "originals",
                         "reason": "no anonymized photo with this name"} for o in waiting]
        else:
            names = ", ".join(sorted(p.name for p in waiting + free))
            skipped += [{"file": p.name, "folder": folder,
                         "reason": f"ambiguous names: cannot tell which of {names} pair up"}
                        for folder, group in (("originals", waiting), ("anonymized", free))
                        for p in group]
            used.update(free)
    skipped += [{"file": p.name, "folder": "anonymized", "reason": "no original with this name"}
                for p in anonymized if p not in used]
    pairs = [(o, matched[o]) for o in originals if o in matched]
    return pairs, skipped
