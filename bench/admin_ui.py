"""scripts/bench --admin-ui: what the Socket.IO Admin UI costs our server.

Owns: the two extra server slots (``ours-admin-ui``: ``--admin-ui`` on, nobody watching; ``ours-admin-ui-
watched``: on, one admin logged in on /admin in development mode, see bench/admin_watch.py), the watcher's
lifetime around a scenario, and the markdown table of each slot against plain ``ours`` (the claim: the UI
costs nothing measurable when it is off, little when nobody watches). Must not know the driver or other
servers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.report import HEADLINES, dig, fmt, ratio
from bench.servers import ROOT, RunningServer, ServerSpec

TOKEN = "bench-admin-ui-token"
ON = "ours-admin-ui"
WATCHED = "ours-admin-ui-watched"
FLAGS = f" --admin-ui --admin-token {TOKEN}"


def variant_specs(ours: ServerSpec) -> list[ServerSpec]:
    """The Admin UI slots, built from our server's slot (same command, plus ``--admin-ui``)."""
    return [
        ServerSpec(ON, "ours, --admin-ui, not watched", ours.command + FLAGS, ours.requires, dict(ours.env)),
        ServerSpec(WATCHED, "ours, --admin-ui, 1 admin watching", ours.command + FLAGS, ours.requires,
                   dict(ours.env)),
    ]


@contextmanager
def watching(spec: ServerSpec, server: RunningServer, log_path: Path) -> Iterator[None]:
    """For the watched slot: an admin logged in for the whole scenario (its counts go to the log)."""
    if spec.key != WATCHED:
        yield
        return
    venv_python = Path(os.environ.get("VENV", str(ROOT / ".venv"))) / "bin" / "python"
    python = str(venv_python) if venv_python.exists() else sys.executable
    with open(log_path.with_suffix(".admin-watch.log"), "w") as log:
        argv = [python, "-m", "bench.admin_watch", server.url, TOKEN]
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "watching":
                raise RuntimeError(f"the admin watcher did not log in (see {log.name})")
            yield
        finally:
            proc.terminate()
            try:
                out, _ = proc.communicate(timeout=15)
                log.write(out)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def markdown(records: list[dict[str, Any]]) -> str:
    """The Admin UI slots against plain ``ours``: each figure and the ratio slot / ours."""
    by = {(r["scenario"], r["server"]): r for r in records}
    if not any(key in (ON, WATCHED) for _, key in by):
        return ""
    lines = ["", "## Admin UI: on / off", "",
             "`--admin-ui` on (nobody watching; one admin watching) against ours without it; a ratio of 1 is "
             "no cost.", "",
             "| scenario | metric | ours | admin-ui on | ratio | watched | ratio |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for h in HEADLINES:
        base = dig(by.get((h.scenario, "ours"), {}).get("metrics"), h.path)
        on = dig(by.get((h.scenario, ON), {}).get("metrics"), h.path)
        watched = dig(by.get((h.scenario, WATCHED), {}).get("metrics"), h.path)
        if base is None and on is None and watched is None:
            continue
        lines.append(f"| {h.scenario} | {h.label} | {fmt(base)} | {fmt(on)} | {fmt(ratio(on, base))} | "
                     f"{fmt(watched)} | {fmt(ratio(watched, base))} |")
    return "\n".join(lines) + "\n"
