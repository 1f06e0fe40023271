// The voice page: wires the connection, the player and the transcript together.
// The page names its turns itself (`id` in `start`), so it knows the current turn the moment
// Start is pressed and drops every frame of any other (stopped or superseded) turn.
// When the connection drops, the page reconnects with the session's resume token, the turn,
// the last audio `seq` it received and whether the turn is paused; the server sends the rest of
// the turn from there, and the player just goes on appending (see resumeSession).

import { socketUrl, takeToken } from "./address.js";
import { Connection } from "./connection.js";
import { statusText, turnMeta } from "./labels.js";
import { base64ToBytes } from "./mp3.js";
import { createPlayer } from "./player.js";
import { Transcript } from "./transcript.js";
import { createTurn, describeTurn, isLive, isUnfinished } from "./turn.js";

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
  llm: $("llm"),
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
let turn = null; // the current turn (see turn.js)
let dropped = 0; // audio frames of other turns, thrown away
let status = { state: "connecting", attempt: 0 };
const token = takeToken(); // the server's shared secret, if it has one; never shown
const session = { id: null, resume: null, resumes: 0 }; // resume: the token for a reconnect

const connection = new Connection(connectUrl, {
  healthUrl: "/healthz",
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
  return createTurn(id, transcript.addTurn(id, prompt));
}

const isCurrent = (message) => isLive(turn) && message.turn === turn.id;

/** Each attempt: a new session, or (after a drop) the last one, from the last frame received,
 * with the turn paused or playing as the page has it now (a Pause pressed while the connection
 * was down takes effect on the server before it sends anything new of the turn). */
function connectUrl() {
  if (session.resume === null) return socketUrl(token);
  const query = { resume: session.resume };
  if (turn !== null) Object.assign(query, { turn: turn.id, seq: String(turn.timeline.lastSeq) });
  if (isUnfinished(turn)) query.paused = turn.paused ? "1" : "0";
  return socketUrl(token, query);
}

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
    ui.llm.textContent = data.llm; // replay, local or openai: what answers (with --llm auto too)
    player.configure({ sampleRate: data.audio && data.audio.sample_rate });
    if (data.resumed) resumeSession(data.turn);
    else if (isUnfinished(turn)) cutOff(turn, "cut off: the connection was lost");
    session.id = data.session;
    session.resume = data.resume || null;
  } else if (action === "audio") {
    if (!isCurrent(message) || message.seq <= turn.timeline.lastSeq) {
      dropped += 1;
      return;
    }
    const bytes = base64ToBytes(data);
    turn.timeline.add(message.seq, message.sentence, bytes);
    turn.captionMark = turn.view.captionLength;
    player.append(bytes, message.sentence);
    if (turn.state === "waiting") turn.state = "speaking";
  } else if (action === "stopped" && turn !== null && turn.syncing) {
    turn.syncing = false; // the replay is over; the turn was not in it: the server lost it
    if (isUnfinished(turn)) cutOff(turn, "cut off: the server no longer had this turn");
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
  } else if (action === "stopped") {
    cutOff(turn, "stopped by the server"); // e.g. a resume that could not replay all of it
  } else if (action === "error") {
    turn.error = data.message;
  }
  render();
}

function onDrop() {
  // What arrived plays on; the reconnect asks for the rest of the turn (resumeSession).
  if (isUnfinished(turn)) turn.interrupted = true;
}

/** The server took the page back into its session (`ready` with `resumed`); `theirs` is the
 * turn it is running, `{id, paused}` or null. The messages of the page's turn after its last
 * audio frame follow this `ready`, so what came after that frame is rolled back first. */
function resumeSession(theirs) {
  session.resumes += 1;
  const ours = isUnfinished(turn) ? turn : null;
  if (ours !== null) {
    ours.interrupted = false;
    ours.view.truncateCaption(ours.captionMark);
  }
  if (ours !== null && theirs !== null && theirs.id === ours.id) {
    // The address said whether the page has it paused; if the server says otherwise (it does
    // not know `paused=`, or Pause was pressed after this attempt's address was made), say so.
    if (theirs.paused !== ours.paused) {
      connection.send({ action: ours.paused ? "pause" : "resume" });
    }
    return;
  }
  if (ours === null && theirs === null) return;
  // The server runs a turn the page stopped while it was away, or the page's turn is not the
  // server's live one (it ended, and its `done` is in the replay, or its `start` was lost).
  // `stop` ends any unwanted turn, and its `stopped` comes after the replay: then the page knows.
  if (ours !== null) ours.syncing = true;
  connection.send({ action: "stop" });
}

function cutOff(t, why) {
  t.error = why;
  endTurn(t, "lost");
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
  endTurn(turn, "done");
  render();
};

function endTurn(t, state) {
  t.state = state;
  t.paused = false;
  t.interrupted = false;
  t.view.setState(state);
  if (state === "stopped" || state === "lost") player.stop(); // nothing of it plays any more
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

function render() {
  ui.status.textContent = statusText(status, performance.now());
  ui.status.dataset.state = status.state;
  ui.status.dataset.reason = status.reason || "";
  const live = isLive(turn);
  ui.start.disabled = !connection.isReady;
  ui.pause.disabled = !live;
  ui.stop.disabled = !live;
  ui.pause.textContent = live && turn.paused ? "Resume" : "Pause";
  ui.unlock.hidden = !(live && player.needsUnlock);
  if (turn !== null) {
    turn.view.setMeta(turnMeta(turn));
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
      reason: status.reason || null,
      attempt: status.attempt,
      session: session.id,
      resumes: session.resumes,
      player: player.describe(),
      position: player.position,
      buffered: player.bufferedSeconds,
      ended: player.ended,
      paused: player.paused,
      needsUnlock: player.needsUnlock,
      dropped,
      turn: turn && describeTurn(turn),
    };
  },
};
