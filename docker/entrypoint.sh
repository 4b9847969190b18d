#!/bin/sh
# One entrypoint, one process per container: migrate (once, before the others), web,
# worker-default, worker-gpu or beat. Anything else runs as given.
set -e
case "$1" in
  migrate) exec python manage.py migrate --noinput ;;
  web)
    # granian: HTTP handled in Rust, the WSGI application in WEB_THREADS threads per process
    # (request handling is CPU-bound Python: processes for the cores). Against gunicorn gthread
    # at the same 4 x 8 on the queue's hot paths (bench/RESULTS.md, issue 20): 32 annotators
    # without think time get next p99 170-202 ms instead of 255-338 ms, at 11-13 ms of CPU per
    # annotation instead of 13.5-15. Uploads stream (a 400 MB body: 12 MB more worker memory).
    # A worker that dies is started again.
    exec granian --interface wsgi vision_project.wsgi:application --host 0.0.0.0 --port "${PORT:-8000}" \
      --workers "${WEB_WORKERS:-4}" --blocking-threads "${WEB_THREADS:-8}" \
      --respawn-failed-workers --access-log ;;
  worker-default)
    exec celery -A vision_project worker -Q default --concurrency "${DEFAULT_CONCURRENCY:-4}" \
      --hostname "default@%h" ;;
  # One process per GPU: each gpu-worker container is given one device (compose reserves it).
  worker-gpu) exec celery -A vision_project worker -Q gpu --concurrency 1 --hostname "gpu@%h" ;;
  beat)
    exec celery -A vision_project beat --scheduler django_celery_beat.schedulers:DatabaseScheduler ;;
  *) exec "$@" ;;
esac
