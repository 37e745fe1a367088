"""``studio render IN -o OUT.wav|OUT.flac [--soundfont SF2] [--sample-rate HZ]``."""

from __future__ import annotations

import os
import sys

from ..core.errors import StudioError


def render(args) -> int:
    from ..audio.render import MAX_SECONDS, output_format, render_file  # noqa: PLC0415
    from ..audio.synth import find_soundfont, fluidsynth_available  # noqa: PLC0415
    from ..core.timing import song_seconds  # noqa: PLC0415
    from ..io import load  # noqa: PLC0415

    out = args.output
    output_format(out)  # a wrong extension is reported before any work
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise StudioError(f"{out}: the folder {folder} does not exist")
    if os.path.isdir(out):
        raise StudioError(f"{out}: is a folder")
    if not os.access(folder, os.W_OK):
        raise StudioError(f"{out}: cannot write in the folder {folder}")
    rate = int(args.sample_rate)
    if not 8000 <= rate <= 192000:
        raise StudioError(f"--sample-rate {rate}: must be between 8000 and 192000 Hz")
    soundfont = find_soundfont(args.soundfont)
    ok, why = fluidsynth_available()
    if not ok:
        raise StudioError(f"cannot render audio: {why}")
    song = load(args.input)
    if song.note_count == 0:
        raise StudioError(f"{os.path.basename(args.input)}: the song has no notes to render")

    secs = song_seconds(song)
    if secs > MAX_SECONDS:
        raise StudioError(f"{os.path.basename(args.input)}: {secs / 60:.0f} minutes of music is too long to render "
                          f"(at most {MAX_SECONDS / 60:.0f})")
    tty = sys.stderr.isatty()

    def progress(frac: float) -> bool:
        if tty:
            print(f"\rrendering {frac * 100:5.1f}%", end="", file=sys.stderr, flush=True)
        return True

    stats: dict = {}
    render_file(song, out, soundfont, rate, progress, stats=stats)
    if tty:
        print(file=sys.stderr)
    wall = stats["render_seconds"]
    print(f"wrote {out}: {stats['audio_seconds']:.1f} s of audio ({secs:.1f} s of music + release), {rate} Hz stereo, "
          f"soundfont {soundfont.name}; rendered in {wall:.1f} s ({stats['audio_seconds'] / max(wall, 1e-9):.0f}x real time), "
          f"soundfont load {stats['load_seconds']:.1f} s, file write {stats['write_seconds']:.1f} s")
    return 0
