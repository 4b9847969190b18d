"""Pages of the taxonomy work: the class tree editor (admins), the cluster grid where a
lead names clusters and accepts them in bulk, and the annotators' grid mode, which verifies
many proposals of one class at once (classification)."""
from core.models import TaskType

from .pages import _label_classes, _page

taxonomy = _page("taxonomy", "labeling/taxonomy.html")
clusters = _page("clusters", "labeling/clusters.html", lambda project: {"label_classes": _label_classes(project)})
# Heartbeats as on the annotate page: three per lease, so one lost beat does not lose it.
annotate_grid = _page("annotate", "labeling/annotate_grid.html", lambda project: {
    "heartbeat_ms": max(1000, project.lease_ttl_seconds * 1000 // 3),
    "is_classification": project.task_type == TaskType.CLASSIFICATION,
})
