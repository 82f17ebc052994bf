"""Stage III of AnonymousNet: faces out.

Face generators behind one protocol (:class:`~privface.generators.base.Generator`: declared
``capabilities`` and ``generate(faces, source_attributes, target_attributes) ->
GenerationResult``), found by name in
:mod:`~privface.generators.registry`, where third-party packages plug in through the entry-point
group ``privface.generators``.

Built in:

- ``ksame`` (:mod:`~privface.generators.ksame`): k-Same-Select, the pipeline's default. Needs no
  weights; every output is the average of k different persons of the same target class.
- ``stargan`` (:mod:`~privface.generators.stargan`): the official StarGAN architecture, loading
  the released ``200000-G.ckpt`` or weights from ``privface train stargan``.
- ``diffusers`` (:mod:`~privface.generators.diffusion`): face inpainting with a local diffusers
  pipeline folder, the prompt written from the target attributes.
- ``blur``, ``pixelate``, ``mask`` (:mod:`~privface.generators.baselines`): the paper's
  baselines (Table 1).
"""
