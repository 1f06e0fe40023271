// The voice page: the first user of voicechat.js. VoiceChat holds the session, the turns, the
// players, the reconnect and the `played` reports; this file draws them (the transcript, the
// controls, the status pill) and wires the buttons to it.

import { takeToken } from "./address.js";
import { statusText, turnMeta } from "./labels.js";
import { Transcript } from "./transcript.js";
import { VoiceChat } from "./voicechat.js";
import { fillVoices, replayNotice, speakingText } from "./voices.js";

const RENDER_MS = 100; // the status pill counts its retry down

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"),
  notice: $("notice"),
  form: $("ask"),
  prompt: $("prompt"),
  start: $("start"),
  pause: $("pause"),
  stop: $("stop"),
  voice: $("voice"),
  voiceOff: $("voice-off"),
  speaking: $("speaking"),
  firstSound: $("first-sound"),
  llm: $("llm"),
  unlock: $("unlock"),
  transcript: $("transcript"),
  audio: $("audio"),
  playerKind: $("player-kind"),
};

const params = new URLSearchParams(location.search);
const chat = new VoiceChat({
  url: "/ws",
  token: takeToken(), // the server's shared secret, if it has one; never shown
  player: params.get("player"),
  audioElement: ui.audio,
  healthUrl: "/healthz",
});
const transcript = new Transcript(ui.transcript);
const views = new Map(); // turn id → its TurnView

const viewOf = (turn) => (turn === null ? undefined : views.get(turn.id));
const isLive = (turn) => turn !== null && (turn.state === "waiting" || turn.state === "speaking");

// -- user actions (audio is unlocked inside the gesture, by chat.start and chat.unlock) -------

function startTurn() {
  const prompt = ui.prompt.value.trim();
  if (!prompt || !chat.isReady) return;
  const before = chat.turn;
  const audio = !ui.voiceOff.checked;
  const id = chat.start(prompt, { voice: audio ? ui.voice.value || null : null, audio });
  if (id === null) return;
  if (before !== null) renderTurn(before); // a barge-in stopped it
  views.set(id, transcript.addTurn(id, prompt));
  ui.prompt.value = "";
  render();
}

function togglePause() {
  if (chat.paused) chat.resume();
  else chat.pause();
}

// -- what the server says -----------------------------------------------------------------------

chat.on("ready", (server) => {
  fillVoices(ui.voice, server, chat.tts);
  ui.llm.textContent = server.llm; // replay, local or openai: what answers (with --llm auto too)
  ui.notice.hidden = server.llm !== "replay";
  ui.notice.textContent = server.llm === "replay" ? replayNotice() : "";
});
chat.on("sentence", ({ turn, index, text }) => {
  if (chat.turn !== null && turn === chat.turn.id) viewOf(chat.turn).addSentence(index, text);
});
let switchReason = null; // why the chain moved on, from the last `backend` event
chat.on("backend", ({ tts, reason }) => {
  switchReason = reason === "first choice" ? null : `${tts}: ${reason}`;
  fillVoices(ui.voice, chat.server, chat.tts);
});
chat.on("error", (error) => {
  if (error.turn === null) showError(error);
});
chat.on("change", render);

// -- rendering ---------------------------------------------------------------------------------

function renderTurn(turn) {
  const view = viewOf(turn);
  if (view === undefined) return;
  if (view.caption.textContent !== turn.text) view.setCaption(turn.text);
  if (turn.audio && turn.timeline.duration > 0) view.highlight(turn.hearing);
  view.setMeta(turnMeta(turn));
  view.setState(turn.state);
}

function render() {
  const status = chat.status;
  ui.status.textContent = statusText(status, performance.now());
  ui.status.dataset.state = status.state;
  ui.status.dataset.reason = status.reason || "";
  const turn = chat.turn;
  const live = isLive(turn);
  ui.start.disabled = !chat.isReady;
  ui.pause.disabled = !live;
  ui.stop.disabled = !live;
  ui.pause.textContent = chat.paused ? "Resume" : "Pause";
  ui.unlock.hidden = !chat.needsUnlock;
  ui.voice.disabled = ui.voiceOff.checked || ui.voice.options.length <= 1;
  ui.speaking.textContent = speakingText(chat, ui.voiceOff.checked, ui.voice.value, switchReason);
  if (turn !== null) {
    renderTurn(turn);
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
ui.stop.addEventListener("click", () => chat.stop());
ui.unlock.addEventListener("click", () => chat.unlock());
ui.status.addEventListener("click", () => chat.retryNow());
ui.voice.addEventListener("change", () => {
  localStorage.setItem("voicechat.voice", ui.voice.value);
  render();
});
ui.voiceOff.checked = localStorage.getItem("voicechat.voice-off") === "1";
ui.voiceOff.addEventListener("change", () => {
  localStorage.setItem("voicechat.voice-off", ui.voiceOff.checked ? "1" : "0");
  render();
});
window.addEventListener("online", () => chat.retryNow());
ui.playerKind.textContent = chat.player.kind;

setInterval(render, RENDER_MS);
chat.connect();
render();

// For tests and for the curious (browser console): the client, and a snapshot of its state.
window.voicechat = {
  chat,
  player: chat.player,
  state() {
    const { player, status, session, turn } = chat;
    const view = viewOf(turn);
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
      dropped: chat.dropped,
      tts: chat.tts,
      turn: turn && {
        id: turn.id,
        audio: turn.audio,
        state: turn.state,
        paused: turn.paused,
        serverDone: turn.serverDone,
        interrupted: turn.interrupted,
        firstSoundMs: turn.firstSoundMs,
        audioMs: turn.audioMs,
        duration: turn.timeline.duration,
        frames: turn.timeline.frameEnds.length,
        lastSeq: turn.timeline.lastSeq,
        lastPlayed: turn.lastPlayed,
        highlighted: view.current,
        caption: view.caption.textContent,
      },
    };
  },
};
