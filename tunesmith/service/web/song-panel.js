// Tunesmith Studio: the Song panel, shown when the model is a song model (family "song"): a style picker (the
// style families of GET /v1/models with their descriptions and tempo ranges), a blend of two styles, the band
// (which tracks play, the instrument of each) and the energy. The generic form (studio.js) keeps key, tempo,
// length and meter; the rarer parameters go under "More options". Uses $ and humanize from studio.js.
"use strict";

const SONG_PANEL_PARAMS = ["style", "energy", "tracks", "instruments"];  // drawn here, not as generic fields
const SONG_MORE_PARAMS = ["bars", "loop", "chords", "style_strength", "neural_drums", "temperature", "top_p", "seed"];  // under "More options"
const AUTO_STYLE = "";  // no style in the request: the prompt's, else the model's default

function isSongModel(model) {
  return model?.family === "song";
}

function songStyles(model) {
  return model.styles || [];
}

function styleName(model, id) {
  return songStyles(model).find((s) => s.id === id)?.name || humanize(id);
}

// ------------------------------------------------------------------------------------ build the panel

function showSongPanel(model) {
  const song = isSongModel(model);
  $("#song-style").hidden = !song;
  $("#song-band").hidden = !song;
  if (!song) return;
  buildStyleList(model);
  buildBlend(model);
  buildBand(model);
  resetEnergy();
}

function buildStyleList(model) {
  const list = $("#style-list");
  const auto = styleOption(AUTO_STYLE, "Auto", "from your description, else pop", "");
  list.replaceChildren(auto, ...songStyles(model).map((s) => styleOption(
    s.id, s.name, s.description, s.tempo ? `${s.tempo[0]}–${s.tempo[1]} BPM` : "", s.aliases || [])));
  auto.querySelector("input").checked = true;
  $("#style-filter").value = "";
}

function styleOption(id, name, description, tempo, aliases = []) {
  const label = document.createElement("label");
  label.className = "style-option";
  label.dataset.style = id;
  label.dataset.search = `${id} ${name} ${description} ${aliases.join(" ")}`.toLowerCase();  // what the filter finds
  const radio = document.createElement("input");
  radio.type = "radio";
  radio.name = "song-style";
  radio.value = id;
  const head = document.createElement("span");
  head.className = "style-head";
  const title = document.createElement("span");
  title.className = "style-name";
  title.textContent = name;
  const bpm = document.createElement("span");
  bpm.className = "style-tempo";
  bpm.textContent = tempo;
  head.append(title, bpm);
  const text = document.createElement("span");
  text.className = "style-description";
  text.textContent = description;
  label.append(radio, head, text);
  return label;
}

function filterStyles() {
  const words = $("#style-filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  for (const option of document.querySelectorAll("#style-list .style-option")) {
    option.hidden = option.dataset.style !== AUTO_STYLE && !words.every((w) => option.dataset.search.includes(w));
  }
}

function chosenStyle() {
  return document.querySelector('[name="song-style"]:checked')?.value ?? AUTO_STYLE;
}

function buildBlend(model) {
  const select = $("#blend-style");
  select.replaceChildren(...songStyles(model).map((s) => new Option(s.name, s.id)));
  $("#blend-on").checked = false;
  $("#blend-amount").value = "30";
  onStyleChange();
}

// The blend as the API takes it: "bossa_nova:0.7+house:0.3" (the slider is the second style's share).
function blendText() {
  const first = chosenStyle();
  const second = $("#blend-style").value;
  const share = Number($("#blend-amount").value) / 100;
  return `${first}:${(1 - share).toFixed(2)}+${second}:${share.toFixed(2)}`;
}

function onStyleChange() {
  const model = currentModel();
  if (!isSongModel(model)) return;
  const first = chosenStyle();
  const blend = $("#blend-on");
  blend.disabled = first === AUTO_STYLE;
  if (blend.disabled) blend.checked = false;
  $("#blend").hidden = !blend.checked;
  const share = Number($("#blend-amount").value);
  $("#blend-readout").textContent = blend.checked ?
    `${100 - share}% ${styleName(model, first)} + ${share}% ${styleName(model, $("#blend-style").value)}` : "";
  const style = songStyles(model).find((s) => s.id === first);
  const tempo = $("#param-tempo");
  if (tempo) tempo.placeholder = style?.tempo ? `auto: ${style.tempo[0]}–${style.tempo[1]}` : "auto";
  for (const option of document.querySelectorAll("#style-list .style-option")) {
    option.classList.toggle("chosen", option.dataset.style === first);
  }
}

function buildBand(model) {
  const tracks = model.tracks || (model.params.tracks?.default || []).map((name) => ({ name, instruments: [] }));
  $("#band-tracks").replaceChildren(...tracks.map((track) => {
    const row = document.createElement("div");
    row.className = "band-track";
    row.dataset.track = track.name;
    row.style.setProperty("--track-colour", trackColour(track.name, tracks.indexOf(track)));
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.className = "track-on";
    box.addEventListener("change", () => { instrument.disabled = !box.checked; });
    label.append(box, ` ${humanize(track.name)}`);
    const instrument = document.createElement("select");
    instrument.className = "track-instrument";
    instrument.setAttribute("aria-label", `${track.name} instrument`);
    instrument.dataset.field = `params.instruments.${track.name}`;
    instrument.append(new Option("style's own", ""), ...track.instruments.map((i) => new Option(humanize(i), i)));
    const error = document.createElement("span");
    error.className = "field-error";
    error.dataset.errorFor = `params.instruments.${track.name}`;
    error.setAttribute("role", "alert");
    row.append(label, instrument, error);
    return row;
  }));
}

function resetEnergy() {
  const slider = $("#song-energy");
  slider.value = "0.5";
  delete slider.dataset.touched;
  showEnergy();
}

function showEnergy() {
  const slider = $("#song-energy");
  const value = Number(slider.value);
  const words = value < 0.3 ? "sparse, quiet" : value > 0.7 ? "busy, loud" : "the style's usual";
  $("#energy-readout").textContent = slider.dataset.touched ? `${value.toFixed(2)} · ${words}` : "auto";
  $("#energy-reset").hidden = !slider.dataset.touched;
}

// ------------------------------------------------------------------------------- the request's params

// The panel's params: style (or blend), energy if moved, the tracks if not all play, the instruments chosen.
// Throws an ApiError naming the field when the choice cannot be sent.
function songParams() {
  const params = {};
  const style = chosenStyle();
  if (style !== AUTO_STYLE) params.style = $("#blend-on").checked ? blendText() : style;
  const energy = $("#song-energy");
  if (energy.dataset.touched) params.energy = Number(energy.value);
  const rows = [...document.querySelectorAll("#band-tracks .band-track")];
  const playing = rows.filter((row) => row.querySelector(".track-on").checked);
  if (!playing.length) throw new ApiError(0, "tracks", "choose at least one track", "params.tracks");
  if (playing.length < rows.length) params.tracks = playing.map((row) => row.dataset.track);
  const instruments = {};
  for (const row of playing) {
    const name = row.querySelector(".track-instrument").value;
    if (name) instruments[row.dataset.track] = name;
  }
  if (Object.keys(instruments).length) params.instruments = instruments;
  return params;
}

function startSongPanel() {
  $("#style-list").addEventListener("change", onStyleChange);
  $("#style-filter").addEventListener("input", filterStyles);
  $("#blend-on").addEventListener("change", onStyleChange);
  $("#blend-style").addEventListener("change", onStyleChange);
  $("#blend-amount").addEventListener("input", onStyleChange);
  $("#song-energy").addEventListener("input", (event) => {
    event.target.dataset.touched = "true";
    showEnergy();
  });
  $("#energy-reset").addEventListener("click", resetEnergy);
}
