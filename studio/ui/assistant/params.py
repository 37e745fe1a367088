"""The assistant's parameter pages (Continue, Harmonize, Vary), the requests they make, and
putting an accepted take's settings back (from the AI history).  A mixin of the panel."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QRadioButton,
                               QSlider, QSpinBox, QVBoxLayout, QWidget)

from . import requests as rq

KINDS = ("continue", "harmonize", "vary")
VARY_MODES = (("Free", "free", "New rhythm and new pitches, on the passage's own grid"),
              ("Keep rhythm", "rhythm", "New pitches on the same onsets and lengths"),
              ("Keep pitches", "pitches", "The same pitches in the same order, on a new rhythm"))


def _spin(lo, hi, value, special="", tip="", step=1):
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setValue(value)
    s.setSingleStep(step)
    if special:
        s.setSpecialValueText(special)
    s.setToolTip(tip)
    return s


def _dspin(lo, hi, value, step, special="", tip=""):
    s = QDoubleSpinBox()
    s.setRange(lo, hi)
    s.setDecimals(2)
    s.setSingleStep(step)
    s.setValue(value)
    if special:
        s.setSpecialValueText(special)
    s.setToolTip(tip)
    return s


KEY_DEFAULT = -0.1  # the key-strength box's lowest value stands for "the model's default"


class ParamPages:
    """Builds the three pages and turns them into requests (``self.tabs`` holds the pages)."""

    def _continue_page(self) -> QWidget:
        w = QWidget()
        f = QFormLayout(w)
        self.c_bars = _spin(1, 32, 4, tip="How many bars to write")
        self.c_temp = _dspin(0.0, 2.0, 0.0, 0.05, "model default", "Higher: more adventurous; lower: safer")
        self.c_top_p = _dspin(0.0, 1.0, 0.0, 0.01, "model default", "Nucleus sampling: keep the likeliest tokens "
                                                                     "that make up this much probability")
        self.c_key = _dspin(KEY_DEFAULT, 3.0, KEY_DEFAULT, 0.1, "model default",
                            "How strongly new notes keep to the pitch classes of the bars before "
                            "(0: the model alone; higher: closer to the key)")
        self.c_takes = _spin(1, 8, 2, tip="How many different takes to write (a take that repeats another is "
                                          "drawn again)")
        self.c_seed = _spin(0, 2**31 - 1, 0, "random", "Seed for a reproducible take (random: a new one each time)")
        self.c_density = QComboBox()
        self.c_density.addItems([d.capitalize() for d in rq.DENSITIES])
        self.c_density.setCurrentIndex(rq.DENSITIES.index("as before"))
        self.c_density.setToolTip("Fewer or more notes than the bars before")
        self.c_density_track = QCheckBox("Current track only")
        self.c_density_track.setToolTip("Change the density of the current track; the others stay as before")
        density = QHBoxLayout()
        density.addWidget(self.c_density, 1)
        density.addWidget(self.c_density_track)
        self.c_follow = QCheckBox("Follow each track's density")
        self.c_follow.setChecked(True)
        self.c_follow.setToolTip("Each track keeps the notes per bar and the chord sizes of its last 8 bars "
                                 "(Sparser or Denser scale them); off: the model chooses how many notes to write")
        self.c_keep_range = QCheckBox("Keep each track's range")
        self.c_keep_range.setToolTip("New notes stay between the lowest and highest note of the track before")
        self.c_smooth = QCheckBox("Smooth lines")
        self.c_smooth.setToolTip("Each one-line part moves by the intervals it used in its last 8 bars: "
                                 "more steps, fewer leaps and repeated notes")
        self.c_cadence = QCheckBox("End on a cadence")
        self.c_cadence.setToolTip("The last new bar opens on the home chord of the key, held to its end")
        f.addRow("Bars", self.c_bars)
        f.addRow("Temperature", self.c_temp)
        f.addRow("Top-p", self.c_top_p)
        f.addRow("Key", self.c_key)
        f.addRow("Density", density)
        f.addRow("", self.c_follow)
        f.addRow("", self.c_keep_range)
        f.addRow("", self.c_smooth)
        f.addRow("", self.c_cadence)
        f.addRow("Takes", self.c_takes)
        f.addRow("Seed", self.c_seed)
        return w

    def _harmonize_page(self) -> QWidget:
        w = QWidget()
        f = QFormLayout(w)
        self.h_keep_s = QRadioButton("Soprano — write alto, tenor, bass")
        self.h_keep_sb = QRadioButton("Soprano and bass — write alto, tenor")
        self.h_keep_s.setChecked(True)
        self.h_keep_s.setToolTip("The current track is the soprano (the tune)")
        self.h_keep_sb.setToolTip("Keep the lowest other track (or the one named Bass) as the bass")
        keep = QVBoxLayout()
        keep.setSpacing(2)
        keep.addWidget(self.h_keep_s)
        keep.addWidget(self.h_keep_sb)
        f.addRow("Keep", keep)
        self.h_cands = _spin(0, 16, 0, "model default", "Candidates drawn and re-ranked by the model and the "
                                                          "voice-leading rules; the best one is the take")
        self.h_temp = _dspin(0.0, 2.0, 0.0, 0.05, "model default", "Higher: bolder harmony; lower: plainer")
        self.h_takes = _spin(1, 8, 1, tip="How many different takes to write")
        self.h_seed = _spin(0, 2**31 - 1, 0, "random", "Seed for a reproducible take")
        f.addRow("Candidates", self.h_cands)
        f.addRow("Temperature", self.h_temp)
        f.addRow("Takes", self.h_takes)
        f.addRow("Seed", self.h_seed)
        return w

    def _vary_page(self) -> QWidget:
        w = QWidget()
        f = QFormLayout(w)
        row = QHBoxLayout()
        self.v_strength = QSlider(Qt.Orientation.Horizontal)
        self.v_strength.setRange(0, 100)
        self.v_strength.setValue(50)
        self.v_strength.setToolTip("How much of the passage is rewritten: 0 keeps it, 100 rewrites all of it")
        self.v_strength_label = QLabel("0.50")
        self.v_strength_label.setMinimumWidth(32)
        self.v_strength.valueChanged.connect(lambda v: self.v_strength_label.setText(f"{v / 100:.2f}"))
        row.addWidget(self.v_strength, 1)
        row.addWidget(self.v_strength_label)
        f.addRow("Strength", row)
        self.v_mode = QComboBox()
        for label, mode, tip in VARY_MODES:
            self.v_mode.addItem(label, mode)
            self.v_mode.setItemData(self.v_mode.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.v_mode.setToolTip("What the variation keeps of the passage besides its key, texture and grid")
        f.addRow("Mode", self.v_mode)
        self.v_takes = _spin(1, 8, 2, tip="How many different takes to write")
        self.v_lock = QCheckBox("Lock selected notes")
        self.v_lock.setToolTip("Keep the selected notes exactly; vary the rest of the loop region (or the track)")
        self.v_seed = _spin(0, 2**31 - 1, 0, "random", "Seed for a reproducible take")
        f.addRow("Takes", self.v_takes)
        f.addRow("", self.v_lock)
        f.addRow("Seed", self.v_seed)
        return w

    @property
    def kind(self) -> str:
        return KINDS[self.tabs.currentIndex()]

    def set_kind(self, kind: str) -> None:
        self.tabs.setCurrentIndex(KINDS.index(kind))

    def context(self) -> rq.Context:
        doc = self.doc
        return rq.Context(doc.song, doc.current_track, doc.selected_notes(), int(self.cursor_tick() or 0),
                          self.loop_region())

    def plan(self, kind: str | None = None) -> rq.Plan:
        kind = kind or self.kind
        ctx = self.context()
        seed = lambda s: s.value() or None  # noqa: E731
        if kind == "continue":
            return rq.continue_plan(ctx, self.c_bars.value(), rq._none_if_min(self.c_temp.value(), 0.0),
                                    rq._none_if_min(self.c_top_p.value(), 0.0), self.c_takes.value(), seed(self.c_seed),
                                    rq._none_if_min(self.c_key.value(), KEY_DEFAULT),
                                    density=rq.DENSITIES[self.c_density.currentIndex()],
                                    density_track_only=self.c_density_track.isChecked(),
                                    keep_range=self.c_keep_range.isChecked(), cadence=self.c_cadence.isChecked(),
                                    follow_density=self.c_follow.isChecked(), smooth_lines=self.c_smooth.isChecked())
        if kind == "harmonize":
            return rq.harmonize_plan(ctx, self.h_keep_sb.isChecked(), rq._none_if_min(self.h_temp.value(), 0.0),
                                     self.h_cands.value() or None, self.h_takes.value(), seed(self.h_seed))
        if kind == "vary":
            return rq.vary_plan(ctx, self.v_strength.value() / 100.0, self.v_takes.value(), self.v_lock.isChecked(),
                                seed(self.v_seed), self.v_mode.currentData() or "free")
        raise ValueError(kind)

    def use_settings(self, entry: dict) -> None:
        """Put an accepted take's settings (from the AI history) back into the panel."""
        p = entry.get("params") or {}
        kind = entry.get("kind") or {"continuation": "continue", "harmonizer": "harmonize",
                                     "variation": "vary"}.get(entry.get("model", ""), "")

        def num(key, default=0.0):
            v = p.get(key)
            return default if v is None else v

        seed = int(p.get("seed") or entry.get("seed") or 0)
        takes = max(int(num("takes", 1)), int(num("take", 1)))
        if kind == "continue":
            self.c_bars.setValue(int(num("bars", 4)))
            self.c_temp.setValue(float(num("temperature")))
            self.c_top_p.setValue(float(num("top_p")))
            self.c_key.setValue(float(num("key_strength", KEY_DEFAULT)))
            self.c_takes.setValue(takes)
            self.c_seed.setValue(seed)
            per_track = tuple(p.get("density") or ())
            changed = [d for d in per_track if d != "as before"]
            level = changed[0] if changed and changed[0] in rq.DENSITIES else "as before"
            self.c_density.setCurrentIndex(rq.DENSITIES.index(level))
            self.c_density_track.setChecked(bool(changed) and len(changed) < len(per_track))
            self.c_keep_range.setChecked(bool(p.get("keep_range")))
            self.c_cadence.setChecked(bool(p.get("cadence")))
            self.c_smooth.setChecked(bool(p.get("smooth_lines")))
            self.c_follow.setChecked(p.get("follow_density") is not False)
        elif kind in ("harmonize", "regenerate"):
            keep = [k.lower() for k in (p.get("keep") or ["soprano"])]
            (self.h_keep_sb if "bass" in keep else self.h_keep_s).setChecked(True)
            self.h_cands.setValue(int(num("candidates", 0)))
            self.h_temp.setValue(float(num("temperature")))
            self.h_takes.setValue(1)
            self.h_seed.setValue(seed)
            kind = "harmonize"
        elif kind == "vary":
            self.v_strength.setValue(int(round(100 * float(num("strength", 0.5)))))
            self.v_mode.setCurrentIndex(max(0, self.v_mode.findData(p.get("mode") or "free")))
            self.v_takes.setValue(takes)
            self.v_seed.setValue(seed)
        else:
            return
        self.set_kind(kind)
        self._set_status("Settings and seed restored. With the same song and selection, Generate makes the same take"
                         + (f" (take {int(p['take'])} of {takes})." if p.get("take") and takes > 1 else "."))

