"""Pascal VOC XML: one file per image with <filename>, <size> and <object> boxes
(xmin, ymin, xmax, ymax: 1-based pixel numbers, so the box covers x from xmin - 1 to xmax
in 0-based edge coordinates) and an optional <difficult>, kept as the box's flag. Parsed
with defusedxml: entity expansion, DTDs and external references are refused."""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from .records import LabelError, LabelRecord
from .sources import label_files, read_label_file


def voc_records(path: str) -> Iterator[LabelRecord | LabelError]:
    for name, full in label_files(path, (".xml",)):
        yield _file_record(name, full)


class _Bad(ValueError):
    pass


def _file_record(name: str, path: str) -> LabelRecord | LabelError:
    try:
        root = fromstring(read_label_file(path), forbid_dtd=True)
    except DefusedXmlException as exc:
        return LabelError(name, f"refused unsafe XML ({type(exc).__name__})")
    except ParseError as exc:
        return LabelError(name, f"broken XML: {exc}")
    except ValueError as exc:
        return LabelError(name, str(exc))
    try:
        if root.tag != "annotation":
            raise _Bad(f"root element is <{root.tag}>, not <annotation>")
        filename = _text(root, "filename")
        size = None
        if root.find("size") is not None:
            size = (int(_number(root, "size/width")), int(_number(root, "size/height")))
        boxes = []
        for position, obj in enumerate(root.findall("object"), start=1):
            where = f"object {position}"
            xmin, ymin, xmax, ymax = (
                _number(obj, f"bndbox/{key}", where) for key in ("xmin", "ymin", "xmax", "ymax")
            )
            difficult = (obj.findtext("difficult") or "0").strip() in ("1", "true")
            flags = {"difficult": True} if difficult else {}
            boxes.append((_text(obj, "name", where), xmin - 1, ymin - 1, xmax, ymax, flags))
    except _Bad as exc:
        return LabelError(name, str(exc))
    return LabelRecord(where=name, image_name=filename, boxes=boxes, size=size)


def _text(element, path: str, where: str = "") -> str:
    found = element.find(path)
    if found is None or not (found.text or "").strip():
        raise _Bad(f"{where + ': ' if where else ''}<{path}> is missing or empty")
    return found.text.strip()


def _number(element, path: str, where: str = "") -> float:
    text = _text(element, path, where)
    try:
        return float(text)
    except ValueError:
        raise _Bad(f"{where + ': ' if where else ''}<{path}> is not a number: {text!r}") from None
