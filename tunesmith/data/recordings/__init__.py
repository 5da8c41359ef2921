"""Real recordings for the `samples` dataset: where they come from and what each file is.

One module per source lists its files as :class:`~tunesmith.data.recordings.items.SampleFile` entries (kind,
drum class, kit, velocity layer, licence, split group); `tunesmith.data.corpora.samples` decodes and writes them.

- :mod:`.hydrogen`: the drum kits of the Debian packages hydrogen-drumkits and hydrogen-data;
- :mod:`.sonicpi`: Sonic Pi's samples (npm supersonic-scsynth-samples, CC0);
- :mod:`.salamander`: the Salamander Grand Piano (npm @audio-samples/piano-velocityN, CC-BY 3.0);
- :mod:`.lmms`: the LMMS sample library (Debian lmms-common);
- :mod:`.classes`: drum instrument names to drum classes and General MIDI drum notes;
- :mod:`.npm`: `npm pack` into a cache, checked against the pinned integrity;
- :mod:`.copyright`: Debian machine-readable copyright files.
"""
