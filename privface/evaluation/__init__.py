"""Evaluating an anonymizer: the numbers a user compares (identity leakage, quality, utility).

:func:`evaluate_anonymization` pairs each original photo with its anonymized version (same file
name, or the same name with another suffix) and measures:

* **Identity leakage**, per face recognizer (SFace and dlib's ResNet by default). A threshold on the
  recognizer's distance is set from impostor pairs (every two distinct originals; with identities,
  every two originals of different persons) at each false-accept rate (FAR). The *match rate* at
  that FAR is the share of pairs whose anonymized face is within the threshold of its own original;
  *top-1 re-identification* is the share whose nearest original in the gallery of all originals is
  its own original (with identities: shows the same person), against a chance level of one over the
  gallery (with identities: the average share of the gallery showing the person). With identities
  it is also given per person (``top1_reid_person``: each person's hit rate, averaged over persons,
  the rate k-Same bounds by 1/k), with 95% intervals for both.
* **Image quality** of whole photos: PSNR, SSIM, MS-SSIM (:mod:`privface.quality`).
* **Utility**: whether a face is still detected in the anonymized photo, and how many of the 40
  CelebA attributes the attribute model predicts the same for the anonymized and the original face.

Where the two photos have the same size, the anonymized face is cropped and embedded with the
*original's* detection and landmarks: the strongest attacker knows where the face is, and a
generator that only confuses the detector must not pass for private. The report says so
(``"landmarks": "original"``). Photos of different sizes fall back to the anonymized photo's own
detection; a pair whose anonymized photo has no face then counts as neither matched nor
re-identified.

Every photo that cannot be used (unreadable, no face in the original, no namesake in the other
folder, no identity) is listed in the report with the reason; none stops the run. Detection and
landmarks run once per photo, embeddings and attributes run in batches (identical crops once), and
distance matrices are computed in float32 blocks, so a 6,000-photo gallery stays within memory.
With ``workers`` the pairs are evaluated in parallel processes (:mod:`~.chunks`); the report is the
same to the last bit.
"""

from .leakage import (IdentityLeakage, far_key, identity_leakage, impostor_distances,
                      nearest_in_gallery, top1_rates)
from .pairing import pair_photos
from .report import SCHEMA, AttributeAgreement, EvaluationReport
from .run import evaluate_anonymization

__all__ = ["SCHEMA", "AttributeAgreement", "EvaluationReport", "IdentityLeakage",
           "evaluate_anonymization", "far_key", "identity_leakage", "impostor_distances",
           "nearest_in_gallery", "pair_photos", "top1_rates"]
