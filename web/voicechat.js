// voicechat's browser client: one VoiceChat is one session with a voicechat server.
//
//   import { VoiceChat } from "./voicechat.js";
//   const chat = new VoiceChat({ url: "/ws" });
//   chat.on("sentence", ({ text }) => console.log(text));
//   await chat.connect();
//   chat.start("What is the capital of France?");   // inside a click: it unlocks the audio
//
// It keeps the protocol's promises on the client side: it names its turns (`id` in `start`), so
// it knows the current turn the moment start() is called and drops every frame of any other
// (stopped or superseded) turn; it plays a turn's MP3 frames gaplessly (MediaSource, or Web Audio
// where `audio/mpeg` MediaSource is missing: see player.js); it tells the server how far the
// listener got (`played`); and when the connection drops it reconnects with backoff and the
// session's resume token, the turn, the last audio `seq` it received and whether the turn is
// paused, so the server sends the rest of the turn from there and playback just goes on.
//
// Events (chat.on(name, fn) returns the function that unsubscribes): the server's messages as
// they arrive, in protocol order (ready, backend, text, sentence, audio, paused, resumed, stopped,
// done, error), plus status (the connection), played (playback progress) and change (any state
// the UI shows changed). Types: voicechat.d.ts.

import { Connection, backoffDelay } from "./connection.js";
import { base64ToBytes } from "./mp3.js";
import { createPlayer } from "./player.js";
import { Timeline } from "./timeline.js";

export { backoffDelay };

const TICK_MS = 100;
const PLAYED_EVERY_MS = 400; // playback progress goes to the server at most this often
const EVENTS = [
  "ready", "status", "text", "sentence", "audio", "played", "paused", "resumed", "stopped",
  "done", "error", "backend", "change",
];

/** The WebSocket address of `url` (relative to the page; http(s) becomes ws(s)), with `query`. */
export function socketAddress(url, token, query = {}) {
  const address = new URL(url, globalThis.location ? globalThis.location.href : undefined);
  if (address.protocol === "http:") address.protocol = "ws:";
  if (address.protocol === "https:") address.protocol = "wss:";
  for (const [key, value] of Object.entries(query)) address.searchParams.set(key, value);
  if (token) address.searchParams.set("token", token);
  return address.href;
}

function healthAddress(url) {
  const address = new URL(socketAddress(url, null));
  address.protocol = address.protocol === "wss:" ? "https:" : "http:";
  address.pathname = "/healthz";
  address.search = "";
  return address.href;
}

const isLive = (t) => t !== null && (t.state === "waiting" || t.state === "speaking");
const isUnfinished = (t) => isLive(t) && !t.serverDone;

export class VoiceChat {
  /**
   * url: the server's /ws (default "/ws" on the page's host); token: its shared secret;
   * player: "mse" | "webaudio" | null (by what the browser supports); audioElement: the
   * <audio> the MediaSource player plays through (default: a new one); healthUrl: what tells
   * "refused" from "unreachable" when a handshake fails (null: do not ask); reconnect: false
   * to stay disconnected after a drop.
   */
  constructor({
    url = "/ws",
    token = null,
    player = null,
    audioElement = null,
    healthUrl,
    reconnect = true,
    pageId = Math.random().toString(36).slice(2, 8),
  } = {}) {
    this.url = url;
    this.token = token;
    this.player = createPlayer(player, audioElement || new Audio());
    this.session = { id: null, resume: null, resumes: 0 };
    this.server = null; // what `ready` said: {session, llm, tts, voices, sampleRate, ...}
    this.tts = null; // the TTS backend speaking now (ready.data.tts, then `backend` events)
    this.status = { state: "idle", attempt: 0 };
    this.turn = null; // the current turn; see newTurn()
    this.dropped = 0; // audio frames of other turns, thrown away
    this._reconnect = reconnect;
    this._pageId = pageId;
    this._turns = 0;
    this._listeners = new Map(EVENTS.map((name) => [name, new Set()]));
    this._timer = null;
    this._waitingForReady = [];
    this._connection = new Connection(() => this._address(), {
      healthUrl: healthUrl === undefined ? healthAddress(url) : healthUrl,
      onmessage: (message) => this._handle(message),
      onstatus: (status) => {
        this.status = status;
        this._emit("status", status);
        this._emit("change");
      },
      ondrop: () => this._onDrop(),
    });
    this.player.onfirstsound = (when) => this._firstSound(when);
    this.player.onended = () => this._ended();
    this.player.onchange = () => this._emit("change");
  }

  // -- events -------------------------------------------------------------------------------

  /** Call `listener(detail)` for each `name` event; returns the function that unsubscribes. */
  on(name, listener) {
    const listeners = this._listeners.get(name);
    if (listeners === undefined) throw new TypeError(`voicechat: no event named ${name}`);
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  _emit(name, detail) {
    for (const listener of this._listeners.get(name)) {
      try {
        listener(detail);
      } catch (error) {
        console.error(`voicechat: a ${name} listener failed`, error);
      }
    }
  }

  // -- actions ------------------------------------------------------------------------------

  /** Open the session (and keep it open, reconnecting after drops); resolves at `ready`. */
  connect() {
    const ready = new Promise((resolve) => this._waitingForReady.push(resolve));
    if (this._timer === null) this._timer = setInterval(() => this._tick(), TICK_MS);
    this._connection.connect();
    return ready;
  }

  /** Try now instead of waiting out the backoff (the user asked, or the network came back). */
  retryNow() {
    if (this._timer !== null) this._connection.retryNow();
  }

  /** Close the session for good: no reconnect, nothing plays. */
  close() {
    clearInterval(this._timer);
    this._timer = null;
    if (isLive(this.turn)) this._endTurn(this.turn, "stopped");
    this.player.stop();
    this._connection.close();
  }

  get isReady() {
    return this._connection.isReady;
  }

  /** Whether the browser holds the audio back until a tap (call unlock() in its handler). */
  get needsUnlock() {
    return isLive(this.turn) && this.turn.audio && this.player.needsUnlock;
  }

  get paused() {
    return isLive(this.turn) && this.turn.paused;
  }

  /** Ask; call it inside a click or key handler (it unlocks the audio). A live turn is
   * stopped first (barge-in). `audio: false`: a text-only turn. Returns the turn's id, or null
   * when not connected. */
  start(prompt, { voice = null, id = null, audio = true } = {}) {
    if (!prompt || !this.isReady) return null;
    if (audio) this.player.unlock();
    if (isLive(this.turn)) this._endTurn(this.turn, "stopped");
    this._turns += 1;
    const turn = newTurn(id || `${this._pageId}-${this._turns}`, prompt, audio);
    this.turn = turn;
    if (audio) this.player.begin();
    const data = { prompt, id: turn.id };
    if (voice) data.voice = voice;
    if (!audio) data.audio = false;
    this._connection.send({ action: "start", data });
    this._emit("change");
    return turn.id;
  }

  /** Silent at once; the server holds the rest of the turn until resume(). Works while
   * disconnected too: the reconnect asks for the turn paused. */
  pause() {
    this._setPaused(true);
  }

  resume() {
    this._setPaused(false);
  }

  _setPaused(paused) {
    const turn = this.turn;
    if (!isLive(turn) || turn.paused === paused) return;
    turn.paused = paused;
    if (turn.audio && paused) this.player.pause();
    if (turn.audio && !paused) this.player.resume();
    this._connection.send({ action: paused ? "pause" : "resume" });
    this._emit("change");
  }

  /** Silent at once, and nothing of the turn plays any more. */
  stop() {
    this.player.stop();
    this._connection.send({ action: "stop" });
    if (isLive(this.turn)) this._endTurn(this.turn, "stopped");
    this._emit("change");
  }

  /** Let the audio play after the browser held it back (inside a tap's handler). */
  unlock() {
    this.player.unlock();
    if (isLive(this.turn) && !this.turn.paused) this.player.resume();
    this._emit("change");
  }

  // -- the connection -------------------------------------------------------------------------

  /** Each attempt: a new session, or (after a drop) the last one, from the last frame received,
   * with the turn paused or playing as it is here now (a Pause pressed while the connection was
   * down takes effect on the server before it sends anything new of the turn). */
  _address() {
    if (this.session.resume === null || !this._reconnect) return socketAddress(this.url, this.token);
    const turn = this.turn;
    const query = { resume: this.session.resume };
    if (turn !== null) Object.assign(query, { turn: turn.id, seq: String(turn.timeline.lastSeq) });
    if (isUnfinished(turn)) query.paused = turn.paused ? "1" : "0";
    return socketAddress(this.url, this.token, query);
  }

  _onDrop() {
    // What arrived plays on; the reconnect asks for the rest of the turn (_resumed).
    if (isUnfinished(this.turn)) this.turn.interrupted = true;
    if (!this._reconnect) this._connection.close();
    this._emit("change");
  }

  // -- server messages ----------------------------------------------------------------------

  _handle(message) {
    const { action, data } = message;
    const turn = this.turn;
    const current = isLive(turn) && message.turn === turn.id;
    if (action === "ready") {
      this._ready(data);
      return;
    }
    if (action === "audio") {
      if (!current || message.seq <= turn.timeline.lastSeq) {
        this.dropped += 1;
        return;
      }
      const bytes = base64ToBytes(data);
      const seconds = turn.timeline.add(message.seq, message.sentence, bytes);
      turn.textMark = turn.text.length;
      if (turn.audio) this.player.append(bytes, message.sentence);
      if (turn.state === "waiting") turn.state = "speaking";
      this._emit("audio", { turn: turn.id, sentence: message.sentence, seq: message.seq, bytes, seconds });
    } else if (action === "text") {
      if (current) turn.text += data;
      if (current && !turn.audio && turn.state === "waiting") turn.state = "speaking";
      this._emit("text", { turn: message.turn, delta: data, text: current ? turn.text : data });
    } else if (action === "sentence") {
      if (current) turn.sentences.set(message.index, data);
      this._emit("sentence", { turn: message.turn, index: message.index, text: data });
    } else if (action === "backend") {
      this.tts = data.tts;
      this._emit("backend", { turn: message.turn, tts: data.tts, reason: data.reason });
    } else if (action === "paused" || action === "resumed") {
      this._emit(action, { turn: message.turn });
    } else if (action === "done") {
      if (current) {
        turn.serverDone = true;
        turn.audioMs = data.audio_ms;
        if (turn.audio) this.player.finish();
        if (turn.timeline.frameEnds.length === 0) this._endTurn(turn, "done");
      }
      this._emit("done", { turn: message.turn, text: data.text, sentences: data.sentences, audioMs: data.audio_ms });
    } else if (action === "stopped") {
      if (turn !== null && turn.syncing) {
        turn.syncing = false; // the replay is over; the turn was not in it: the server lost it
        if (isUnfinished(turn)) this._cutOff(turn, "cut off: the server no longer had this turn");
      } else if (current) {
        this._cutOff(turn, "stopped by the server"); // e.g. a resume that could not replay it all
      }
      this._emit("stopped", { turn: message.turn, spoken: data.spoken, heard: data.heard });
    } else if (action === "error") {
      if (current) turn.error = data.message;
      this._emit("error", { ...data, turn: message.turn === undefined ? null : message.turn });
    }
    this._emit("change");
  }

  _ready(data) {
    this.player.configure({ sampleRate: data.audio && data.audio.sample_rate });
    if (data.resumed) this._resumed(data.turn);
    else if (isUnfinished(this.turn)) this._cutOff(this.turn, "cut off: the connection was lost");
    this.session.id = data.session;
    this.session.resume = data.resume || null;
    this.tts = data.tts;
    this.server = {
      session: data.session,
      llm: data.llm,
      tts: data.tts,
      voices: data.voices || [],
      backends: data.backends,
      sampleRate: data.audio ? data.audio.sample_rate : null,
      resumed: Boolean(data.resumed),
    };
    this._emit("ready", this.server);
    for (const resolve of this._waitingForReady.splice(0)) resolve(this.server);
    this._emit("change");
  }

  /** The server took this client back into its session (`ready` with `resumed`); `theirs` is
   * the turn it is running, `{id, paused}` or null. The messages of our turn after its last
   * audio frame follow this `ready`, so what came after that frame is rolled back first. */
  _resumed(theirs) {
    this.session.resumes += 1;
    const ours = isUnfinished(this.turn) ? this.turn : null;
    if (ours !== null) {
      ours.interrupted = false;
      ours.text = ours.text.slice(0, ours.textMark);
    }
    if (ours !== null && theirs && theirs.id === ours.id) {
      // The address said whether we have it paused; if the server says otherwise (it does not
      // know `paused=`, or Pause was pressed after this attempt's address was made), say so.
      if (theirs.paused !== ours.paused) {
        this._connection.send({ action: ours.paused ? "pause" : "resume" });
      }
      return;
    }
    if (ours === null && !theirs) return;
    // The server runs a turn we stopped while away, or our turn is not the server's live one
    // (it ended, and its `done` is in the replay, or its `start` was lost). `stop` ends any
    // unwanted turn, and its `stopped` comes after the replay: then we know.
    if (ours !== null) ours.syncing = true;
    this._connection.send({ action: "stop" });
  }

  _cutOff(turn, why) {
    turn.error = why;
    this._endTurn(turn, "lost");
  }

  _endTurn(turn, state) {
    turn.state = state;
    turn.paused = false;
    turn.interrupted = false;
    if (turn.audio && (state === "stopped" || state === "lost")) this.player.stop();
  }

  // -- playback: what is being heard, and `played` ------------------------------------------

  _firstSound(when) {
    const turn = this.turn;
    if (!isLive(turn) || turn.firstSoundMs !== null) return;
    turn.firstSoundMs = Math.max(0, Math.round(when - turn.startedAt));
    this._emit("change");
  }

  _ended() {
    const turn = this.turn;
    if (!isLive(turn) || !turn.serverDone) return;
    turn.hearing = Infinity;
    this._reportPlayed(turn, Infinity, true);
    this._endTurn(turn, "done");
    this._emit("change");
  }

  _tick() {
    const turn = this.turn;
    if (!isLive(turn) || !turn.audio) return;
    const position = this.player.position;
    if (turn.timeline.duration > 0) {
      const hearing = turn.timeline.sentenceAt(position);
      if (hearing !== turn.hearing) {
        turn.hearing = hearing;
        this._emit("change");
      }
    }
    this._reportPlayed(turn, position, false);
  }

  _reportPlayed(turn, position, ended) {
    const seq = turn.timeline.playedSeq(position);
    const now = performance.now();
    if (seq <= turn.lastPlayed || (!ended && now - turn.lastPlayedAt < PLAYED_EVERY_MS)) return;
    if (this._connection.send({ action: "played", turn: turn.id, seq })) {
      turn.lastPlayed = seq;
      turn.lastPlayedAt = now;
      this._emit("played", { turn: turn.id, seq, sentence: turn.hearing, ended });
    }
  }
}

/** One turn as the client sees it; VoiceChat moves it through its states. */
function newTurn(id, prompt, audio) {
  return {
    id,
    prompt,
    audio, // false: a text-only turn
    state: "waiting", // waiting → speaking → done | stopped | lost (cut off)
    paused: false,
    text: "", // the LLM's text so far
    sentences: new Map(), // index → spoken text
    hearing: null, // the index of the sentence being heard (null: none yet; Infinity: all)
    firstSoundMs: null,
    audioMs: null,
    error: null,
    serverDone: false, // `done` came: no more frames will
    interrupted: false, // the connection dropped; a reconnect resumes the turn
    syncing: false, // waiting for the `stopped` that ends a resume's replay
    startedAt: performance.now(),
    timeline: new Timeline(),
    textMark: 0, // text length when the last audio frame came: a resume replays from there
    lastPlayed: -1,
    lastPlayedAt: 0,
  };
}
