"""factory_boy factories for the common rows."""
import hashlib
import io

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from core.models import Image, LabelClass, Project, TaskType
from labeling.models import Membership, Role, Task


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"project {n}")
    task_type = TaskType.DETECTION
    # Tests of the queue order ask for the random control arm where they test it.
    random_share = 0.0


class LabelClassFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LabelClass

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"class{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.ANNOTATOR


def png_bytes(width: int = 64, height: int = 48, color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


class ImageFactory(factory.django.DjangoModelFactory):
    """An Image row with a real stored PNG (distinct content per row)."""

    class Meta:
        model = Image

    project = factory.SubFactory(ProjectFactory)
    width = 64
    height = 48
    original_name = factory.Sequence(lambda n: f"img{n}.png")
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.original_name.encode()).hexdigest())
    file = factory.LazyAttribute(
        lambda o: ContentFile(png_bytes(o.width, o.height, (len(o.original_name) * 7 % 255, 30, 30)),
                              name=f"{o.sha256}.png")
    )


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    image = factory.SubFactory(ImageFactory)
    project = factory.LazyAttribute(lambda o: o.image.project)
