"""The image pipeline: a folder of photos in, private photos and their certificates out.

:func:`anonymize_photos` composes the parts (docs/design.md, "Data flow of a photo run"): stage I
from :mod:`privface.attributes`, PPAS from :mod:`privface.privmetrics.ppas`, a generator from
:mod:`privface.generators`, and paste-back. ``privface anonymize PHOTOS_DIR`` is this call.
"""

from .records import PhotoCertificate, RunSummary
from .run import PhotoRun, PhotoRunReport, anonymize_photos
from .targets import DEFAULT_QIS

__all__ = ["DEFAULT_QIS", "PhotoCertificate", "PhotoRun", "PhotoRunReport", "RunSummary",
           "anonymize_photos"]
