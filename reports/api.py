"""`GET /api/projects/{id}/reports/<name>/`: a report as JSON, or one of its tables as a
CSV download with `?format=csv` (`&table=<name>` picks the table; the first by default).
Leads and admins only."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api import get_project_for
from labeling.models import Role

from .csv_output import CSVRenderer
from .selectors import REPORTS


class ReportApi(APIView):
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=["json", "csv"]),
            OpenApiParameter("table", str, description="CSV: which table of the report"),
            OpenApiParameter("level", int, description="accuracy: read each class as its ancestor at this "
                             "depth of the class tree (0: the top level)"),
        ],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request, project_id: int, name: str):
        project = get_project_for(request, project_id, Role.LEAD)
        selector = REPORTS.get(name)
        if selector is None:
            raise NotFound(f"No report named {name!r}; reports: {', '.join(REPORTS)}.")
        report = selector(project=project, **_level_of(request, name))
        if request.accepted_renderer.format != "csv":
            return Response(report)
        tables = report["tables"]
        table = request.query_params.get("table") or next(iter(tables))
        if table not in tables:
            raise ValidationError({"table": f"{name} has no table {table!r}; tables: {', '.join(tables)}."})
        filename = f"project-{project.pk}-{name}-{table}.csv"
        return Response(tables[table], headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    def finalize_response(self, request, response, *args, **kwargs):
        """Only a report's table is CSV: errors and OPTIONS answer JSON whatever format was asked."""
        if request.method != "GET" or response.status_code >= 400:
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


def _level_of(request, name: str) -> dict:
    """The accuracy report's `level` (a depth of the class tree), as keyword arguments."""
    raw = request.query_params.get("level")
    if raw in (None, ""):
        return {}
    if name != "accuracy":
        raise ValidationError({"level": f"level applies to the accuracy report, not {name}."})
    if not raw.isdigit():
        raise ValidationError({"level": f"level is a depth of the class tree, 0 or more; got {raw!r}."})
    return {"level": int(raw)}
