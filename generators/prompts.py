"""Target attributes in words: the prompts of the diffusers generator.

CelebA's 40 attributes become an English description of a face ("a smiling young woman with blond
hair and eyeglasses") and a negative prompt of what the face must not show. Plain functions of an
attribute row, so that they are easy to test and to reuse with another text-conditioned model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


#: The prompt around the subject phrase; ``{subject}`` is replaced by e.g. "a smiling young woman
#: with eyeglasses". The trailing words steer the model towards a plain photographic face.
DEFAULT_PROMPT_TEMPLATE = "a photo of {subject}, natural face, high quality"

#: What no output should look like, whatever the attributes.
DEFAULT_NEGATIVE_PROMPT = ("deformed, distorted, disfigured, blurry, low quality, cartoon, "
                           "drawing, painting, text, watermark")

#: The attributes that repainting the face ellipse can actually set, hence :attr:`editable`. The
#: prompt describes more (hair, hat, jewellery) so that the new face fits the kept surroundings,
#: but those lie outside the mask, so claiming to change them would make the certificate lie.
FACE_REGION_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Big_Lips",
    "Big_Nose", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee",
    "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes",
    "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Rosy_Cheeks", "Smiling",
    "Wearing_Lipstick", "Young",
)

# --- attribute -> phrase -------------------------------------------------------------------------
# Adjectives before the noun, in English adjective order (opinion, shape, age, colour). Age and
# sex are read on both sides (-1 is a description too); the rest only when present.
_OPINION_SHAPE = (("Smiling", "smiling"), ("Attractive", "attractive"), ("Chubby", "chubby"))
_AGE = {1: "young", -1: "older"}
_AFTER_AGE = (("Pale_Skin", "pale-skinned"), ("Bald", "bald"))
_NOUN = {1: "man", -1: "woman", 0: "person"}

# "with ..." features, face first: CLIP reads at most 77 tokens, so what the mask can change
# must come before what only gives context (hair, accessories).
_HAIR_COLOURS = (("Black_Hair", "black"), ("Blond_Hair", "blond"), ("Brown_Hair", "brown"),
                 ("Gray_Hair", "gray"))
_HAIR_TEXTURES = (("Wavy_Hair", "wavy"), ("Straight_Hair", "straight"))
_FACE_FEATURES = (
    ("Eyeglasses", "eyeglasses"), ("5_o_Clock_Shadow", "stubble"), ("Mustache", "a mustache"),
    ("Goatee", "a goatee"),
)
_BROWS = (("Bushy_Eyebrows", "bushy"), ("Arched_Eyebrows", "arched"))
_NOSE = (("Big_Nose", "big"), ("Pointy_Nose", "pointy"))
_LATER_FACE_FEATURES = (
    ("Mouth_Slightly_Open", "a slightly open mouth"), ("Big_Lips", "big lips"),
    ("Narrow_Eyes", "narrow eyes"), ("Bags_Under_Eyes", "bags under the eyes"),
    ("High_Cheekbones", "high cheekbones"), ("Rosy_Cheeks", "rosy cheeks"),
    ("Double_Chin", "a double chin"), ("Oval_Face", "an oval face"),
    ("Heavy_Makeup", "heavy makeup"), ("Wearing_Lipstick", "lipstick"),
)
_CONTEXT_FEATURES = (
    ("Bangs", "bangs"), ("Receding_Hairline", "a receding hairline"), ("Sideburns", "sideburns"),
    ("Wearing_Hat", "a hat"), ("Wearing_Earrings", "earrings"),
    ("Wearing_Necklace", "a necklace"), ("Wearing_Necktie", "a necktie"),
)
# Things a model adds unasked; a target of -1 puts them in that face's negative prompt.
_UNWANTED = (("Eyeglasses", "eyeglasses"), ("Mustache", "mustache"), ("Goatee", "goatee"),
             ("5_o_Clock_Shadow", "stubble"), ("Heavy_Makeup", "heavy makeup"),
             ("Wearing_Lipstick", "lipstick"), ("Smiling", "smile"), ("Wearing_Hat", "hat"))

#: Every CelebA attribute a prompt can express (all 40 but ``Blurry``: the prompt always asks for
#: a sharp photo).
EXPRESSIBLE_ATTRIBUTES: tuple[str, ...] = tuple(sorted(
    {name for table in (_OPINION_SHAPE, _AFTER_AGE, _HAIR_COLOURS, _HAIR_TEXTURES,
                        _FACE_FEATURES, _BROWS, _NOSE, _LATER_FACE_FEATURES,
                        _CONTEXT_FEATURES)
     for name, _ in table} | {"Male", "Young", "No_Beard"}))


def _state(row: Mapping[str, Any] | None, name: str) -> int:
    """1 (present), -1 (absent) or 0 (column missing, 0 or NaN: say nothing)."""
    if row is None:
        return 0
    value = row.get(name)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0
    return 1 if value > 0 else -1 if value < 0 else 0  # NaN compares false both ways: 0


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def attributes_to_subject(row: Mapping[str, Any] | None) -> str:
    """The noun phrase describing a face with CelebA attributes, e.g. "a smiling young woman".

    Parameters
    ----------
    row : mapping or pandas Series or None
        CelebA attribute names to 1 (present) / -1 (absent); missing names, 0 and NaN say
        nothing, unknown names are ignored. None describes "a person".

    Returns
    -------
    str

    Examples
    --------
    >>> attributes_to_subject({"Male": 1, "Young": -1, "Bald": 1, "Mustache": 1})
    'an older bald man with a mustache'
    >>> attributes_to_subject(None)
    'a person'
    """
    adjectives = [phrase for name, phrase in _OPINION_SHAPE if _state(row, name) == 1]
    if _state(row, "Young") in _AGE:
        adjectives.append(_AGE[_state(row, "Young")])
    adjectives += [phrase for name, phrase in _AFTER_AGE if _state(row, name) == 1]
    male = _state(row, "Male")
    stubble, moustache, goatee = (_state(row, name) == 1
                                  for name in ("5_o_Clock_Shadow", "Mustache", "Goatee"))
    beard = _state(row, "No_Beard")
    # "clean-shaven" only for men and only when no other facial hair was asked for.
    if male == 1 and beard == 1 and not (stubble or moustache or goatee):
        adjectives.append("clean-shaven")
    words = " ".join(adjectives + [_NOUN[male]])
    article = "an" if words[0] in "aeiou" else "a"

    features = [phrase for name, phrase in _FACE_FEATURES if _state(row, name) == 1]
    # CelebA marks a goatee as "not No_Beard"; only a bare -1 means a full beard.
    if beard == -1 and not goatee:
        features.append("a beard")
    brows = [word for name, word in _BROWS if _state(row, name) == 1]
    if brows:
        features.append(" ".join(brows) + " eyebrows")
    nose = [word for name, word in _NOSE if _state(row, name) == 1]
    if nose:
        features.append("a " + " ".join(nose) + " nose")
    features += [phrase for name, phrase in _LATER_FACE_FEATURES if _state(row, name) == 1]
    if _state(row, "Bald") != 1:  # a bald head has no hair colour to describe
        textures = [word for name, word in _HAIR_TEXTURES if _state(row, name) == 1]
        colours = [word for name, word in _HAIR_COLOURS if _state(row, name) == 1]
        if textures or colours:
            features.append(" ".join(textures + ([_join(colours)] if colours else [])) + " hair")
    features += [phrase for name, phrase in _CONTEXT_FEATURES if _state(row, name) == 1]
    subject = f"{article} {words}"
    return f"{subject} with {_join(features)}" if features else subject


def attributes_to_prompt(row: Mapping[str, Any] | None,
                         template: str = DEFAULT_PROMPT_TEMPLATE) -> str:
    """The inpainting prompt for one face's target attributes.

    Every CelebA attribute but ``Blurry`` has a phrase (:data:`EXPRESSIBLE_ATTRIBUTES`): ``Male``
    gives man / woman, ``Young`` young / older, hair colours and textures, facial hair
    (``No_Beard`` = -1 is "a beard"), glasses, make-up, accessories and the shape of the face.
    Absent attributes (-1) are not written, except for sex and age; missing columns, 0 and NaN
    say nothing.

    Parameters
    ----------
    row : mapping or pandas Series or None
        CelebA attribute names to 1 / -1 (one row of a target DataFrame).
    template : str
        Text around the subject phrase; must contain ``{subject}``.

    Returns
    -------
    str

    Examples
    --------
    >>> attributes_to_prompt({"Male": -1, "Young": 1, "Smiling": 1, "Blond_Hair": 1,
    ...                       "Eyeglasses": 1})
    'a photo of a smiling young woman with eyeglasses and blond hair, natural face, high quality'
    >>> attributes_to_prompt({"Male": 1, "No_Beard": -1, "Wavy_Hair": 1, "Black_Hair": 1},
    ...                      template="portrait of {subject}")
    'portrait of a man with a beard and wavy black hair'
    """
    if "{subject}" not in template:
        raise ValueError(f"template must contain {{subject}}, got {template!r}")
    # str.replace rather than format: a template may hold other braces.
    return template.replace("{subject}", attributes_to_subject(row))


def attributes_to_negative_prompt(row: Mapping[str, Any] | None,
                                  base: str = DEFAULT_NEGATIVE_PROMPT) -> str:
    """The negative prompt for one face: ``base`` plus what the target says must be absent.

    Only features a model tends to add unasked are listed (glasses, facial hair, make-up, a
    smile, a hat), so that a target of -1 is enforced rather than left to chance.

    Parameters
    ----------
    row : mapping or pandas Series or None
        CelebA attribute names to 1 / -1.
    base : str
        Negative prompt for every face.

    Returns
    -------
    str

    Examples
    --------
    >>> attributes_to_negative_prompt({"Eyeglasses": -1, "Smiling": -1, "Male": 1}, "blurry")
    'eyeglasses, smile, blurry'
    >>> attributes_to_negative_prompt({"Male": 1, "No_Beard": 1}, "")
    'beard'
    """
    unwanted = [phrase for name, phrase in _UNWANTED if _state(row, name) == -1]
    if _state(row, "No_Beard") == 1:
        unwanted.append("beard")
    return ", ".join(unwanted + ([base] if base else []))
