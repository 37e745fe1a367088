"""Engraving a Song with verovio, run in a helper process (no Qt here).

``engrave(song, width_px, first_bar, n_bars)`` takes a window of bars of the song (engraving a
whole symphony movement takes minutes; a window takes a second or two and follows the roll and
the playhead), turns it into MusicXML (``studio.io.musicxml``, our own
quantized ticks), lets verovio lay it out at the given width, and returns plain data the score
view can show: one SVG per page that QtSvg can draw (verovio's nested ``<svg>`` is turned into
a ``<g>`` and its hidden placeholders removed), the position of every note head in page pixels,
the extent of every system, and the timemap (tick -> note ids) for the playback cursor.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

SCALE = 42  # verovio zoom in percent
_TRANSLATE = re.compile(r"translate\(\s*([-\d.]+)[ ,]+([-\d.]+)\s*\)")
_MEASURE_NO = re.compile(r'(<measure\b[^>]*?\bnumber=")(\d+)"')
_PATH_Y = re.compile(r"M\s*([-\d.]+)\s+([-\d.]+)\s+L\s*([-\d.]+)\s+([-\d.]+)")


@dataclass
class EngravedNote:
    id: str
    staff: int  # 0-based staff in the system = track index
    tick: int
    pitch: int
    page: int
    system: int  # index into Page.systems
    x: float  # note head centre, page pixels
    y: float


@dataclass
class Page:
    svg: bytes
    width: float
    height: float
    systems: list = field(default_factory=list)  # (x0, y0, x1, y1) page pixels


@dataclass
class Engraving:
    pages: list
    notes: dict  # id -> EngravedNote
    timemap: list  # [(tick, [ids...]), ...] sorted by tick (song ticks)
    error: str = ""
    first_bar: int = 0  # 0-based bar index of the window
    last_bar: int = 0  # exclusive
    start_tick: int = 0
    end_tick: int = 0


def performed(notes, ppq: int) -> bool:
    """Whether a track was played in rather than written: most onsets miss the 32nd-note and
    16th-triplet grids (a written part sits on them)."""
    if len(notes) < 8:
        return False
    off = sum(1 for n in notes if n.start % (ppq // 8) and n.start % (ppq // 6))
    return off > 0.3 * len(notes)


def display_quantize(notes, ppq: int) -> list:
    """Performed notes made readable for the score (the song itself is not changed): onsets and
    ends to the nearest 16th, at least a 16th long, and a gap shorter than an 8th before the
    next onset closed (a played legato line is not a row of 16th rests)."""
    g = ppq // 4
    snapped = []
    for n in notes:
        s = int(round(n.start / g)) * g
        e = max(s + g, int(round(n.end / g)) * g)
        snapped.append([s, e, n])
    onsets = sorted({s for s, _e, _n in snapped})
    import bisect

    out = []
    for s, e, n in snapped:
        i = bisect.bisect_right(onsets, s)
        nxt = onsets[i] if i < len(onsets) else None
        if nxt is not None and e < nxt and nxt - e < ppq // 2:
            e = nxt
        out.append(type(n)(s, n.pitch, e - s, n.velocity))
    return sorted(set(out))


def window(song, first_bar: int, n_bars: int):
    """A copy of ``song`` holding bars ``first_bar .. first_bar+n_bars-1``, shifted to start at 0.

    Notes that start in the window are kept (cut at its end); meter, tempo and key are the ones
    in force at the window's start. Returns (sub-song, start tick, end tick, bar range).
    """
    from ...core.song import Song, Track  # noqa: PLC0415
    from ...core.timing import bars  # noqa: PLC0415

    all_bars = bars(song)
    first_bar = max(0, min(first_bar, len(all_bars) - 1))
    last = min(len(all_bars), first_bar + n_bars)
    a, b = all_bars[first_bar].start, all_bars[last - 1].end
    tracks = []
    fermatas = {f - a for f in song.fermatas if a <= f < b}
    for t in song.tracks:
        notes = [n.moved(-a, 0) for n in t.notes if a <= n.start < b]
        if performed(notes, song.ppq):
            notes = display_quantize(notes, song.ppq)
            g = song.ppq // 4  # a fermata follows its note onto the 16th grid
            fermatas |= {int(round(f / g)) * g for f in fermatas}
        notes = [n if n.end <= b - a else type(n)(n.start, n.pitch, b - a - n.start, n.velocity) for n in notes
                 if n.start < b - a]  # (a played note snapped onto the window's end belongs to the next)
        tracks.append(Track(t.name, t.program, t.channel, t.is_drum, notes, t.color))
    shift = lambda ev: type(ev)(0, *[getattr(ev, f) for f in ev.__slots__ if f != "tick"])  # noqa: E731
    sub = Song(title=song.title, ppq=song.ppq, tracks=tracks,
               tempos=[shift(song.tempo_at(a))] + [type(e)(e.tick - a, e.bpm) for e in song.tempos if a < e.tick < b],
               time_signatures=[shift(song.time_signature_at(a))] + [
                   type(e)(e.tick - a, e.numerator, e.denominator) for e in song.time_signatures if a < e.tick < b],
               key_signatures=[shift(song.key_at(a))] + [
                   type(e)(e.tick - a, e.fifths, e.minor) for e in song.key_signatures if a < e.tick < b],
               pickup=song.pickup if first_bar == 0 else 0, fermatas=tuple(sorted(fermatas)))
    return sub, a, b, (first_bar, last)


def _cls(el) -> str:
    return el.get("class", "")


def flatten_svg(svg_text: str):
    """Parse verovio SVG; return (root element, scale factor from viewBox units to pixels, page margin)."""
    root = ET.fromstring(svg_text)
    inner = next((c for c in root if c.tag == f"{{{SVG_NS}}}svg"), None)
    factor, margin = 1.0, (0.0, 0.0)
    if inner is not None:
        vb = [float(v) for v in inner.get("viewBox", "0 0 1 1").split()]
        width = float(root.get("width", "100").rstrip("px"))
        height = float(root.get("height", "100").rstrip("px"))
        factor = width / vb[2] if vb[2] else 1.0
        fy = height / vb[3] if vb[3] else factor
        inner.tag = f"{{{SVG_NS}}}g"
        keep = {k: v for k, v in inner.attrib.items() if k in ("color", "font-family")}
        inner.attrib.clear()
        inner.attrib.update(keep)
        inner.set("transform", f"scale({factor:.6f},{fy:.6f}) translate({-vb[0]},{-vb[1]})")
        root.set("viewBox", f"0 0 {width} {height}")
        for pm in inner.iter(f"{{{SVG_NS}}}g"):
            if "page-margin" in _cls(pm):
                m = _TRANSLATE.search(pm.get("transform", ""))
                if m:
                    margin = (float(m.group(1)), float(m.group(2)))
                break
    # QtSvg wants a <text> with one font size and no nested <tspan>s: fold them into the text
    for text in root.iter(f"{{{SVG_NS}}}text"):
        size = next((e.get("font-size") for e in text.iter() if e.get("font-size") not in (None, "0px", "0")), None)
        content = "".join(text.itertext()).strip()
        for child in list(text):
            text.remove(child)
        text.text = content
        if size:
            text.set("font-size", size)
    # drop verovio's invisible placeholders (browsers hide them with CSS that QtSvg ignores)
    for parent in list(root.iter()):
        for child in list(parent):
            # tempo marks use a note glyph from a music font that QtSvg text cannot show
            if "placeholder" in _cls(child) or "tempo" in _cls(child).split():
                parent.remove(child)
    return root, factor, margin


def _note_positions(root, factor: float, margin) -> tuple[dict, list]:
    """id -> (staff, system, x, y) of each note head, and system extents, in pixels."""
    mx, my = margin
    notes, systems = {}, []
    for system in root.iter(f"{{{SVG_NS}}}g"):
        if _cls(system) != "system":
            continue
        si = len(systems)
        ys, xs = [], []
        for measure in system:
            if "measure" not in _cls(measure).split():
                continue
            staff_no = 0
            for staff in measure:
                if "staff" not in _cls(staff).split():
                    continue
                for path in staff.findall(f"{{{SVG_NS}}}path"):
                    m = _PATH_Y.search(path.get("d", ""))
                    if m:
                        xs += [float(m.group(1)), float(m.group(3))]
                        ys.append(float(m.group(2)))
                for note in staff.iter(f"{{{SVG_NS}}}g"):
                    if "note" not in _cls(note).split() or not note.get("id"):
                        continue
                    use = note.find(f".//{{{SVG_NS}}}use")
                    m = _TRANSLATE.search(use.get("transform", "")) if use is not None else None
                    if m:
                        x = (float(m.group(1)) + 110 + mx) * factor
                        y = (float(m.group(2)) + my) * factor
                        notes[note.get("id")] = (staff_no, si, x, y)
                staff_no += 1
        if ys:
            systems.append(((min(xs) + mx) * factor, (min(ys) + my) * factor - 12,
                            (max(xs) + mx) * factor, (max(ys) + my) * factor + 12))
        else:
            systems.append((0, 0, 0, 0))
    return notes, systems


def number_bars(xml: str, full_song, first_bar: int) -> str:
    """The MusicXML of a window starting at bar index ``first_bar`` with its bars numbered as
    in the whole song (a pickup is bar 0), not from 1."""
    if not first_bar:
        return xml
    from ...core.timing import first_bar_number  # noqa: PLC0415

    shift = first_bar - 1 + first_bar_number(full_song)
    return _MEASURE_NO.sub(lambda m: f'{m.group(1)}{int(m.group(2)) + shift}"', xml)


def engrave(full_song, width_px: int, first_bar: int = 0, n_bars: int = 12, scale: int = SCALE) -> Engraving:
    """Lay out a window of bars for a view ``width_px`` wide (see the module docstring)."""
    import verovio  # noqa: PLC0415 - only the helper process needs it

    from ...io.musicxml import song_to_musicxml_bytes  # noqa: PLC0415

    song, a, b, (fb, lb) = window(full_song, first_bar, n_bars)
    empty = Engraving([], {}, [], first_bar=fb, last_bar=lb, start_tick=a, end_tick=b)
    if not any(t.notes for t in song.tracks):
        return empty
    xml = song_to_musicxml_bytes(song).decode("utf-8")
    xml = number_bars(xml, full_song, fb)
    verovio.enableLog(verovio.LOG_ERROR)  # layout warnings are not the user's business
    if width_px < 520:  # narrow views: a smaller staff keeps more than one bar on a line
        scale = min(scale, 34)
    tk = verovio.toolkit()
    tk.setOptions({
        "pageWidth": max(400, int(width_px * 100 / scale)),
        "scale": scale,
        "adjustPageHeight": True,
        "breaks": "auto",
        "footer": "none",
        "header": "none",
        "pageMarginLeft": 40, "pageMarginRight": 40, "pageMarginTop": 40, "pageMarginBottom": 40,
        "svgHtml5": False,
    })
    if not tk.loadData(xml):
        empty.error = "verovio could not read the MusicXML"
        return empty
    ppq = song.ppq
    pages, notes = [], {}
    for pno in range(1, tk.getPageCount() + 1):
        root, factor, margin = flatten_svg(tk.renderToSVG(pno))
        positions, systems = _note_positions(root, factor, margin)
        w = float(root.get("width", "0").rstrip("px"))
        h = float(root.get("height", "0").rstrip("px"))
        page_index = len(pages)
        pages.append(Page(ET.tostring(root, encoding="utf-8"), w, h, systems))
        for nid, (staff, si, x, y) in positions.items():
            notes[nid] = EngravedNote(nid, staff, -1, -1, page_index, si, x, y)
    timemap = []
    for entry in tk.renderToTimemap({"includeMeasures": False, "includeRests": False}):
        ons = [i for i in entry.get("on", []) if i in notes]
        tick = a + int(round(float(entry.get("qstamp", 0)) * ppq))
        for nid in ons:
            n = notes[nid]
            n.tick = tick
            n.pitch = int(tk.getMIDIValuesForElement(nid).get("pitch", -1))
        if ons:
            timemap.append((tick, ons))
    return Engraving(pages, notes, timemap, "", fb, lb, a, b)
