"""Time from submit to the next image painted, measured in headless Chromium.

The annotate page marks `vision:submit` when the person presses Enter and
`vision:painted` two animation frames after the next image is in place, and measures
`vision:submit-to-paint` between them (frontend/src/pages/annotate.ts). This script
serves VISION on loopback (Django's live server over a fresh test database, the Vite
build for static files), submits a run of pre-labelled images as fast as the page
allows, and reports the distribution. Target: under 150 ms.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/vision_bench \
        .venv/bin/python bench/bench_submit_to_paint.py [--images 40] [--sizes 640x480,1600x1200]

Prints a table and appends it to bench/RESULTS.md.
"""
import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vision_project.settings")
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="vision-bench-media-"))
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def measure(base_url: str, project_id: int, images: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, sign_in, wait_for_js

    durations = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800}).new_page()
        sign_in(page, "bench")
        page.goto(f"/projects/{project_id}/annotate/")
        for _ in range(images - 1):
            # Steady state: the next task is prefetched, the last submit has landed, and the
            # shown image has been on screen long enough for a submit of it to count.
            wait_for_js(page,
                "() => { const r = document.getElementById('annotate');"
                " return r.dataset.armed === r.dataset.taskId && r.dataset.prefetched"
                " && document.getElementById('save-state').dataset.state === 'saved'; }"
            )
            shown = page.get_attribute("#annotate", "data-task-id")
            page.keyboard.press("Enter")
            wait_for_js(page,
                "prev => document.getElementById('annotate').dataset.painted !== prev", arg=shown
            )
            durations.append(page.evaluate(
                "performance.getEntriesByName('vision:submit-to-paint').at(-1).duration"
            ))
        browser.close()
    return durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40, help="images per size")
    parser.add_argument("--sizes", default="640x480,1600x1200", help="image sizes, WxH, comma-separated")
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.testcases import LiveServerThread, _StaticFilesHandler
    from django.test.utils import setup_test_environment

    from labeling.models import Membership, Role
    from tests.e2e.factories import detection_scene

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    server = LiveServerThread("127.0.0.1", _StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    rows = []
    try:
        user = get_user_model().objects.create_user("bench", password="pw-bench")
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.split("x"))
            scene = detection_scene(members={}, images=args.images, width=width, height=height)
            Membership.objects.create(project=scene.project, user=user, role=Role.ANNOTATOR)
            durations = sorted(measure(f"http://127.0.0.1:{server.port}", scene.project.pk, args.images))
            rows.append((size, len(durations), statistics.median(durations),
                         durations[int(0.95 * (len(durations) - 1))], durations[-1]))
    finally:
        server.terminate()
        connection.creation.destroy_test_db(old_name, verbosity=0)

    header = "| image size | submits | median ms | p95 ms | max ms |\n|---|---|---|---|---|\n"
    table = header + "".join(f"| {s} | {n} | {m:.1f} | {p:.1f} | {x:.1f} |\n" for s, n, m, p, x in rows)
    print(table)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "DATABASE_URL=... .venv/bin/python bench/bench_submit_to_paint.py " + " ".join(sys.argv[1:])
    entry = (
        f"\n## Submit to next image painted (annotate page, headless Chromium, loopback)\n\n"
        f"- machine: {platform.machine()} box, {os.cpu_count()} CPU cores shared with other work; "
        f"Django's threaded live server over PostgreSQL\n- date: {stamp}\n"
        f"- command: `{command.strip()}`\n- target: under 150 ms\n\n{table}"
    )
    with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as results:
        results.write(entry)


if __name__ == "__main__":
    main()
