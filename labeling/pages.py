"""Server-rendered pages around the editor. Each project page checks the caller's role
like the API does: strangers get 404, members below the page's role get 403."""
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse

from core.models import DetectionAggregation, LabelClass, Project, SamplingStrategy, TaskType

from . import services
from .exporters.service import EXPORT_FORMATS, export_check_format
from .importers.service import LABEL_FORMATS, import_check_format
from .models import ROLE_RANK, BlurMethod, FaceDetectorChoice, ImageBlur, OriginalPolicy, Role
from .permissions import caller_role, get_for_caller, projects_visible_to
from .queue.selectors import projects_queue_stats

# Each page: the least role that reaches it and its navigation title; the navigation
# shows only the pages the caller reaches.
PAGES = {
    "annotate": (Role.ANNOTATOR, "Annotate"),
    "review": (Role.LEAD, "Review"),
    "images": (Role.LEAD, "Images"),
    "upload": (Role.LEAD, "Import"),
    "export": (Role.LEAD, "Export"),
    "reports": (Role.LEAD, "Reports"),
    "models": (Role.LEAD, "Models & training"),  # leads read it; only admins act on it
    "settings": (Role.ADMIN, "Settings"),
    "taxonomy": (Role.ADMIN, "Classes"),
    "clusters": (Role.LEAD, "Discover"),
}


def _project_page(request, project_id: int, page: str, template: str, extra):
    project = get_for_caller(Project.objects.all(), project_id, request.user, PAGES[page][0])
    role = project.caller_role
    nav = [
        {"name": name, "title": title, "url": reverse(f"page-{name}", args=[project.pk])}
        for name, (least, title) in PAGES.items() if ROLE_RANK[role] >= ROLE_RANK[least]
    ]
    context = {"project": project, "role": role, "page": page, "nav": nav, **extra(project)}
    return render(request, template, context)


def _label_classes(project: Project) -> list[dict]:
    return list(LabelClass.objects.filter(project=project).values("id", "name", "color", "hotkey"))


# The names the project list shows for a version's primary metric (its metrics say which).
METRIC_NAMES = {
    "map50_95": "mAP50-95", "map50": "mAP@0.5", "macro_f1": "macro-F1", "accuracy": "accuracy",
    "presence_macro_f1": "presence macro-F1", "mask_map50_95": "mask mAP50-95", "mask_map50": "mask mAP@0.5",
}
# The metric a trained model of each task type is ranked by.
PRIMARY_METRICS = {TaskType.DETECTION: "map50_95", TaskType.SEGMENTATION: "mask_map50_95"}


def metric_name(version: dict | None, project: Project) -> str:
    """The deployed version's primary metric, by the name its evaluator gave it; a version
    without one has its task type's trained metric."""
    if not version:
        return ""
    key = (version.get("metrics") or {}).get("primary_metric") or (
        PRIMARY_METRICS.get(project.task_type, "macro_f1"))
    return METRIC_NAMES.get(key, key.replace("_", " "))


@login_required
def project_list(request):
    projects = list(projects_visible_to(request.user).annotate(role=caller_role(request.user)).order_by("id"))
    stats_by_project = projects_queue_stats(projects=projects)
    rows = []
    for project in projects:
        stats = stats_by_project[project.pk]
        images = stats["images"]
        rows.append({
            "project": project,
            "stats": stats,
            "role": project.role,
            "metric_name": metric_name(stats["deployed_version"], project),
            "percent": round(100 * stats["labeled_images"] / images) if images else 0,
        })
    return render(request, "labeling/project_list.html", {"rows": rows})


def _page(page: str, template: str, extra=lambda project: {}):
    """A project page; `extra(project)` adds context once the caller's role is checked."""
    @login_required
    def view(request, project_id: int):
        return _project_page(request, project_id, page, template, extra)

    view.__name__ = page
    return view


# Renew a lease three times per TTL, so one lost beat does not lose it.
annotate = _page("annotate", "labeling/annotate.html", lambda project: {
    "heartbeat_ms": max(1000, project.lease_ttl_seconds * 1000 // 3),
})
review = _page("review", "labeling/review.html",
               lambda project: {"label_classes": _label_classes(project)})
# The formats each page offers, as (value, title), for the project's task type.
FORMAT_TITLES = {
    "coco": "COCO JSON", "yolo": "YOLO (data.yaml or classes.txt)", "voc": "Pascal VOC XML",
    "labelstudio": "Label Studio JSON", "cvat": "CVAT for images 1.1 XML", "folder": "a folder per class",
    "csv": "CSV",
}


def _offered(names, check) -> list[tuple[str, str]]:
    """(value, title) of the formats that check lets through."""
    offered = []
    for name in names:
        try:
            check(name)
        except ValueError:  # ImportRefused, ExportRefused: not for this project's task type
            continue
        offered.append((name, FORMAT_TITLES[name]))
    return offered


upload = _page("upload", "labeling/upload.html", lambda project: {
    "label_formats": _offered(LABEL_FORMATS, lambda name: import_check_format(project=project, label_format=name)),
})
export = _page("export", "labeling/export.html", lambda project: {
    "export_formats": _offered(EXPORT_FORMATS, lambda name: export_check_format(project=project, export_format=name)),
    # kept originals of blurred images: an admin may export them instead (logged)
    "can_export_originals": ROLE_RANK[project.caller_role] >= ROLE_RANK[Role.ADMIN]
    and ImageBlur.objects.filter(image__project=project).exclude(original="").exists(),
})
reports = _page("reports", "labeling/reports.html")
# Leads see runs, versions and metrics; the run and deploy controls only admins (the API
# refuses the rest).
models = _page("models", "labeling/models.html", lambda project: {
    "can_manage": ROLE_RANK[project.caller_role] >= ROLE_RANK[Role.ADMIN],
})
project_settings = _page("settings", "labeling/settings.html", lambda project: {
    "sampling_choices": SamplingStrategy.choices,
    "aggregation_choices": DetectionAggregation.choices,
    "role_choices": Role.choices,
    "blur_methods": BlurMethod.choices,
    "face_detectors": FaceDetectorChoice.choices,
    "original_policies": OriginalPolicy.choices,
})


@login_required
def project_new(request):
    """A new project (staff users, as in the API): name, task type and description; the
    creator becomes its admin and goes on to its settings to add classes and members."""
    if not request.user.is_staff:
        raise PermissionDenied("Only staff users can create projects; ask a site admin.")
    errors: dict[str, list[str]] = {}
    values = {"name": "", "task_type": TaskType.DETECTION, "description": ""}
    if request.method == "POST":
        values = {key: request.POST.get(key, "").strip() for key in values}
        if values["task_type"] not in TaskType.values:
            errors["task_type"] = ["Choose object detection, instance segmentation or image classification."]
        else:
            try:
                project = services.project_create(created_by=request.user, **values)
            except ValidationError as error:
                errors = error.message_dict if hasattr(error, "message_dict") else {"name": error.messages}
            else:
                return redirect("page-settings", project.pk)
    return render(request, "labeling/project_new.html", {
        "values": values, "errors": errors, "task_types": TaskType.choices,
    }, status=400 if errors else 200)
