// Tunesmith Studio: a plain-JS client of the v1 API (no build step, no external files).
// The API key stays in this browser (localStorage) and is sent as "Authorization: Bearer ..." on every call;
// that is why audio, images and progress are fetched with fetch() rather than by URL (<audio src>, EventSource).
"use strict";

const KEY_STORAGE = "tunesmith.apiKey";
const HISTORY_PAGE = 12;
const LABELS = {
  key: "Key", bars: "Bars", meter: "Meter", tempo: "Tempo", temperature: "Temperature", top_p: "Top-p",
  instrument: "Instrument", seed: "Seed", length: "Length", loop: "Loop (bars)", chords: "Chord chart",
  style_strength: "Style strength", neural_drums: "Neural drums",
};
const FINISHED = ["succeeded", "failed", "cancelled"];  // a job in one of these is done
const STATUS_TEXT = {
  queued: "Waiting in the queue", running: "Composing", succeeded: "Ready", failed: "Failed",
  cancelled: "Cancelled", deleted: "Deleted",
};
const KEYS = ["C", "G", "D", "A", "E", "B", "F#", "F", "Bb", "Eb", "Ab", "Db"].flatMap(
  (tonic) => [`${tonic} major`, `${tonic} minor`]);

const $ = (selector) => document.querySelector(selector);
const state = {
  key: "", models: [], upload: null, current: null, follow: null, urls: [], media: {}, historyOffset: 0, tracks: [],
  audio: null,
};

// ------------------------------------------------------------------------------------------ API

class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }

  static async from(response) {
    let error = {};
    try {
      error = (await response.json()).error || {};
    } catch {
      // not JSON: keep the status line
    }
    const retry = response.headers.get("Retry-After");
    let message = error.message || `${response.status} ${response.statusText}`;
    if (retry && response.status === 429) message += ` (try again in ${retry} s)`;
    return new ApiError(response.status, error.code || "error", message, error.field || null);
  }
}

async function api(path, { method = "GET", json, form, signal, raw = false } = {}) {
  const headers = {};
  if (state.key) headers.Authorization = `Bearer ${state.key}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network", "the server cannot be reached; is tunesmith serve running?", null);
  }
  if (!response.ok) throw await ApiError.from(response);
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

// --------------------------------------------------------------------------------------- errors

function errorSlot(field) {
  for (const slot of document.querySelectorAll("[data-error-for]")) {
    if (slot.dataset.errorFor.split(" ").includes(field)) return slot;
  }
  return null;
}

function showError(error, fallbackField = "_general") {
  const field = error.status === 401 ? "key" : error.field;
  const slot = (field && errorSlot(field)) || errorSlot(fallbackField);
  slot.textContent = error.message;
  const input = field && document.querySelector(`[data-field="${field}"]`);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
}

function clearErrors(...fields) {
  for (const slot of document.querySelectorAll("[data-error-for]")) {
    if (!fields.length || slot.dataset.errorFor.split(" ").some((f) => fields.includes(f))) slot.textContent = "";
  }
  for (const input of document.querySelectorAll('[aria-invalid="true"]')) input.removeAttribute("aria-invalid");
}

// ------------------------------------------------------------------------------------------ key

function setKey(key) {
  state.key = key.trim();
  if (state.key) localStorage.setItem(KEY_STORAGE, state.key);
  else localStorage.removeItem(KEY_STORAGE);
  $("#key-forget").hidden = !state.key;
}

async function useKey(event) {
  event.preventDefault();
  clearErrors("key");
  $("#key-status").textContent = "";
  setKey($("#api-key").value);
  if (!state.key) {
    showError(new ApiError(0, "missing", "paste the key that `tunesmith keys create` printed", "key"));
    return;
  }
  if (await loadHistory(true)) $("#key-status").textContent = "Key saved in this browser";
}

function forgetKey() {
  setKey("");
  $("#api-key").value = "";
  $("#key-status").textContent = "";
  $("#history").replaceChildren();
  $("#history-more").hidden = true;
  $("#history-empty").hidden = false;
  $("#history-empty").textContent = "Enter your API key to see your works.";
}

function needKey() {
  if (state.key) return true;
  showError(new ApiError(401, "unauthorized", "enter your API key first", "key"));
  return false;
}

// --------------------------------------------------------------------------------------- models

async function loadModels() {
  try {
    state.models = (await api("/v1/models")).models;
  } catch (error) {
    showError(error, "model");
    return;
  }
  const select = $("#model");
  select.replaceChildren(...state.models.map((m) => new Option(`${m.id} (${modelKind(m)})`, m.id)),
    new Option("auto: the prompt chooses", AUTO_MODEL));
  if (!state.models.length) showError(new ApiError(0, "none", "this server offers no model", "model"));
  showModel();
}

function modelKind(model) {
  if (isSongModel(model)) return "a band in a style";
  if (model.kind !== "composer") return model.kind;
  return model.voices === 1 ? "melody" : `${model.voices} voices`;
}

const AUTO_MODEL = "";  // no model in the request: the prompt chooses one

function currentModel() {
  return state.models.find((m) => m.id === $("#model").value);
}

function showModel() {
  const model = currentModel();
  const box = $("#params");
  const more = $("#params-more");
  box.replaceChildren();
  more.replaceChildren();
  showSongPanel(model);
  showSongChoices(model);
  if (!model) {
    $("#params-more-box").hidden = true;
    $("#model-description").textContent = $("#model").value === AUTO_MODEL && state.models.length ?
      "the prompt chooses the model and its parameters (English or Chinese); the job shows how it was read" : "";
    return;
  }
  const licences = Object.keys(model.training_data?.licences || {}).join(", ");
  $("#model-description").textContent = `${model.description}, version ${model.version}` +
    (licences ? ` · trained on ${licences}` : "");
  const song = isSongModel(model);
  for (const [name, spec] of Object.entries(model.params)) {
    // the upload (melody) panel gives params.input and params.harmonize; the Song panel its own params
    if (name === "input" || name === "harmonize" || (song && SONG_PANEL_PARAMS.includes(name))) continue;
    (song && SONG_MORE_PARAMS.includes(name) ? more : box).append(paramField(name, spec));
  }
  $("#params-more-box").hidden = more.children.length === 0;
  if (song) onStyleChange();
  const harmonize = $("#harmonize");
  harmonize.disabled = model.voices < 2;
  $("#harmonize-label").classList.toggle("disabled", harmonize.disabled);
  $("#harmonize-label").title = harmonize.disabled ? "only four-voice models (chorale) harmonize a melody" : "";
  if (harmonize.disabled && harmonize.checked) document.querySelector('[name="melody-mode"]').checked = true;
}

// A song always has stems, and arranges an uploaded melody (when its family takes one: params.input).
function showSongChoices(model) {
  const song = isSongModel(model);
  const stems = $("#want-stems");
  if (song) stems.checked = true;
  stems.disabled = song;
  const arranges = song && "input" in model.params;
  $("#melody-label").textContent = !song ? "Choose a MIDI, MusicXML or ABC file, or a recorded take (WAV, FLAC, " +
    "MP3, OGG), to continue or harmonize" : "Choose a MIDI, MusicXML or ABC melody, or a recorded take: the band " +
    "arranges it, note for note";
  $("#melody-file").disabled = song && !arranges;
  $("#melody-song").hidden = !song;
  $("#melody-song").textContent = arranges ? "The song keeps your melody as its lead; its key and tempo follow " +
    "the file unless you set them." : "This server's song model does not arrange a melody yet.";
  $("#melody-mode").hidden = !state.upload || song;
}

function humanize(value) {
  return String(value).replaceAll("_", " ");
}

function fieldName(name) {
  return name === "seed" ? "seed" : `params.${name}`;
}

function paramField(name, spec) {
  const wrap = document.createElement("div");
  wrap.className = "param";
  const id = `param-${name}`;
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = LABELS[name] || humanize(name);
  let input;
  if (spec.enum) {
    input = document.createElement("select");
    const auto = spec.default !== undefined ? `auto (${humanize(spec.default)})` : "auto";
    input.append(new Option(auto, ""), ...spec.enum.map((v) => new Option(humanize(v), v)));
  } else {
    input = document.createElement("input");
    if (spec.type === "integer" || spec.type === "number") {
      input.type = "number";
      input.inputMode = spec.type === "integer" ? "numeric" : "decimal";
      if (spec.minimum !== undefined) input.min = spec.minimum;
      if (spec.maximum !== undefined) input.max = spec.maximum;
      input.step = spec.type === "integer" ? "1" : stepOf(spec);
    } else {
      input.type = "text";
      if (name === "key") input.setAttribute("list", "key-names");
    }
    input.placeholder = spec.default !== undefined ? String(spec.default) : name === "seed" ? "random" : "auto";
  }
  input.id = id;
  input.name = name;
  input.dataset.param = name;
  input.dataset.type = spec.type;
  input.dataset.field = fieldName(name);
  wrap.append(label, input);
  const range = document.createElement("span");
  range.className = "range";
  if (spec.minimum !== undefined && spec.maximum !== undefined) {
    range.textContent = `${spec.minimum}–${spec.maximum}${unitOf(spec)}`;
  } else if (name === "key") {
    range.textContent = 'e.g. "D minor", "F# major"';
  }
  const error = document.createElement("span");
  error.className = "field-error";
  error.dataset.errorFor = fieldName(name);
  error.setAttribute("role", "alert");
  wrap.append(range, error);
  return wrap;
}

function unitOf(spec) {
  if (!spec.unit) return "";
  return spec.unit === "seconds" ? " s" : spec.unit.includes("per minute") ? " BPM" : ` ${spec.unit}`;
}

function stepOf(spec) {
  const span = (spec.maximum ?? 1) - (spec.minimum ?? 0);
  return span >= 50 ? "1" : span >= 2 ? "0.05" : "0.01";
}

// --------------------------------------------------------------------------------------- melody

async function uploadMelody() {
  clearErrors("file", "params.input", "params.harmonize");
  const file = $("#melody-file").files[0];
  state.upload = null;
  $("#melody-mode").hidden = true;
  $("#melody-summary").textContent = "";
  if (!file) return;
  if (!needKey()) {
    $("#melody-file").value = "";
    return;
  }
  $("#melody-summary").textContent = isTake(file) ? `Listening to ${file.name}…` : `Reading ${file.name}…`;
  let heard = "";
  try {
    let score = file;
    if (isTake(file)) {  // a recording: its transcribed melody is uploaded as MIDI
      const take = await melodyFromTake(file);
      score = take.file;
      heard = ` (heard in ${file.name} at ${Math.round(take.tempo)} BPM)`;
    }
    const form = new FormData();
    form.append("file", score, score.name);
    state.upload = await api("/v1/uploads", { method: "POST", form });
  } catch (error) {
    $("#melody-summary").textContent = "";
    $("#melody-file").value = "";
    showError(error, "file");
    return;
  }
  const u = state.upload;
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  $("#melody-summary").textContent = `${u.filename}: ${u.format.toUpperCase()}, ${plural(u.parts, "part")}, ` +
    `${plural(u.notes, "note")}, ${plural(u.bars, "bar")}${u.key ? `, ${u.key}` : ""}${heard}`;
  $("#melody-mode").hidden = isSongModel(currentModel());
}

function clearMelody() {
  $("#melody-file").value = "";
  state.upload = null;
  $("#melody-mode").hidden = true;
  $("#melody-summary").textContent = "";
  clearErrors("file", "params.input", "params.harmonize");
}

// ------------------------------------------------------------------------------------- generate

function requestBody() {
  const body = { params: {} };
  if ($("#model").value !== AUTO_MODEL) body.model = $("#model").value;
  const prompt = $("#prompt").value.trim();
  if (prompt) body.prompt = prompt;
  for (const input of document.querySelectorAll("[data-param]")) {
    const raw = input.value.trim();
    if (raw === "") continue;
    const number = Number(raw);
    const value = input.dataset.type === "integer" || input.dataset.type === "number"
      ? (Number.isFinite(number) ? number : raw) : raw;
    if (input.dataset.param === "seed") body.seed = value;
    else body.params[input.dataset.param] = value;
  }
  const model = currentModel();
  if (isSongModel(model)) Object.assign(body.params, songParams());
  if ($("#want-stems").checked) body.formats = ["wav", "mid", "stems"];
  if (state.upload && (!model || "input" in model.params)) {
    body.params.input = state.upload.id;
    if (!model || "harmonize" in model.params) {
      body.params.harmonize = document.querySelector('[name="melody-mode"]:checked').value === "harmonize";
    }
  }
  return body;
}

async function generate(event) {
  event.preventDefault();
  clearErrors();
  if (!needKey()) return;
  const button = $("#generate");
  button.disabled = true;
  button.textContent = "Sending…";
  try {
    const record = await api("/v1/generations", { method: "POST", json: requestBody() });
    button.textContent = "Generating…";
    showRecord(record);
    loadHistory(true);
    await follow(record);
  } catch (error) {
    if (error.name !== "AbortError") showError(error);
  } finally {
    button.disabled = false;
    button.textContent = "Generate";
  }
}

// Server-sent events read with fetch (EventSource cannot send the Authorization header).
async function follow(record) {
  if (state.follow) state.follow.abort();
  const controller = new AbortController();
  state.follow = controller;
  let finished = false;
  try {
    const response = await api(record.links.events, { raw: true, signal: controller.signal });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    while (!finished) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replaceAll("\r\n", "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        finished = onEvent(record.id, block) || finished;
      }
    }
    if (finished) reader.cancel().catch(() => {});
  } catch (error) {
    if (error.name === "AbortError") return;
    showRecordError(error.message);
  } finally {
    if (state.follow === controller) state.follow = null;
  }
  if (!finished && state.current?.id === record.id) await pollUntilDone(record.id, controller);
}

function onEvent(id, block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  if (!data.length || state.current?.id !== id) return false;
  const payload = JSON.parse(data.join("\n"));
  if (name === "progress") {
    showProgress(payload.status, payload.progress, { record: false });
    return false;
  }
  if (name === "done") {
    if (payload.status === "deleted") showDeleted(id);
    else {
      showRecord(payload);
      loadHistory(true);
    }
    return true;
  }
  return false;
}

async function pollUntilDone(id, controller) {
  for (let i = 0; i < 600 && !controller.signal.aborted && state.current?.id === id; i++) {
    const record = await api(`/v1/generations/${id}`);
    showRecord(record);
    if (FINISHED.includes(record.status)) return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// --------------------------------------------------------------------------------------- result

function releaseMedia() {
  for (const url of state.urls) URL.revokeObjectURL(url);
  state.urls = [];
  state.media = {};
  $("#player").removeAttribute("src");
  $("#player").load();
  $("#spectrogram").removeAttribute("src");
  $("#pianoroll").removeAttribute("src");
  stopTracks();
  state.tracks = [];
  state.rolls = null;
  $("#tracks").replaceChildren();
  $("#sections").replaceChildren();
  $("#mixer").hidden = true;
  $("#download-stems").hidden = true;
  $("#pianoroll").closest("figure").hidden = false;
}

// The badge and the bar follow the job; the result card's own status is its record's, so a job a progress event
// reports finished is shown finished once its record (result, media) is here (`showRecord`).
function showProgress(status, progress, { record = true } = {}) {
  const badge = $("#status");
  badge.textContent = STATUS_TEXT[status] || status;
  badge.className = `badge ${status}`;
  if (record || !FINISHED.includes(status)) $("#result").dataset.status = status;
  $("#progress").value = progress ?? 0;
}

function title(record) {
  const r = record.result || {};
  const p = record.params || {};
  const key = r.key || p.key;
  const bars = r.bars || p.bars;
  return [record.model, key, bars ? `${bars} bars` : null].filter(Boolean).join(" · ");
}

function showRecord(record) {
  const changed = state.current?.id !== record.id;
  const wasReady = state.current?.status === "succeeded" && !changed;
  if (changed) releaseMedia();
  state.current = record;
  $("#result-empty").hidden = true;
  $("#result").hidden = false;
  showProgress(record.status, record.progress);
  $("#result-title").textContent = title(record);
  const error = $("#result-error");
  error.hidden = !record.error;
  error.textContent = record.error ? `${record.error.message}` : "";
  showDetails(record);
  markHistory();
  $("#result-ready").hidden = record.status !== "succeeded";
  if (record.status === "succeeded" && !wasReady) loadMedia(record);
}

function showRecordError(message) {
  const error = $("#result-error");
  error.hidden = false;
  error.textContent = message;
}

function showDeleted(id) {
  if (state.current?.id !== id) return;
  releaseMedia();
  state.current = null;
  $("#result").hidden = true;
  $("#result-empty").hidden = false;
  loadHistory(true);
}

function showDetails(record) {
  const r = record.result || {};
  const p = record.params || {};
  const rows = [
    ["Key", "key" in p ? r.key || p.key || "from the melody" : null],
    ["Meter", (r.time_signature && r.time_signature.join("/")) || p.meter],
    ["Tempo", r.tempo || p.tempo ? `${r.tempo || p.tempo} BPM` : null],
    ["Bars", r.bars || p.bars],
    ["Style", styleText(r.styles, r.style || p.style)],
    ["Instrument", humanize(p.instrument || "")],
    ["Band", (r.tracks || []).map((t) => `${t.name}: ${humanize(t.instrument)}`).join(", ")],
    ["Pitch", p.pitch],
    ["Velocity", p.velocity],
    ["Held", p.duration !== undefined ? `${p.duration} s` : null],
    ["Morph", p.morph_to ? `${Math.round((p.morph ?? 0) * 100)}% towards ${humanize(p.morph_to)}` : null],
    ["Seed", r.seed ?? p.seed],
    ["Mode", r.mode],
    ["Length", record.audio_seconds ? `${record.audio_seconds.toFixed(1)} s` : null],
    ["Prompt", record.prompt],
  ].filter(([, v]) => v !== undefined && v !== null && v !== "");
  $("#result-details").replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = String(v);
    return [dt, dd];
  }));
  const notes = [...readingLines(record.interpretation), ...(r.notes || [])];
  $("#result-notes").replaceChildren(...notes.map((n) => {
    const li = document.createElement("li");
    li.textContent = n;
    return li;
  }));
}

// A song's style as a musician reads it: "Bossa nova" or "70% Bossa nova + 30% House".
function styleText(weights, style) {
  if (!style) return null;
  const model = state.models.find((m) => isSongModel(m));
  const name = (id) => (model ? styleName(model, id) : humanize(id));
  const parts = Object.entries(weights || {});
  if (parts.length < 2) return parts.length ? name(parts[0][0]) : humanize(style);
  return parts.map(([id, w]) => `${Math.round(w * 100)}% ${name(id)}`).join(" + ");
}

// How the prompt was read: each parameter with the words it came from, how, and how sure; the words not used.
function readingLines(reading) {
  if (!reading) return [];
  const lines = [];
  if (reading.model) lines.push(`model: ${reading.model} (${reading.model_reason || "from the prompt"})`);
  for (const [name, p] of Object.entries(reading.params || {})) {
    if (p.source === "default") continue;
    const words = (p.words || []).map((w) => `"${w}"`).join(", ");
    const how = `${p.source}${p.confidence !== undefined ? `, ${Math.round(p.confidence * 100)}%` : ""}`;
    const value = typeof p.value === "object" ? JSON.stringify(p.value) : p.value;
    lines.push(`${humanize(name)}: ${humanize(value)}${words ? ` from ${words}` : ""} (${how})`);
  }
  if ((reading.unused_words || []).length) {
    lines.push(`not used: ${reading.unused_words.map((w) => `"${w}"`).join(", ")}`);
  }
  return [...lines, ...(reading.notes || [])];
}

async function fetchBlob(path) {
  const response = await api(path, { raw: true });
  return response.blob();
}

function hasScore(record) {
  return (record.formats || []).includes("mid");
}

async function loadMedia(record) {
  const id = record.id;
  const tasks = [
    ["wav", record.links.audio.wav, (url) => { $("#player").src = url; }],
    ["spectrogram", record.links.spectrogram, (url) => { $("#spectrogram").src = url; }],
    ["pianoroll", record.links.pianoroll, (url) => { $("#pianoroll").src = url; }],
  ].filter(([name]) => name !== "pianoroll" || hasScore(record)); // a single note (notes) is audio only
  $("#pianoroll").closest("figure").hidden = !hasScore(record);
  $("#download-mid").hidden = !hasScore(record);
  showMixer(record);
  showTrackRolls(record);
  await Promise.all(tasks.map(async ([name, path, show]) => {
    try {
      const blob = await fetchBlob(path);
      if (state.current?.id !== id) return;  // another work was opened meanwhile
      const url = URL.createObjectURL(blob);
      state.urls.push(url);
      state.media[name] = blob;
      show(url);
    } catch (error) {
      if (state.current?.id === id) showRecordError(`${name}: ${error.message}`);
    }
  }));
}

// ------------------------------------------------------------------------------ stems: mute and solo

function showMixer(record) {
  const stems = record.links.stems || {};
  const names = Object.keys(stems);
  $("#mixer").hidden = names.length === 0;
  $("#download-stems").hidden = names.length === 0;
  $("#download-wav").textContent = names.length ? "Download mix (WAV)" : "Download WAV";
  $("#sections").hidden = true;  // the timeline is drawn with the rolls (track-rolls.js)
  const instruments = new Map(((record.result && record.result.tracks) || []).map((t) => [t.name, t.instrument]));
  state.tracks = names.map((name) => ({ name, path: stems[name], muted: false, solo: false }));
  $("#tracks").replaceChildren(...state.tracks.map((track, index) => {
    const li = document.createElement("li");
    li.dataset.track = track.name;
    li.style.setProperty("--track-colour", trackColour(track.name, index));
    const head = document.createElement("div");
    head.className = "track-head";
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = humanize(track.name);
    const instrument = document.createElement("span");
    instrument.className = "instrument";
    instrument.textContent = humanize(instruments.get(track.name) || "");
    const mute = toggle("Mute", () => { track.muted = !track.muted; return track.muted; });
    const solo = toggle("Solo", () => { track.solo = !track.solo; return track.solo; });
    mute.classList.add("mute");
    mute.title = `mute ${track.name}`;
    solo.classList.add("solo");
    solo.title = `solo ${track.name}`;
    const buttons = document.createElement("span");
    buttons.className = "buttons";
    buttons.append(mute, solo);
    head.append(label, instrument, buttons);
    const roll = document.createElement("div");
    roll.className = "roll";
    li.append(head, roll);
    return li;
  }));
}

function toggle(text, flip) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = text;
  button.setAttribute("aria-pressed", "false");
  button.addEventListener("click", () => {
    button.setAttribute("aria-pressed", String(flip()));
    applyGains();
  });
  return button;
}

function audible(track) {
  const soloing = state.tracks.some((t) => t.solo);
  return !track.muted && (!soloing || track.solo);
}

function applyGains() {
  for (const track of state.tracks) {
    if (track.gain) track.gain.gain.value = audible(track) ? 1 : 0;
    document.querySelector(`#tracks li[data-track="${CSS.escape(track.name)}"]`)
      ?.classList.toggle("silent", !audible(track));
  }
  document.body.dataset.audibleTracks = state.tracks.filter(audible).map((t) => t.name).join(",");
}

function stopTracks() {
  for (const track of state.tracks || []) {
    try { track.source?.stop(); } catch { /* not started */ }
    track.source = null;
  }
  $("#mixer-play").textContent = "Play tracks";
  delete document.body.dataset.tracksPlaying;
}

async function playOrStopTracks() {
  if (state.tracks.some((t) => t.source)) stopTracks();
  else await playTracks(0);
}

// Every stem from ``offset`` seconds on (a click on a roll or a section starts there).
async function playTracks(offset = 0) {
  const record = state.current;
  if (!record || !state.tracks.length) return;
  stopTracks();
  state.audio = state.audio || new AudioContext();
  const context = state.audio;
  try {
    await Promise.all(state.tracks.map(async (track) => {
      if (!track.buffer) {
        const blob = await fetchBlob(track.path);
        track.buffer = await context.decodeAudioData(await blob.arrayBuffer());
      }
    }));
  } catch (error) {
    showRecordError(`stems: ${error.message}`);
    return;
  }
  if (state.current?.id !== record.id) return;
  const start = context.currentTime + 0.05;
  for (const track of state.tracks) {
    track.gain = context.createGain();
    track.gain.connect(context.destination);
    track.source = context.createBufferSource();
    track.source.buffer = track.buffer;
    track.source.connect(track.gain);
    track.source.start(start, Math.min(offset, track.buffer.duration));
  }
  const sources = state.tracks.map((t) => t.source);
  const longest = sources.reduce((a, b) => (b.buffer.duration > a.buffer.duration ? b : a));
  longest.addEventListener("ended", () => {
    if (state.tracks.some((t, i) => t.source === sources[i])) stopTracks();
  });
  applyGains();
  $("#mixer-play").textContent = "Stop";
  document.body.dataset.tracksPlaying = String(state.tracks.length);
  followPlayHead(context, start - offset);
}

async function download(kind) {
  const record = state.current;
  if (!record) return;
  const path = { wav: record.links.audio.wav, mid: record.links.midi, zip: record.links.stems_zip }[kind];
  try {
    const blob = state.media[kind] || await fetchBlob(path);
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = `tunesmith-${record.model}-${record.id.slice(0, 8)}${kind === "zip" ? "-stems" : ""}.${kind}`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (error) {
    showRecordError(error.message);
  }
}

async function deleteWork() {
  const record = state.current;
  if (!record || !confirm("Delete this work and its files?")) return;
  try {
    await api(`/v1/generations/${record.id}`, { method: "DELETE" });
    showDeleted(record.id);
  } catch (error) {
    showRecordError(error.message);
  }
}

// -------------------------------------------------------------------------------------- history

async function loadHistory(reset = false) {
  if (!state.key) return false;
  if (reset) state.historyOffset = 0;
  let page;
  try {
    page = await api(`/v1/generations?limit=${HISTORY_PAGE}&offset=${state.historyOffset}`);
  } catch (error) {
    showError(error, "key");
    return false;
  }
  const items = page.items.map(historyItem);
  if (reset) $("#history").replaceChildren(...items);
  else $("#history").append(...items);
  state.historyOffset += page.items.length;
  $("#history-more").hidden = !page.next;
  $("#history-empty").hidden = page.total > 0;
  $("#history-empty").textContent = "No works yet: compose your first piece.";
  markHistory();
  return true;
}

function historyItem(record) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.id = record.id;
  const badge = document.createElement("span");
  badge.className = `badge ${record.status}`;
  badge.textContent = STATUS_TEXT[record.status] || record.status;
  const what = document.createElement("span");
  what.className = "what";
  what.textContent = title(record);
  const when = document.createElement("time");
  when.className = "when";
  when.dateTime = record.created;
  when.textContent = new Date(record.created).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  button.append(badge, what, when);
  button.addEventListener("click", () => openWork(record.id));
  li.append(button);
  return li;
}

function markHistory() {
  for (const button of document.querySelectorAll("#history button")) {
    button.setAttribute("aria-current", String(button.dataset.id === state.current?.id));
  }
}

async function openWork(id) {
  clearErrors("_general");
  try {
    const record = await api(`/v1/generations/${id}`);
    showRecord(record);
    if (!FINISHED.includes(record.status)) await follow(record);
  } catch (error) {
    showError(error);
  }
}

// ----------------------------------------------------------------------------------------- start

function start() {
  const list = document.createElement("datalist");
  list.id = "key-names";
  list.append(...KEYS.map((k) => new Option(k)));
  document.body.append(list);
  $("#key-form").addEventListener("submit", useKey);
  $("#key-forget").addEventListener("click", forgetKey);
  $("#model").addEventListener("change", () => { clearErrors(); showModel(); });
  $("#compose-form").addEventListener("submit", generate);
  $("#compose-form").addEventListener("input", (event) => {
    if (event.target.dataset.field) clearErrors(event.target.dataset.field);
  });
  $("#melody-file").addEventListener("change", uploadMelody);
  $("#melody-clear").addEventListener("click", clearMelody);
  $("#download-wav").addEventListener("click", () => download("wav"));
  $("#download-mid").addEventListener("click", () => download("mid"));
  $("#download-stems").addEventListener("click", () => download("zip"));
  $("#mixer-play").addEventListener("click", playOrStopTracks);
  $("#delete-work").addEventListener("click", deleteWork);
  $("#history-refresh").addEventListener("click", () => loadHistory(true));
  $("#history-more").addEventListener("click", () => loadHistory(false));
  startSongPanel();
  startTrackRolls();
  setKey(localStorage.getItem(KEY_STORAGE) || "");
  $("#api-key").value = state.key;
  loadModels();
  loadHistory(true);
}

start();
