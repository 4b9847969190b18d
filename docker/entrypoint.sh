#!/bin/sh
# One entrypoint, one process per container: migrate (once, before the others), web,
# worker-default, worker-gpu or beat. Anything else runs as given.
set -e
case "$1" in
  migrate) exec python manage.py migrate --noinput ;;
  web)
    # Request handling is CPU-bound Python: processes for the cores. Threads so that a
    # keep-alive connection, which stays with the process that accepted it, never waits
    # behind another while a thread of its process is free: 32 annotators, no think time,
    # next p99 415-423 ms at 4x8 against 839-1289 ms at 4x2 (bench/RESULTS.md, issue 20).
    exec gunicorn vision_project.wsgi:application --bind "0.0.0.0:${PORT:-8000}" \
      --workers "${WEB_WORKERS:-4}" --threads "${WEB_THREADS:-8}" --access-logfile - ;;
  worker-default)
    exec celery -A vision_project worker -Q default --concurrency "${DEFAULT_CONCURRENCY:-4}" \
      --hostname "default@%h" ;;
  # One process per GPU: each gpu-worker container is given one device (compose reserves it).
  worker-gpu) exec celery -A vision_project worker -Q gpu --concurrency 1 --hostname "gpu@%h" ;;
  beat)
    exec celery -A vision_project beat --scheduler django_celery_beat.schedulers:DatabaseScheduler ;;
  *) exec "$@" ;;
esac
