"""Editor benchmarks for ``studio bench``: start-up, first paint and scrolling on 10,000 notes.

``measure()`` returns rows ``(name, value, unit, target)``. Start-up figures run the real
entry point (``python -m studio``) in a child process, off-screen, and time from launching the
process to the first paint of the piano roll. Scrolling is measured in this process: the roll is
laid out at 1600x1000 and repainted synchronously frame after frame while it scrolls.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # holds this studio/


def _child_env(home: str) -> dict:
    """The child runs *this* checkout's ``studio`` (first on its path, started in its folder): a
    virtual environment's editable install may point at another checkout, which then was measured
    instead, or, lacking the first-paint hook, never reported a paint ("studio did not paint")."""
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", STUDIO_SCORE="0",
                XDG_CONFIG_HOME=os.path.join(home, "c"), XDG_DATA_HOME=os.path.join(home, "d"),
                STUDIO_NO_AUDIO="1", PYTHONPATH=path)


def first_paint_seconds(path: str | None = None, repeat: int = 3) -> tuple[float, float]:
    """Seconds from launching ``studio [path]`` to the roll's first paint, best of ``repeat``:
    (wall clock, CPU time the process used). On a busy machine the CPU figure is the steadier one."""
    best, best_cpu = float("inf"), float("inf")
    with tempfile.TemporaryDirectory() as home:
        env = _child_env(home)
        for _ in range(repeat):
            args = [sys.executable, "-m", "studio"] + ([path] if path else []) + \
                ["--first-paint", "notes" if path else "any", "--no-restore"]
            t0 = time.time()
            proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                out, err = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                err += "\nno paint within 120 s"
            line = next((x for x in out.splitlines() if x.startswith("first-paint")), None)
            if line is None:
                raise RuntimeError(f"studio did not paint (exit code {proc.returncode}): {err.strip()[-200:]}")
            stamp, cpu = line.split()[1:3]
            cpu = float(cpu)
            best = min(best, float(stamp) - t0)
            best_cpu = min(best_cpu, cpu)
    return best, best_cpu


def ten_thousand_notes():
    """A 10,000-note song in 4 tracks (the same material as ``studio bench`` uses elsewhere)."""
    from ..core.song import Note, Song, Track

    tracks = []
    for t, (name, prog, base) in enumerate((("Piano", 0, 60), ("Strings", 48, 48), ("Bass", 32, 36), ("Flute", 73, 72))):
        notes = [Note(i * 120, base + (i * (t + 2)) % 24, 110, 60 + (i * 7) % 60) for i in range(2500)]
        tracks.append(Track(name, prog, t, notes=notes))
    return Song(title="10k notes", tracks=tracks)


def scroll_frames(song, frames: int = 120, zoom_out: bool = False) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds per frame of the editor (roll, ruler, keyboard, velocity
    lane) while it scrolls sideways; with ``zoom_out``, full repaints with the whole song in view.
    CPU time is what one core spends on the frame, which stays meaningful on a busy machine."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from .app import make_app
    from .document import Document
    from .pianoroll.editor import RollEditor

    app = make_app()
    doc = Document(song)
    ed = RollEditor(doc)
    ed.resize(1300, 900)  # the roll's share of a 1600x1000 window
    ed.show()
    app.processEvents()
    view = ed.view
    if zoom_out:  # the whole song on screen: every note is painted
        ed.geom.ppx = max(ed.geom.MIN_PPX, view.viewport().width() / max(1, song.end_tick))
        ed.geom.zoomed.emit()
    view.center_on_pitch(66)
    hb = view.horizontalScrollBar()
    step = max(4, view.viewport().width() // 60)  # about a second to cross the screen at 60 fps
    times, cpu = [], []
    app.processEvents()
    for i in range(frames):
        t0, c0 = time.perf_counter(), time.thread_time()
        if zoom_out:
            ed.repaint()  # nothing scrolls: repaint everything
        else:
            # one frame as the event loop makes it: scroll, then paint what became dirty
            hb.setValue(hb.value() + step if hb.value() + step <= hb.maximum() else 0)
            app.processEvents()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    ed.close()
    ed.deleteLater()
    app.processEvents()
    return times, cpu


def measure(quick: bool = False) -> list[tuple[str, float, str, str]]:
    from ..io import save

    rows = []
    wall, cpu = first_paint_seconds(None, 2 if quick else 3)
    rows.append(("GUI start to first window (empty song)", round(wall, 3), "s", "<= 1.5"))
    rows.append(("GUI start to first window, CPU time", round(cpu, 3), "s", "<= 1.5"))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "10k.mid")
        save(ten_thousand_notes(), path)
        wall, cpu = first_paint_seconds(path, 2 if quick else 3)
        rows.append(("GUI open 10k-note MIDI to first paint", round(wall, 3), "s", ""))
        rows.append(("GUI open 10k-note MIDI to first paint, CPU time", round(cpu, 3), "s", ""))
    song = ten_thousand_notes()
    wall, cpu = scroll_frames(song, 60 if quick else 150)
    p95 = lambda v: sorted(v)[max(0, int(len(v) * 0.95) - 1)]  # noqa: E731
    rows.append(("roll frame while scrolling 10k notes, median", round(statistics.median(wall), 2), "ms", "<= 16"))
    rows.append(("roll frame while scrolling 10k notes, 95th pct", round(p95(wall), 2), "ms", "<= 16"))
    rows.append(("roll frame while scrolling 10k notes, CPU median", round(statistics.median(cpu), 2), "ms", "<= 16"))
    wall, cpu = scroll_frames(song, 20 if quick else 40, zoom_out=True)
    rows.append(("roll full repaint, whole 10k-note song in view, median", round(statistics.median(wall), 2), "ms", ""))
    return rows


if __name__ == "__main__":
    for name, value, unit, target in measure(quick="--quick" in sys.argv):
        print(f"{name:58s} {value:10.3f} {unit:3s} {target}")
