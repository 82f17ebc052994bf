"""Stage III of AnonymousNet: faces out.

Face generators behind one protocol (:class:`~privface.generators.base.Generator`:
``generate(faces, source_attributes, target_attributes) -> faces``), found by name in
:mod:`~privface.generators.registry`, where third-party packages plug in through the entry-point
group ``privface.generators``.

Built in so far: the paper's baselines (:mod:`~privface.generators.baselines`: blur, pixelate,
mask). k-Same-Select, StarGAN and the diffusers backend are the subject of the open issue on
generators.
"""
