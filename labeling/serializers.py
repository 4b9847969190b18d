from rest_framework import serializers

from core.models import LabelClass, Project, TaskType

from .models import Membership, Role
from .services import COLOR_PATTERN, SETTING_RANGES


class LabelClassSerializer(serializers.ModelSerializer):
    class Meta:
        model = LabelClass
        fields = ["id", "name", "color", "hotkey", "parent", "order"]
        read_only_fields = ["id"]


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    user_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Membership
        fields = ["user_id", "username", "role", "created_at"]


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


PROJECT_SETTING_FIELDS = [
    "description",
    "sampling_strategy",
    "detection_aggregation",
    "random_share",
    "queue_model_every",
    "lease_ttl_seconds",
    "annotations_per_image",
    "validation_share",
    "retrain_every_n_labels",
    "promotion_tolerance",
    "min_map50",
    "train_epochs",
    "train_image_size",
    "train_batch_size",
    "start_weights",
    "target_metric",
    "near_duplicate_threshold",
]


class ProjectOutputSerializer(serializers.ModelSerializer):
    label_classes = LabelClassSerializer(many=True, read_only=True)
    members = MembershipSerializer(source="memberships", many=True, read_only=True)
    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "task_type", "created_at", *PROJECT_SETTING_FIELDS,
                  "label_classes", "members", "my_role"]

    def get_my_role(self, project) -> str | None:
        roles = self.context.get("roles", {})
        return roles.get(project.pk)


class LabelClassInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    color = serializers.RegexField(COLOR_PATTERN, required=False, allow_blank=True)
    hotkey = serializers.CharField(max_length=1, required=False, allow_blank=True)
    parent = serializers.CharField(max_length=100, required=False, allow_null=True, help_text="a class name")
    parent_id = serializers.IntegerField(required=False, allow_null=True, help_text="a class id of the project")

    def validate(self, attrs):
        if attrs.get("parent") is not None and attrs.get("parent_id") is not None:
            raise serializers.ValidationError("Give the parent by name or by id, not both.")
        return attrs


class LabelClassUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    color = serializers.RegexField(COLOR_PATTERN, required=False)
    hotkey = serializers.CharField(max_length=1, required=False, allow_blank=True,
                                   help_text='one character; "" for none')
    parent = serializers.IntegerField(required=False, allow_null=True, help_text="a class id of the project")
    # The column is a 32-bit integer on PostgreSQL; the same bound on SQLite, whose integers
    # are wider, so a value is refused alike on both.
    order = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)


class MemberInputSerializer(serializers.Serializer):
    user = serializers.CharField(max_length=150, help_text="username")
    role = serializers.ChoiceField(choices=Role.choices)


class ProjectSettingsSerializer(serializers.ModelSerializer):
    """Types and choices only: the ranges are checked by services.project_settings_check, in
    words that say what a value has to be."""

    class Meta:
        model = Project
        fields = PROJECT_SETTING_FIELDS
        extra_kwargs = {field: {"required": False} for field in PROJECT_SETTING_FIELDS}

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if field_name in SETTING_RANGES:
            for bound in ("min_value", "max_value"):
                kwargs.pop(bound, None)
            kwargs["validators"] = []
        return field_class, kwargs


class ProjectCreateSerializer(ProjectSettingsSerializer):
    name = serializers.CharField(max_length=200)
    task_type = serializers.ChoiceField(choices=TaskType.choices)
    label_classes = LabelClassInputSerializer(many=True, required=False)
    members = MemberInputSerializer(many=True, required=False)

    class Meta(ProjectSettingsSerializer.Meta):
        fields = ["name", "task_type", *PROJECT_SETTING_FIELDS, "label_classes", "members"]
