"""Bringing images and labels made elsewhere into a project.

sources.py         the items of an import: server folder, uploaded files, zip entries
archive.py         zip safety: path traversal, entry and size caps, nested archives
coco.py, yolo.py, voc.py, classification.py
                   label parsers: each yields LabelRecord / LabelError (records.py)
records.py         matching records to images and classes; writing import annotations
service.py         one import run (images, then labels) and its ImportJob
"""
