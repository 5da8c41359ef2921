// Tunesmith Studio: a sung or played take (WAV, FLAC, MP3, OGG) as a melody. The analyzer transcribes it
// (POST /v1/analyses: its melody's notes in seconds and its tempo) and the notes become a one-track MIDI file,
// which is then uploaded like any melody file (studio.js uploadMelody). Uses api and FINISHED from studio.js.
"use strict";

const TAKE_SUFFIXES = [".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga"];
const TAKE_TICKS_PER_BEAT = 480;
const TAKE_DEFAULT_TEMPO = 120;  // when the analyzer hears no steady beat

function isTake(file) {
  const name = file.name.toLowerCase();
  return TAKE_SUFFIXES.some((suffix) => name.endsWith(suffix));
}

// The take's melody as a MIDI File named like the take (".mid"), with what was heard: { file, notes, tempo }.
async function melodyFromTake(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  let analysis = await api("/v1/analyses", { method: "POST", form });
  for (let i = 0; i < 300 && !FINISHED.includes(analysis.status); i++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));  // a long take is a job: wait for it
    analysis = await api(analysis.links.self);
  }
  if (analysis.status !== "succeeded") {
    throw new ApiError(0, "analysis", `${file.name}: ${analysis.error?.message || "the analysis did not finish"}`,
                       "file");
  }
  const notes = analysis.result.melody || [];
  if (!notes.length) throw new ApiError(0, "no_melody", `${file.name}: no melody heard in this take`, "file");
  const heard = analysis.result.tempo?.bpm;
  const tempo = heard && heard >= 30 && heard <= 300 ? heard : TAKE_DEFAULT_TEMPO;
  const name = file.name.replace(/\.[^.]+$/, "") + ".mid";
  return { file: new File([takeMidi(notes, tempo)], name, { type: "audio/midi" }), notes: notes.length, tempo };
}

// A type-0 MIDI file: one tempo, the notes ({ pitch, onset, offset, velocity }, seconds) on channel 1.
function takeMidi(notes, tempo) {
  const tick = (seconds) => Math.round((seconds * tempo / 60) * TAKE_TICKS_PER_BEAT);
  const events = notes.flatMap((n) => [
    [tick(n.onset), 1, [0x90, n.pitch, Math.max(1, Math.min(127, n.velocity))]],
    [Math.max(tick(n.offset), tick(n.onset) + 1), 0, [0x80, n.pitch, 0]],
  ]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);  // at the same tick: note-offs first
  const microseconds = Math.round(60e6 / tempo);
  const body = [0, 0xff, 0x51, 3, (microseconds >> 16) & 0xff, (microseconds >> 8) & 0xff, microseconds & 0xff];
  let now = 0;
  for (const [at, , message] of events) {
    body.push(...varLength(at - now), ...message);
    now = at;
  }
  body.push(0, 0xff, 0x2f, 0);
  const header = [0x4d, 0x54, 0x68, 0x64, 0, 0, 0, 6, 0, 0, 0, 1, TAKE_TICKS_PER_BEAT >> 8, TAKE_TICKS_PER_BEAT & 0xff];
  const length = body.length;
  const track = [0x4d, 0x54, 0x72, 0x6b, (length >>> 24) & 0xff, (length >> 16) & 0xff, (length >> 8) & 0xff,
    length & 0xff];
  return new Uint8Array([...header, ...track, ...body]);
}

function varLength(value) {
  const bytes = [value & 0x7f];
  for (let rest = value >> 7; rest > 0; rest >>= 7) bytes.unshift((rest & 0x7f) | 0x80);
  return bytes;
}
