import copy

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from core.models import Image, LabelClass, Project

from .models import Annotation, ExportJob, ImportJob, Membership, Task
from .services import SETTING_RANGES, project_settings_check


class ProjectAdminForm(forms.ModelForm):
    """The settings' ranges as the API checks them, with the same messages."""

    class Meta:
        model = Project
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        candidate = copy.copy(self.instance)
        for field, value in cleaned.items():
            if field in SETTING_RANGES or field == "task_type":
                setattr(candidate, field, value)
        changed = set(self.changed_data) if self.instance.pk else None
        try:
            project_settings_check(candidate, fields=changed)
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                if field in self.fields:
                    self.add_error(field, messages)
        return cleaned


class LabelClassInline(admin.TabularInline):
    model = LabelClass
    extra = 0


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectAdminForm
    list_display = ["id", "name", "task_type", "sampling_strategy", "created_at"]
    search_fields = ["name"]
    inlines = [LabelClassInline, MembershipInline]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "original_name", "width", "height", "split"]
    list_filter = ["project", "split"]
    search_fields = ["original_name", "sha256"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "image", "status", "priority", "lease_holder", "lease_expires_at"]
    list_filter = ["project", "status"]
    raw_id_fields = ["image"]


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "image", "author", "kind", "source", "review_status", "created_at"]
    list_filter = ["project", "kind", "source", "review_status"]
    raw_id_fields = ["image", "task", "prediction"]

    def has_change_permission(self, request, obj=None):
        return False  # append-only history


@admin.register(ImportJob, ExportJob)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "status", "progress", "created_at", "finished_at"]
    list_filter = ["status"]
