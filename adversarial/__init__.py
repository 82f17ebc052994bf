"""Stage IV of AnonymousNet: adversarial perturbation against recognizers and attribute models.

Universal adversarial perturbations and per-image attacks (FGSM, PGD). This part is being built (see
the issue on stage IV); nothing in it is importable yet beyond this package.
"""
