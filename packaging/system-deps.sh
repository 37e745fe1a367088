#!/usr/bin/env bash
# Installs the system libraries Cantor Studio needs (Debian/Ubuntu): FluidSynth, PortAudio,
# libsndfile, a General MIDI soundfont and the libraries Qt's xcb platform loads.
# Does nothing when they are all present; uses sudo when not root; says so clearly without apt.
set -euo pipefail

PKGS=(libfluidsynth3 libportaudio2 libsndfile1 fluid-soundfont-gm
      libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0
      libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxkbcommon-x11-0
      libegl1 libgl1 libfontconfig1 libdbus-1-3)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
else
  echo "system-deps: no dpkg here; install by hand: FluidSynth 2, PortAudio, libsndfile, a GM soundfont, Qt's xcb libraries" >&2
  exit 0
fi

[ ${#missing[@]} -eq 0 ] && exit 0
echo "system-deps: installing ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: apt-get is not available; please install: ${missing[*]}" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "system-deps: not root and no sudo; please install: ${missing[*]}" >&2; exit 1
  fi
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
