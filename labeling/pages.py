"""Server-rendered pages around the editor."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .permissions import projects_visible_to


@login_required
def project_list(request):
    projects = projects_visible_to(request.user).order_by("id")
    return render(request, "labeling/project_list.html", {"projects": projects})
