"""Create demo users and two demo projects with real images. Safe to run repeatedly."""
import io
import random
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from core.models import Image, Project, TaskType
from labeling import demo
from labeling.ingest import image_ingest
from labeling.models import Role
from labeling.services import annotation_import_create, label_class_create, membership_set, project_create
from labeling.signals import images_imported_send

DEMO_USERS = [("admin", Role.ADMIN), ("lead", Role.LEAD), ("annotator", Role.ANNOTATOR)]
DETECTION_NAME = "Demo: tree crowns (detection)"
CLASSIFICATION_NAME = "Demo: handwritten digits (classification)"
# A share of the demo comes with its labels, so a first model can be trained at once.
PRELABELED_SHARE = 0.4


class Command(BaseCommand):
    help = "Create demo users (admin, lead, annotator) and two demo projects."

    def handle(self, *args, **options):
        credentials = self._users()
        users = {name: get_user_model().objects.get(username=name) for name, _ in DEMO_USERS}
        self._project(DETECTION_NAME, TaskType.DETECTION, users, demo.detection_images())
        self._project(CLASSIFICATION_NAME, TaskType.CLASSIFICATION, users, demo.classification_images())
        self.stdout.write("Demo users (username / password):")
        for name, password in credentials.items():
            self.stdout.write(f"  {name} / {password}")

    def _users(self) -> dict[str, str]:
        """Passwords are random once, then kept in var/ so later runs print the same ones."""
        path = Path(settings.VAR_DIR) / "demo-credentials.txt"
        saved = {}
        if path.exists():
            saved = dict(line.split(" ", 1) for line in path.read_text().splitlines() if " " in line)
        User = get_user_model()
        for name, role in DEMO_USERS:
            password = saved.get(name) or secrets.token_urlsafe(9)
            user, created = User.objects.get_or_create(username=name)
            if created or not user.check_password(password):
                user.set_password(password)
            user.is_staff = user.is_superuser = role == Role.ADMIN
            user.save()
            saved[name] = password
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{n} {p}\n" for n, p in saved.items()))
        path.chmod(0o600)
        return saved

    def _project(self, name, task_type, users, images):
        project = Project.objects.filter(name=name).first()
        if project is None:
            project = project_create(name=name, task_type=task_type, created_by=users["admin"],
                                     train_epochs=10, train_image_size=320 if task_type == TaskType.DETECTION else 64)
        for username, role in DEMO_USERS:
            membership_set(project=project, user=users[username], role=role)
        if task_type == TaskType.CLASSIFICATION:
            # Made up front so the class list reads 0-9 (classes made while labeling come
            # in the images' random order); each digit is its own class's key.
            existing = set(project.label_classes.values_list("name", flat=True))
            for class_name in demo.CLASSIFICATION_CLASSES:
                if class_name not in existing:
                    label_class_create(project=project, name=class_name)
        rng = random.Random(project.pk)
        added = []
        for item in images:
            result = image_ingest(project=project, name=item.name, stream=io.BytesIO(item.png), size=len(item.png))
            if result.status != "created":
                continue
            added.append(result.image_id)
            if rng.random() < PRELABELED_SHARE:
                self._label(project, Image.objects.get(pk=result.image_id), item, rng)
        images_imported_send(project=project, image_ids=added)  # queues their embedding run
        self.stdout.write(f"{project.name}: {len(added)} new images, {project.images.count()} in all")

    @transaction.atomic
    def _label(self, project, image, item, rng):
        classes = {c.name: c.pk for c in project.label_classes.all()}
        wanted = [box[4] for box in item.boxes] + ([item.label] if item.label else [])
        for class_name in sorted(set(wanted) - set(classes)):
            classes[class_name] = label_class_create(project=project, name=class_name).pk
        if project.task_type == TaskType.DETECTION:
            payload = {"boxes": [{"x1": x1, "y1": y1, "x2": x2, "y2": y2, "label": classes[c]}
                                 for x1, y1, x2, y2, c in item.boxes]}
        else:
            payload = {"labels": [classes[item.label]]}
        annotation_import_create(image=image, payload=payload)
