"""The base layer: what every part of privface builds on, importing nothing of the project.

* :mod:`privface.base.errors`: :class:`~privface.base.errors.InputError`, the one error for bad
  input (the command line maps it to exit status 2).
* :mod:`privface.base.files`: atomic writes, writes committed together, output-path checks.
* :mod:`privface.base.jsonenc`: the one JSON encoding of numpy values, infinities and NaN.
* :mod:`privface.base.validation`: checks of budgets and seeds, "did you mean" hints.
* :mod:`privface.base.workers`: spawned worker pools that never outlive their parent.

See docs/design.md for the layers above it.
"""

__version__ = "0.1.0"  # the one place the version is written besides pyproject.toml
