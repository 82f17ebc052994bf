"""Errors the engine raises for bad input.

Every input problem is an :class:`InputError`: it names the file, row or column at fault and what
was expected, so that the command line can print it and exit with status 2.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class InputError(ValueError):
    """Bad input: a missing column, an unreadable file, a malformed row, ...

    Parameters
    ----------
    message : str
        What is wrong and what was expected.
    file : str, optional
        The file at fault, when there is one.
    row : int, optional
        The 1-based line (for text files) or row number at fault.
    column : str, optional
        The column at fault.

    Examples
    --------
    >>> str(InputError("expected 1 or -1, found 2", file="attrs.txt", row=7, column="Male"))
    "attrs.txt, line 7, column 'Male': expected 1 or -1, found 2"
    """

    message: str
    file: str | None = None
    row: int | None = None
    column: str | None = None

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"line {self.row}" if self.file is not None else f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message
