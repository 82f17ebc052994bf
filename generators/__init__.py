"""Stage III of AnonymousNet: faces out.

Pluggable face generators (k-Same-Select, StarGAN, blur/pixelate/mask baselines, diffusers
inpainting) behind one protocol. This part is being built (see the issue on generators); nothing in
it is importable yet beyond this package.
"""
