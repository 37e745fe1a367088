"""Audio: FluidSynth synthesis (``synth``), offline WAV/FLAC rendering (``render``) and
realtime playback through sounddevice (``player``).

Nothing here is imported eagerly: FluidSynth and PortAudio load only when audio is used,
and each says clearly when it is missing (see :func:`studio.audio.synth.fluidsynth_available`
and :attr:`studio.audio.player.Player.reason`).
"""
