"""The ``studio`` command line: the GUI by default, subcommands for headless work.

Each subcommand's work lives in ``studio/cmd/<module>.py`` as ``fn(args) -> int`` and is
imported only when that subcommand runs, so ``studio info`` never pays for torch or Qt.

Exit codes: 0 success, 2 bad input (one ``studio: error: ...`` line), 1 internal error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__
from .argtypes import MAX_SEED, count, real, seed, whole  # a bad number is a usage error: exit 2, one line
from .core.errors import StudioError
from .ml.options import add_train_arguments

PROG = "studio"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one line with exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise StudioError(message)


def _add_common_ml(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=seed, default=None, help=f"random seed, 0 to {MAX_SEED} (a take can be reproduced)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the model runs")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Cantor Studio: compose with a piano roll, a score and trained models.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("convert", help="convert between .mid/.musicxml/.mxl/.studio")
    p.add_argument("input", metavar="IN")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    p.set_defaults(handler="files:convert")

    p = sub.add_parser("info", help="tracks, notes, length, tempo, meter, key of a file")
    p.add_argument("input", metavar="IN")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler="files:info")

    p = sub.add_parser("render", help="render a song to WAV or FLAC with FluidSynth")
    p.add_argument("input", metavar="IN")
    p.add_argument("-o", "--output", required=True, metavar="OUT.wav|OUT.flac")
    p.add_argument("--soundfont", metavar="SF2", help="General MIDI soundfont (default: the system's, else the bundled one)")
    p.add_argument("--sample-rate", type=whole(8000, 192000), default=44100)
    p.set_defaults(handler="render:render")

    p = sub.add_parser("harmonize", help="write alto, tenor and bass under a melody (SATB chorale)")
    p.add_argument("input", metavar="IN")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    p.add_argument("--melody-track", type=count, default=None, metavar="N", help="1-based track holding the melody")
    p.add_argument("--keep", default="soprano", help="voices to keep, e.g. soprano,bass")
    p.add_argument("--temperature", type=real(0.0), default=None)
    p.add_argument("--candidates", type=count, default=None, metavar="K")
    _add_common_ml(p)
    p.set_defaults(handler="harmonizer:harmonize")

    p = sub.add_parser("continue", help="write the next bars after a song")
    p.add_argument("input", metavar="IN")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    p.add_argument("--bars", type=count, default=4, metavar="N")
    p.add_argument("--from-bar", type=count, default=None, metavar="B", help="1-based bar to continue from")
    p.add_argument("--temperature", type=real(0.0), default=None)
    p.add_argument("--top-p", type=real(0.0, 1.0, open_lo=True), default=None)
    p.add_argument("--key-strength", type=real(0.0), default=None,
                   help="how strongly new notes keep to the pitch classes of the bars before (0 = model alone)")
    p.add_argument("--takes", type=count, default=1, metavar="K", help="takes that differ from each other")
    p.add_argument("--density", default=None, metavar="D",
                   help="sparser, as-before or denser, for all tracks or per track: 1=denser,3=sparser")
    p.add_argument("--keep-range", action="store_true", help="new notes stay within each track's range before")
    p.add_argument("--cadence", action="store_true", help="end the new bars on a cadence (the tonic chord)")
    p.add_argument("--smooth-lines", action="store_true",
                   help="each one-line part moves by the intervals it used in its last 8 bars: more steps, "
                        "fewer leaps and repeated notes")
    p.add_argument("--free-density", action="store_true",
                   help="let the model choose how many notes each track plays; by default each track keeps "
                        "the notes per bar and chord sizes of its last 8 bars (times --density)")
    _add_common_ml(p)
    p.set_defaults(handler="continuation:continue_")

    p = sub.add_parser("vary", help="rewrite a selection with a denoising model")
    p.add_argument("input", metavar="IN")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    p.add_argument("--strength", type=real(0.0, 1.0), required=True, metavar="S", help="0 keeps the music, 1 writes it anew")
    p.add_argument("--bars", default=None, metavar="A:B", help="1-based bars A to B inclusive (default: all)")
    p.add_argument("--tracks", default=None, metavar="1,2", help="1-based tracks to vary (default: all)")
    p.add_argument("--takes", type=count, default=1, metavar="K")
    p.add_argument("--mode", default="free", choices=["free", "rhythm", "pitches"],
                   help="free: new rhythm and pitches; rhythm: keep the rhythm, new pitches; "
                        "pitches: keep the pitches in order, new rhythm (default: free)")
    _add_common_ml(p)
    p.set_defaults(handler="variation:vary")

    p = sub.add_parser("train", help="train a model: harmonizer, continuation or variation")
    p.add_argument("model", choices=["harmonizer", "continuation", "variation"])
    add_train_arguments(p)
    p.add_argument("--data", default=None, metavar="DIR", help="extra MIDI files to train on")
    p.set_defaults(handler="@train")

    p = sub.add_parser("eval", help="evaluate a model on held-out pieces: harmonizer, continuation or variation")
    p.add_argument("model", choices=["harmonizer", "continuation", "variation"])
    p.add_argument("--out", default=None, metavar="DIR", help="where to write figures")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--weights", default=None, metavar="DIR", help="model folder (default: models/<name>)")
    p.add_argument("--limit", type=count, default=None, help="evaluate on at most this many pieces")
    p.add_argument("--update-card", action="store_true",
                   help="write the figures into the model's card.json (otherwise models/ is left alone)")
    p.set_defaults(handler="@evaluate")

    p = sub.add_parser("bench", help="measure speed and memory, print a table")
    p.add_argument("--json", default=None, metavar="PATH")
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.set_defaults(handler="bench:bench")
    return parser


def gui_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Cantor Studio (GUI). Subcommands: " + ", ".join(SUBCOMMANDS) + "; see `studio COMMAND -h`.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("file", nargs="?", metavar="FILE", help="song to open (.studio, .mid, .musicxml, .mxl)")
    p.add_argument("--screenshot", metavar="PNG", help="lay out the window off-screen (see --size), save a PNG, exit")
    p.add_argument("--assist", choices=["harmonize", "continue", "vary"], help="run one assistant request first")
    p.add_argument("--size", default="1600x1000", metavar="WxH",
                   help="window size for --screenshot, e.g. 1280x720 (default 1600x1000)")
    # for tools and tests (hidden): what a screenshot shows, the start-up benchmark, no restore offer
    p.add_argument("--track", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--select", default=None, metavar="A:B", help=argparse.SUPPRESS)
    p.add_argument("--dialog", choices=["export", "properties"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--assist-timeout", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--first-paint", choices=["any", "notes"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--no-restore", action="store_true", help=argparse.SUPPRESS)
    return p


SUBCOMMANDS = ("convert", "info", "render", "harmonize", "continue", "vary", "train", "eval", "bench")


def _resolve(handler: str, args) -> callable:
    if handler.startswith("@"):  # train/eval: studio.cmd.<model>:<fn>
        module, fn = args.model, handler[1:]
    else:
        module, fn = handler.split(":")
    return getattr(importlib.import_module(f"studio.cmd.{module}"), fn)


def _show_file_warnings() -> None:
    """Print the notes for the user (a file's repairs, a model's) as ``studio: warning: ...`` lines
    (the exit code stays 0)."""
    import warnings

    from .core.errors import StudioWarning

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, StudioWarning):
            print(f"{PROG}: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    warnings.simplefilter("always", StudioWarning)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _show_file_warnings()
    try:
        if argv and argv[0] in SUBCOMMANDS:
            args = build_parser().parse_args(argv)
            return int(_resolve(args.handler, args)(args) or 0)
        if argv[:1] in (["-h"], ["--help"]):
            build_parser().print_help()
            return 0
        args = gui_parser().parse_args(argv)
        from .ui.app import run_gui

        return int(run_gui(args) or 0)
    except StudioError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # an internal bug: say so in one line, keep the detail for developers
        if os.environ.get("STUDIO_DEBUG"):
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc} (set STUDIO_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1
