#!/bin/sh
# One entrypoint, one process per container: migrate (once, before the others), web,
# worker-default, worker-gpu or beat. Anything else runs as given.
set -e
case "$1" in
  migrate) exec python manage.py migrate --noinput ;;
  web)
    # granian: HTTP handled in Rust, the WSGI application in WEB_THREADS threads per process.
    # Request handling is CPU-bound Python: one process per CPU, a few threads each to cover
    # the waits on PostgreSQL; more processes or threads than that only contend for the cores
    # and the GIL (bench/RESULTS.md, issue 20: on 2 CPUs, 2 x 4 against 4 x 8 at 32 annotators
    # without think time gave next p99 223-311 ms instead of 309-500 ms and 87-122 instead of
    # 64-98 annotations/s, in each of 4 interleaved rounds). Against gunicorn gthread, granian
    # gave 32 annotators next p99 170-202 ms instead of 255-338 ms. Uploads stream (a 400 MB
    # body: 12 MB more worker memory). A worker that dies is started again.
    exec granian --interface wsgi vision_project.wsgi:application --host 0.0.0.0 --port "${PORT:-8000}" \
      --workers "${WEB_WORKERS:-$(nproc)}" --blocking-threads "${WEB_THREADS:-4}" \
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
