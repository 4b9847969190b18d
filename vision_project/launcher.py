"""Run the whole of VISION in the foreground: web server, Celery worker, Celery beat.

`python -m vision_project.launcher [--port 8000]`. Ctrl-C (or SIGTERM) stops all three; if
any one of them dies, the others are stopped too, so a half-running system never lingers.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

PROCESS_NAMES = ("web", "worker", "beat")


def commands(host: str, port: int, web_workers: int) -> dict[str, list[str]]:
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "vision_project"]
    return {
        "web": [python, "-m", "granian", "--interface", "wsgi", "vision_project.wsgi:application",
                "--host", host, "--port", str(port), "--workers", str(web_workers), "--blocking-threads", "4",
                "--respawn-failed-workers", "--access-log", "--workers-kill-timeout", "5"],
        # Gossip and mingle need broadcast messaging, which the file-system broker lacks.
        "worker": [*celery, "worker", "-Q", "default,gpu", "--concurrency", "2",
                   "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        "beat": [*celery, "beat", "--loglevel", "INFO",
                 "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()

    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    env = dict(os.environ)
    for name, command in commands(args.host, args.port, args.web_workers).items():
        # Own process group: the terminal's Ctrl-C reaches us once, and we stop each child.
        children[name] = subprocess.Popen(command, env=env, start_new_session=True)
    print(f"VISION is running on http://{args.host}:{args.port}/  (Ctrl-C stops it)", flush=True)

    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with status {child.returncode}; stopping the rest", flush=True)
                exit_code = child.returncode or 1
                stopping = True
                break
        time.sleep(0.5)

    # Each main process shuts its own workers down; the group is killed only on timeout.
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    print("VISION stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
