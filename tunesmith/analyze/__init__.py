"""Audio analysis: tempo, key, loudness and melody transcription (DSP), plus the CNN analyzer facade."""
