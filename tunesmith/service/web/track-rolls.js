// Tunesmith Studio: a work's tracks drawn as piano rolls, one per track of the mixer (studio.js showMixer), from
// the work's MIDI file (GET /v1/generations/{id}/midi read by midi.js), with the song's sections as a timeline
// above them and as lines across every roll, and a play head while the tracks play. Uses $ and fetchBlob.
"use strict";

const TRACK_COLOURS = { drums: "#e4572e", bass: "#2e86ab", chords: "#8e6cc9", pad: "#3bb273", lead: "#e59f00" };
const OTHER_COLOURS = ["#4f6bed", "#d6457f", "#1a9c9c", "#b07d2b", "#6b8e23", "#9a5bd1"];
const ROLL_HEIGHT = 64;  // CSS pixels

function trackColour(name, index) {
  return TRACK_COLOURS[name] || OTHER_COLOURS[index % OTHER_COLOURS.length];
}

// What every roll shares: the length in beats, the bar length and the sections.
function rollLayout(record, midi) {
  const result = record.result || {};
  const barBeats = (midi.meter[0] * 4) / midi.meter[1];
  const lastNote = Math.max(0, ...midi.tracks.flatMap((t) => t.notes.map((n) => n.start + n.duration)));
  const bars = result.bars || Math.max(1, Math.ceil(lastNote / barBeats - 1e-6));
  return { bars, barBeats, beats: bars * barBeats, tempo: result.tempo || midi.tempo, sections: result.sections || [] };
}

async function showTrackRolls(record) {
  state.rolls = null;
  if (!record.links.midi || !state.tracks.length) return;
  let midi;
  try {
    const blob = state.media.mid || await fetchBlob(record.links.midi);
    state.media.mid = blob;  // the MIDI download uses it too
    midi = parseMidi(await blob.arrayBuffer());
  } catch (error) {
    if (state.current?.id === record.id) showRecordError(`piano rolls: ${error.message}`);
    return;
  }
  if (state.current?.id !== record.id) return;
  const layout = rollLayout(record, midi);
  state.rolls = { layout, byTrack: new Map() };
  const byName = new Map(midi.tracks.map((t) => [t.name.toLowerCase(), t]));
  state.tracks.forEach((track, index) => {
    const notes = byName.get(track.name.toLowerCase()) || midi.tracks[index];
    if (notes) state.rolls.byTrack.set(track.name, notes);
  });
  showTimeline(layout);
  drawRolls();
  $("#pianoroll").closest("figure").hidden = state.rolls.byTrack.size > 0;  // the rolls replace the picture
}

function showTimeline(layout) {
  const list = $("#sections");
  list.hidden = layout.sections.length === 0;
  list.replaceChildren(...layout.sections.map((section) => {
    const [first, last] = section.bars;
    const li = document.createElement("li");
    li.dataset.section = section.name;
    li.style.left = `${((first - 1) / layout.bars) * 100}%`;
    li.style.width = `${((last - first + 1) / layout.bars) * 100}%`;
    li.title = `${section.name}: bars ${first}–${last}`;
    li.dataset.start = String((first - 1) / layout.bars);  // where the section starts, 0..1 of the song
    const name = document.createElement("span");
    name.className = "section-name";
    name.textContent = section.name;
    const bars = document.createElement("span");
    bars.className = "section-bars";
    bars.textContent = first === last ? `bar ${first}` : `bars ${first}–${last}`;
    li.append(name, bars);
    return li;
  }));
}

function drawRolls() {
  if (!state.rolls) return;
  state.tracks.forEach((track, index) => {
    const notes = state.rolls.byTrack.get(track.name);
    const holder = document.querySelector(`#tracks li[data-track="${CSS.escape(track.name)}"] .roll`);
    if (!notes || !holder) return;
    let canvas = holder.querySelector("canvas");
    if (!canvas) {
      canvas = document.createElement("canvas");
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `piano roll of the ${track.name} track`);
      holder.prepend(canvas);
    }
    drawRoll(canvas, notes, state.rolls.layout, trackColour(track.name, index));
  });
}

function drawRoll(canvas, track, layout, colour) {
  const width = Math.max(canvas.parentElement.clientWidth, 100);
  const scale = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * scale);
  canvas.height = Math.round(ROLL_HEIGHT * scale);
  canvas.style.height = `${ROLL_HEIGHT}px`;
  canvas.dataset.notes = String(track.notes.length);
  const g = canvas.getContext("2d");
  g.setTransform(scale, 0, 0, scale, 0, 0);
  const css = getComputedStyle(document.documentElement);
  const line = css.getPropertyValue("--line").trim() || "#dfe2e8";
  const muted = css.getPropertyValue("--muted").trim() || "#646b7c";
  const x = (beat) => (beat / layout.beats) * width;
  g.clearRect(0, 0, width, ROLL_HEIGHT);
  layout.sections.forEach((section, i) => {  // every second section shaded, the sections' starts drawn
    const left = x((section.bars[0] - 1) * layout.barBeats);
    if (i % 2) {
      g.fillStyle = line;
      g.globalAlpha = 0.35;
      g.fillRect(left, 0, x(section.bars[1] * layout.barBeats) - left, ROLL_HEIGHT);
      g.globalAlpha = 1;
    }
  });
  g.fillStyle = line;
  for (let bar = 1; bar < layout.bars; bar++) g.fillRect(Math.round(x(bar * layout.barBeats)), 0, 1, ROLL_HEIGHT);
  g.fillStyle = muted;
  for (const section of layout.sections.slice(1)) {
    g.fillRect(Math.round(x((section.bars[0] - 1) * layout.barBeats)), 0, 1.5, ROLL_HEIGHT);
  }
  if (!track.notes.length) return;
  const pitches = track.notes.map((n) => n.pitch);
  let low = Math.min(...pitches) - 1;
  let high = Math.max(...pitches) + 1;
  if (high - low < 12) {  // at least an octave tall, so a few notes do not fill the roll
    const middle = (low + high) / 2;
    low = middle - 6;
    high = middle + 6;
  }
  const row = (ROLL_HEIGHT - 4) / (high - low + 1);
  g.fillStyle = colour;
  for (const note of track.notes) {
    g.globalAlpha = 0.45 + 0.55 * (note.velocity / 127);
    const left = x(note.start);
    const length = track.drums ? Math.max(3, x(0.25)) : Math.max(2, x(note.start + note.duration) - left - 0.5);
    g.fillRect(left, 2 + (high - note.pitch) * row, length, Math.max(2, row - 0.5));
  }
  g.globalAlpha = 1;
}

// ------------------------------------------------------------------------------------------ play head

function rollSeconds() {
  return state.rolls ? (state.rolls.layout.beats * 60) / state.rolls.layout.tempo : null;
}

// A click on a roll plays every track from that point; a click on a section, from the section's start.
function playFromClick(event) {
  if (!state.rolls) return;
  const section = event.target.closest("#sections li");
  const roll = event.target.closest(".roll");
  let fraction;
  if (section) fraction = Number(section.dataset.start);
  else if (roll) {
    const box = roll.getBoundingClientRect();
    fraction = (event.clientX - box.left) / box.width;
  } else return;
  playTracks(Math.max(0, Math.min(fraction, 1)) * rollSeconds());
}

function followPlayHead(context, start) {
  const mixer = $("#mixer");
  const seconds = rollSeconds();
  const playing = state.tracks.map((t) => t.source);
  const step = () => {
    const sources = state.tracks.map((t) => t.source);
    if (!seconds || sources.some((s, i) => s !== playing[i]) || sources.every((s) => !s)) {
      mixer.style.removeProperty("--playhead");
      return;
    }
    const at = (context.currentTime - start) / seconds;
    if (at > 1.02) {
      mixer.style.removeProperty("--playhead");
      return;
    }
    mixer.style.setProperty("--playhead", String(Math.min(Math.max(at, 0), 1)));
    requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
}

function startTrackRolls() {
  $("#mixer").addEventListener("click", playFromClick);
  let pending = false;
  new ResizeObserver(() => {  // redraw at the new width, once a frame
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      drawRolls();
    });
  }).observe($("#tracks"));
}
