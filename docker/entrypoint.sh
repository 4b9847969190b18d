#!/bin/sh
# One entrypoint, one process per container: web, worker-default, worker-gpu or beat.
set -e
case "$1" in
  web)
    python manage.py migrate --noinput
    python manage.py collectstatic --noinput --verbosity 0
    # Processes rather than threads: request handling is CPU-bound Python (see bench/RESULTS.md).
    exec gunicorn vision_project.wsgi:application --bind 0.0.0.0:8000 --workers "${WEB_WORKERS:-6}" --threads 2 ;;
  worker-default) exec celery -A vision_project worker -Q default --concurrency 4 ;;
  worker-gpu) exec celery -A vision_project worker -Q gpu --concurrency 1 ;;
  beat) exec celery -A vision_project beat --scheduler django_celery_beat.schedulers:DatabaseScheduler ;;
  *) exec "$@" ;;
esac
