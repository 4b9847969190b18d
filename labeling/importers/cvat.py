"""CVAT for images 1.1 XML: <annotations> with one <image name width height> per image,
holding <box label xtl ytl xbr ybr> (pixels, 0-based edges) and <tag label> (classes of
the whole image). Parsed with defusedxml: entity expansion, DTDs and external references
are refused.

An image without shapes stays unlabeled (CVAT lists unannotated images too). A shape a
project cannot hold (polygon, points, mask, rotated box, ...) refuses its image,
since dropping it would leave a wrong label; CVAT for video (<track>) is refused whole.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from .records import LabelError, LabelRecord
from .sources import label_files, read_label_file

SHAPES = ("box", "polygon", "polyline", "points", "mask", "ellipse", "cuboid", "skeleton", "tag")


def cvat_records(path: str, *, detection: bool) -> Iterator[LabelRecord | LabelError]:
    for name, full in label_files(path, (".xml",)):
        yield from _file_records(name, full, detection)


def _file_records(name: str, path: str, detection: bool) -> Iterator[LabelRecord | LabelError]:
    try:
        root = fromstring(read_label_file(path), forbid_dtd=True)
    except DefusedXmlException as exc:
        yield LabelError(name, f"refused unsafe XML ({type(exc).__name__})")
        return
    except ParseError as exc:
        yield LabelError(name, f"broken XML: {exc}")
        return
    except ValueError as exc:
        yield LabelError(name, str(exc))
        return
    if root.tag != "annotations":
        yield LabelError(name, f"root element is <{root.tag}>, not CVAT's <annotations>")
        return
    if root.find("track") is not None:
        yield LabelError(name, "this is CVAT for video (tracks); export the task as CVAT for images 1.1")
        return
    for position, image in enumerate(root.findall("image")):
        yield _image_record(name, position, image, detection)


def _image_record(name: str, position: int, image, detection: bool) -> LabelRecord | LabelError:
    image_name = image.get("name") or ""
    where = f"{name}: image {image_name or f'#{position}'!r}"
    if not image_name:
        return LabelError(where, "<image> needs a name")
    try:
        size = (int(image.get("width", "")), int(image.get("height", "")))
    except ValueError:
        size = None
    wanted = "box" if detection else "tag"
    boxes, labels = [], []
    for shape in image:
        if shape.tag not in SHAPES:
            continue
        label = shape.get("label") or ""
        if shape.tag != wanted:
            kind = "a detection" if detection else "a classification"
            return LabelError(where, f"has a <{shape.tag}> ({label}); {kind} project holds <{wanted}> only")
        if not label:
            return LabelError(where, f"a <{shape.tag}> has no label")
        if detection:
            try:
                coords = [float(shape.get(k, "")) for k in ("xtl", "ytl", "xbr", "ybr")]
            except ValueError:
                return LabelError(where, f"a box of {label!r} needs numeric xtl, ytl, xbr, ybr")
            if not all(math.isfinite(v) for v in coords):
                return LabelError(where, f"a box of {label!r} has a coordinate that is not finite")
            if float(shape.get("rotation") or 0):
                return LabelError(where, f"a box of {label!r} is rotated; only upright boxes fit")
            boxes.append((label, *coords))
        else:
            labels.append(label)
    if detection and not boxes:
        # CVAT lists every image of the task, annotated or not: no boxes is no label here.
        return LabelError(where, "has no boxes; CVAT lists images nobody annotated too, so it stays unlabeled")
    if detection:
        return LabelRecord(where=where, image_name=image_name, boxes=boxes, size=size)
    if not labels:
        return LabelError(where, "has no <tag>: no class for the image")
    return LabelRecord(where=where, image_name=image_name, labels=list(dict.fromkeys(labels)), size=size)
