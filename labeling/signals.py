"""Signals the labeling app sends for the apps above it, which connect receivers in their
AppConfig.ready(): labeling imports none of them."""
import logging

from django.dispatch import Signal

logger = logging.getLogger(__name__)

# Sent once per import that created images (an upload, a zip or server folder, the demo seed),
# after they were stored, with ``project`` and ``image_ids`` (the new images). Receivers run in
# the importing process. training connects the embedding run trigger.
images_imported = Signal()

# Sent after images' files changed (a privacy blur was rendered), with ``project`` and
# ``image_ids``, outside any transaction: whatever was derived from the old pixels (embeddings,
# features) is stale. training drops the images' vectors and embeds them again.
images_rendered = Signal()


def images_imported_send(*, project, image_ids: list[int]) -> None:
    """Announce new images; a failing receiver is logged and never fails the import."""
    _send_robust("images_imported", images_imported, project=project, image_ids=image_ids)


def images_rendered_send(*, project, image_ids: list[int]) -> None:
    """Announce changed image files; a failing receiver is logged and never fails the render."""
    _send_robust("images_rendered", images_rendered, project=project, image_ids=image_ids)


def _send_robust(name: str, signal: Signal, *, project, image_ids: list[int]) -> None:
    if not image_ids:
        return
    for receiver, outcome in signal.send_robust(sender=type(project), project=project, image_ids=image_ids):
        if isinstance(outcome, Exception):
            logger.error("%s receiver %r failed: %r", name, receiver, outcome, exc_info=outcome)


# Sent inside a class merge's transaction, before the merged class's row is deleted, with
# ``project``, ``source_id`` (the merged class) and ``target_id``: apps that keep class ids
# of their own (predictions, model versions, one-shot examples) relabel them here and may
# answer {"predictions": n, "model_versions": [ids]} for the record, so they commit or roll back
# with the merge. A failing receiver fails the merge.
label_class_merged = Signal()

# Sent inside the transaction in which a lead rejects a person's label (a review, or a fix that
# replaces it), with ``annotation``: reports counts the rejection in its tallies.
annotation_rejected = Signal()

# Sent inside a queue submit's transaction, after its annotation and task are written, with
# ``annotation`` (its task and prediction loaded) and ``task_type``: reports counts the label
# there. An annotation saved with ANNOUNCED_IN_TRANSACTION set in its __dict__ is announced this
# way, so a post_save receiver that would count it after the commit may leave it to this signal.
annotation_submitted = Signal()
ANNOUNCED_IN_TRANSACTION = "_announced_by_annotation_submitted"
