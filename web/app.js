// The voice page: wires the connection, the player and the transcript together.
// The page names its turns itself (`id` in `start`), so it knows the current turn the moment
// Start is pressed and drops every frame of any other (stopped or superseded) turn.

import { Connection } from "./connection.js";
import { base64ToBytes } from "./mp3.js";
import { createPlayer } from "./player.js";
import { Timeline } from "./timeline.js";
import { Transcript } from "./transcript.js";

const TICK_MS = 100;
const PLAYED_EVERY_MS = 400; // playback progress goes to the server at most this often

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"),
  form: $("ask"),
  prompt: $("prompt"),
  start: $("start"),
  pause: $("pause"),
  stop: $("stop"),
  voice: $("voice"),
  firstSound: $("first-sound"),
  unlock: $("unlock"),
  transcript: $("transcript"),
  audio: $("audio"),
  playerKind: $("player-kind"),
};

const params = new URLSearchParams(location.search);
const player = createPlayer(params.get("player"), ui.audio);
const transcript = new Transcript(ui.transcript);
const pageId = Math.random().toString(36).slice(2, 8);
let turnCount = 0;
let turn = null; // the current turn (see newTurn)
let dropped = 0; // audio frames of other turns, thrown away
let status = { state: "connecting", attempt: 0 };

const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const connection = new Connection(`${scheme}//${location.host}/ws`, {
  onmessage: handle,
  onstatus: (next) => {
    status = next;
    render();
  },
  ondrop: onDrop,
});

function newTurn(prompt) {
  turnCount += 1;
  const id = `${pageId}-${turnCount}`;
  return {
    id,
    view: transcript.addTurn(id, prompt),
    timeline: new Timeline(),
    startedAt: performance.now(),
    state: "waiting", // waiting → speaking → done | stopped | lost
    paused: false,
    serverDone: false, // no more frames will come (done, or the connection dropped)
    lost: false,
    firstSoundMs: null,
    audioMs: null,
    lastPlayed: -1,
    lastPlayedAt: 0,
    error: null,
  };
}

const isLive = (t) => t !== null && (t.state === "waiting" || t.state === "speaking");
const isCurrent = (message) => isLive(turn) && message.turn === turn.id;

// -- user actions (audio is unlocked here, inside the gesture) --------------------------------

function startTurn() {
  const prompt = ui.prompt.value.trim();
  if (!prompt || !connection.isReady) return;
  player.unlock();
  if (isLive(turn)) endTurn(turn, "stopped"); // barge-in: the server stops it before the new one
  turn = newTurn(prompt);
  player.begin();
  const data = { prompt, id: turn.id };
  if (ui.voice.value) data.voice = ui.voice.value;
  connection.send({ action: "start", data });
  ui.prompt.value = "";
  render();
}

function togglePause() {
  if (!isLive(turn)) return;
  turn.paused = !turn.paused;
  if (turn.paused) {
    player.pause();
    connection.send({ action: "pause" });
  } else {
    player.resume();
    connection.send({ action: "resume" });
  }
  render();
}

function stopTurn() {
  player.stop();
  connection.send({ action: "stop" });
  if (isLive(turn)) endTurn(turn, "stopped");
  render();
}

function enableAudio() {
  player.unlock();
  if (isLive(turn) && !turn.paused) player.resume();
  render();
}

// -- server messages ------------------------------------------------------------------------

function handle(message) {
  const { action, data } = message;
  if (action === "ready") {
    fillVoices(data.voices || []);
    player.configure({ sampleRate: data.audio && data.audio.sample_rate });
  } else if (action === "audio") {
    if (!isCurrent(message)) {
      dropped += 1;
      return;
    }
    const bytes = base64ToBytes(data);
    turn.timeline.add(message.seq, message.sentence, bytes);
    player.append(bytes, message.sentence);
    if (turn.state === "waiting") turn.state = "speaking";
  } else if (!isCurrent(message)) {
    if (action === "error" && message.turn === undefined) showError(data);
  } else if (action === "text") {
    turn.view.appendText(data);
  } else if (action === "sentence") {
    turn.view.addSentence(message.index, data);
  } else if (action === "done") {
    turn.serverDone = true;
    turn.audioMs = data.audio_ms;
    player.finish();
    if (turn.timeline.frameEnds.length === 0) endTurn(turn, "done");
  } else if (action === "error") {
    turn.error = data.message;
  }
  render();
}

function onDrop() {
  if (!isLive(turn)) return;
  // The server ended its side of the turn; what arrived still plays out.
  turn.serverDone = true;
  turn.lost = true;
  player.finish();
  if (turn.timeline.frameEnds.length === 0) endTurn(turn, "lost");
}

player.onfirstsound = (when) => {
  if (!isLive(turn) || turn.firstSoundMs !== null) return;
  turn.firstSoundMs = Math.max(0, Math.round(when - turn.startedAt));
  render();
};

player.onended = () => {
  if (!isLive(turn) || !turn.serverDone) return;
  turn.view.highlight(Infinity);
  reportPlayed(turn, Infinity, true);
  endTurn(turn, turn.lost ? "lost" : "done");
  render();
};

function endTurn(t, state) {
  t.state = state;
  t.paused = false;
  t.view.setState(state);
  if (state === "stopped") player.stop();
}

// -- playback progress: highlight and `played` -------------------------------------------------

function tick() {
  if (isLive(turn)) {
    const position = player.position;
    if (turn.timeline.duration > 0) turn.view.highlight(turn.timeline.sentenceAt(position));
    reportPlayed(turn, position, false);
  }
  render();
}

function reportPlayed(t, position, force) {
  const seq = t.timeline.playedSeq(position);
  const now = performance.now();
  if (seq <= t.lastPlayed || (!force && now - t.lastPlayedAt < PLAYED_EVERY_MS)) return;
  if (connection.send({ action: "played", turn: t.id, seq })) {
    t.lastPlayed = seq;
    t.lastPlayedAt = now;
  }
}

// -- rendering ---------------------------------------------------------------------------------

function fillVoices(voices) {
  const wanted = ui.voice.value || localStorage.getItem("voicechat.voice") || "";
  ui.voice.replaceChildren(...voices.map((v) => new Option(v, v)));
  if (voices.includes(wanted)) ui.voice.value = wanted;
  ui.voice.disabled = voices.length <= 1;
}

function statusText() {
  if (status.state === "connected") return "connected";
  if (status.state === "connecting") return status.attempt ? "reconnecting…" : "connecting…";
  const seconds = Math.max(0, (status.retryAt - performance.now()) / 1000);
  return `connection lost · retrying in ${seconds.toFixed(1)} s (attempt ${status.attempt})`;
}

function meta(t) {
  const parts = [];
  if (t.firstSoundMs !== null) parts.push(`first sound ${t.firstSoundMs} ms`);
  if (t.audioMs !== null) parts.push(`${(t.audioMs / 1000).toFixed(1)} s of audio`);
  const states = { waiting: "waiting for the answer…", stopped: "stopped", lost: "connection lost" };
  if (t.paused) parts.push("paused");
  else if (states[t.state]) parts.push(states[t.state]);
  if (t.error) parts.push(t.error);
  return parts.join(" · ");
}

function render() {
  ui.status.textContent = statusText();
  ui.status.dataset.state = status.state;
  const live = isLive(turn);
  ui.start.disabled = !connection.isReady;
  ui.pause.disabled = !live;
  ui.stop.disabled = !live;
  ui.pause.textContent = live && turn.paused ? "Resume" : "Pause";
  ui.unlock.hidden = !(live && player.needsUnlock);
  if (turn !== null) {
    turn.view.setMeta(meta(turn));
    ui.firstSound.textContent = turn.firstSoundMs === null ? "–" : `${turn.firstSoundMs} ms`;
  }
  document.body.dataset.turn = turn === null ? "none" : turn.paused ? "paused" : turn.state;
}

function showError(data) {
  const note = document.createElement("li");
  note.className = "turn notice";
  note.textContent = `${data.code}: ${data.message}`;
  ui.transcript.append(note);
}

// -- wiring ------------------------------------------------------------------------------------

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  startTurn();
});
ui.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    startTurn();
  }
});
ui.pause.addEventListener("click", togglePause);
ui.stop.addEventListener("click", stopTurn);
ui.unlock.addEventListener("click", enableAudio);
ui.status.addEventListener("click", () => connection.retryNow());
ui.voice.addEventListener("change", () => localStorage.setItem("voicechat.voice", ui.voice.value));
window.addEventListener("online", () => connection.retryNow());
player.onchange = render;
ui.playerKind.textContent = player.kind;

setInterval(tick, TICK_MS);
connection.connect();
render();

// For tests and for the curious (browser console): a snapshot of the page's state.
window.voicechat = {
  player,
  state() {
    return {
      connection: status.state,
      attempt: status.attempt,
      player: player.describe(),
      position: player.position,
      buffered: player.bufferedSeconds,
      ended: player.ended,
      paused: player.paused,
      needsUnlock: player.needsUnlock,
      dropped,
      turn: turn && {
        id: turn.id,
        state: turn.state,
        paused: turn.paused,
        serverDone: turn.serverDone,
        firstSoundMs: turn.firstSoundMs,
        audioMs: turn.audioMs,
        duration: turn.timeline.duration,
        frames: turn.timeline.frameEnds.length,
        lastSeq: turn.timeline.lastSeq,
        lastPlayed: turn.lastPlayed,
        highlighted: turn.view.current,
      },
    };
  },
};
