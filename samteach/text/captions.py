"""Captions of a scene's instances, from what its generator knows: the words of a text prompt.

Every instance is called by its class name ("liquid"), always a valid caption. Where the
generator recorded them (``SegmentationRecord.attributes``), its colour and texture describe it
("the blue liquid", "the striped triangle", "the striped red triangle"), and a part is placed in
its whole ("the liquid in the flask", "the label on the bottle"). A caption *names* an instance
only when no other instance of the image has it too: :func:`unique_captions` -- what a text
prompt can be scored against.
"""

from ..data.record import SegmentationRecord

__all__ = ["instance_captions", "unique_captions"]

# Texture names of the generic scenes -> the adjective a person would use ("flat" and a pasted
# "patch" have none worth saying).
TEXTURE_WORDS = {"stripes": "striped", "checks": "checkered", "dots": "dotted",
                 "noise": "mottled", "gradient": "shaded"}
# Parts that sit ON their whole; the others (liquids, solids, foam, parts of shapes) are IN it.
_ON = frozenset({"label", "cap"})


def instance_captions(record: SegmentationRecord) -> list[tuple[str, ...]]:
    """Per instance, every caption that describes it, the bare class name first."""
    captions = []
    for i, name in enumerate(record.class_names):
        attributes = record.attributes[i]
        texture = TEXTURE_WORDS.get(attributes.get("texture", ""))
        color = attributes.get("color")
        adjectives = [w for w in (texture, color) if w]
        found = [name, f"the {name}"]
        found += [f"the {word} {name}" for word in adjectives]
        if len(adjectives) == 2:
            found.append(f"the {texture} {color} {name}")
        parent = record.parents[i]
        if parent >= 0:
            where = f"{'on' if name in _ON else 'in'} the {record.class_names[parent]}"
            found += [f"the {name} {where}", *(f"the {w} {name} {where}" for w in adjectives)]
        captions.append(tuple(dict.fromkeys(found)))  # in order, once each
    return captions


def unique_captions(record: SegmentationRecord) -> list[tuple[str, ...]]:
    """Per instance, the captions no other instance of the image shares: those name it."""
    captions = instance_captions(record)
    holders: dict[str, int] = {}
    for found in captions:
        for caption in found:
            holders[caption] = holders.get(caption, 0) + 1
    return [tuple(c for c in found if holders[c] == 1) for found in captions]
