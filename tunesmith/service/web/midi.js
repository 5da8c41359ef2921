// Tunesmith Studio: a reader of Standard MIDI Files (types 0 and 1), enough to draw a work's piano rolls.
// parseMidi(arrayBuffer) -> { ticksPerBeat, tempo (BPM), meter: [numerator, denominator], tracks: [{ name, drums,
//   program, notes: [{ start, duration, pitch, velocity }] }] }, times in beats (quarter notes); only the first tempo
// and time signature are kept (a work from Tunesmith has one of each). Tracks without notes are left out.
"use strict";

class MidiReader {
  constructor(buffer) {
    this.bytes = new Uint8Array(buffer);
    this.at = 0;
  }

  need(count) {
    if (this.at + count > this.bytes.length) throw new Error("the MIDI file ends early");
  }

  byte() {
    this.need(1);
    return this.bytes[this.at++];
  }

  uint(count) {
    this.need(count);
    let value = 0;
    for (let i = 0; i < count; i++) value = value * 256 + this.bytes[this.at++];
    return value;
  }

  text(count) {
    this.need(count);
    const slice = this.bytes.subarray(this.at, this.at + count);
    this.at += count;
    return new TextDecoder().decode(slice);
  }

  varLength() {  // a variable-length quantity: 7 bits a byte, high bit set on all but the last
    let value = 0;
    for (let i = 0; i < 4; i++) {
      const b = this.byte();
      value = value * 128 + (b & 0x7f);
      if (!(b & 0x80)) return value;
    }
    throw new Error("a MIDI length is longer than 4 bytes");
  }
}

function parseMidi(buffer) {
  const reader = new MidiReader(buffer);
  if (reader.text(4) !== "MThd") throw new Error("not a MIDI file (no MThd header)");
  const headerLength = reader.uint(4);
  const headerEnd = reader.at + headerLength;
  reader.uint(2);  // format: 0 or 1 read alike
  const trackCount = reader.uint(2);
  const division = reader.uint(2);
  if (division & 0x8000) throw new Error("SMPTE-timed MIDI files are not drawn");
  reader.at = headerEnd;
  const song = { ticksPerBeat: division, tempo: 120, meter: [4, 4], tracks: [] };
  let tempoSeen = false;
  let meterSeen = false;
  for (let t = 0; t < trackCount && reader.at < reader.bytes.length; t++) {
    const id = reader.text(4);
    const length = reader.uint(4);
    const end = reader.at + length;
    if (id !== "MTrk") {  // an unknown chunk: skip it
      reader.at = end;
      continue;
    }
    const track = readTrack(reader, end, division);
    reader.at = end;
    if (track.tempo && !tempoSeen) {
      song.tempo = track.tempo;
      tempoSeen = true;
    }
    if (track.meter && !meterSeen) {
      song.meter = track.meter;
      meterSeen = true;
    }
    if (track.notes.length) {
      song.tracks.push({ name: track.name || `track ${t + 1}`, drums: track.drums, program: track.program,
                         notes: track.notes });
    }
  }
  return song;
}

function readTrack(reader, end, ticksPerBeat) {
  const track = { name: "", drums: false, program: null, notes: [], tempo: null, meter: null };
  const sounding = new Map();  // channel * 128 + pitch -> [{ tick, velocity }] (a stack: the same pitch may overlap)
  let tick = 0;
  let status = 0;
  const close = (channel, pitch) => {
    const open = sounding.get(channel * 128 + pitch);
    const on = open && open.shift();
    if (!on) return;
    track.notes.push({ start: on.tick / ticksPerBeat, duration: Math.max(tick - on.tick, 1) / ticksPerBeat, pitch,
                       velocity: on.velocity });
  };
  while (reader.at < end) {
    tick += reader.varLength();
    let first = reader.byte();
    if (first === 0xff) {  // meta event
      const type = reader.byte();
      const length = reader.varLength();
      const start = reader.at;
      if (type === 0x03 && !track.name) track.name = reader.text(length);
      else if (type === 0x51 && length === 3 && track.tempo === null) track.tempo = 60e6 / reader.uint(3);
      else if (type === 0x58 && length >= 2 && track.meter === null) track.meter = [reader.byte(), 2 ** reader.byte()];
      reader.at = start + length;
      continue;
    }
    if (first === 0xf0 || first === 0xf7) {  // system exclusive
      reader.at += reader.varLength();
      continue;
    }
    if (first & 0x80) status = first;
    else reader.at--;  // running status: this byte is the first data byte
    if (!status) throw new Error("a MIDI event has no status byte");
    const kind = status & 0xf0;
    const channel = status & 0x0f;
    first = reader.byte();
    const second = kind === 0xc0 || kind === 0xd0 ? 0 : reader.byte();
    if (channel === 9 && (kind === 0x90 || kind === 0x80)) track.drums = true;
    if (kind === 0x90 && second > 0) {
      const key = channel * 128 + first;
      if (!sounding.has(key)) sounding.set(key, []);
      sounding.get(key).push({ tick, velocity: second });
    } else if (kind === 0x80 || kind === 0x90) {
      close(channel, first);
    } else if (kind === 0xc0 && track.program === null) {
      track.program = first;
    }
  }
  for (const key of sounding.keys()) {  // notes never switched off end with the track
    while (sounding.get(key).length) close(Math.floor(key / 128), key % 128);
  }
  track.notes.sort((a, b) => a.start - b.start || a.pitch - b.pitch);
  return track;
}
