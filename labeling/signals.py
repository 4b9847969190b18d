"""Signals the labeling app sends for the apps above it, which connect receivers in their
AppConfig.ready(): labeling imports none of them."""
import logging

from django.dispatch import Signal

logger = logging.getLogger(__name__)

# Sent once per import that created images (an upload, a zip or server folder, the demo seed),
# after they were stored, with ``project`` and ``image_ids`` (the new images). Receivers run in
# the importing process. training connects the embedding run trigger.
images_imported = Signal()


def images_imported_send(*, project, image_ids: list[int]) -> None:
    """Announce new images; a failing receiver is logged and never fails the import."""
    if not image_ids:
        return
    for receiver, outcome in images_imported.send_robust(sender=type(project), project=project, image_ids=image_ids):
        if isinstance(outcome, Exception):
            logger.error("images_imported receiver %r failed: %r", receiver, outcome, exc_info=outcome)

# Sent inside a class merge's transaction, before the merged class's row is deleted, with
# ``project``, ``source_id`` (the merged class) and ``target_id``: apps that keep class ids
# of their own (proposals, cluster names) relabel them here, so they commit or roll back
# with the merge. A failing receiver fails the merge.
label_class_merged = Signal()
