"""The Celery app. Two queues: `default` (imports, exports, reports) and `gpu`
(training, prediction); a GPU worker consumes `gpu` with prefetch 1 so a long job never
sits reserved behind another."""
import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vision_project.settings")

app = Celery("vision")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("gpu"))
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _make_broker_folders(sender, **kwargs):
    """The file-system transport needs its folders before the first message."""
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)
