"""Stage I of AnonymousNet: faces in.

Face detection, alignment, identity embeddings and facial-attribute prediction turn photos into the
table that :mod:`privface.privmetrics` audits. This part needs the ``faces`` extra
(``pip install "privface[faces]"``) and is being built (see the issue on face analysis); nothing in
it is importable yet beyond this package.
"""
