"""Read and write face-attribute tables: CelebA's official text layout, CSV, TSV and Parquet.

Every reader returns a pandas DataFrame with one row per face. Bad input never surfaces as a pandas
or NumPy traceback: it is an :class:`~privface.base.errors.InputError` that names the file,
the 1-based line and the column at fault and says what was expected.

The normal path is vectorised (pandas' C parser, NumPy checks). Only when a check fails does a
reader scan the file line by line, to point at the *first* offending line with an exact message;
that costs nothing for good files and keeps the messages precise for bad ones.

Writers are atomic (:func:`privface.base.files.atomic_write`): they write a temporary file in the
target's folder, flush it to disk and rename it over the target, so an error (or a crash) never
leaves a half-written table behind.
"""

from .celeba import (ATTRIBUTE_VALUES, is_celeba_attribute_file, join_identities,
                     read_celeba_attributes, read_celeba_identities, write_celeba_attributes)
from .tables import TableFormat, detect_format, read_table, read_table_text, write_table

__all__ = [
    "ATTRIBUTE_VALUES",
    "TableFormat",
    "detect_format",
    "is_celeba_attribute_file",
    "join_identities",
    "read_celeba_attributes",
    "read_celeba_identities",
    "read_table",
    "read_table_text",
    "write_celeba_attributes",
    "write_table",
]
