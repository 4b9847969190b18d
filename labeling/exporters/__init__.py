"""Writing a project's current labels in standard formats.

items.py        the labeled images to export, with unique file names and their split
sinks.py        where files go: a folder or a zip (streamed, one file at a time)
coco.py, yolo.py, voc.py, csv.py
                one writer per format
service.py      one export (sync or as an ExportJob delivered as a zip in storage)
"""
