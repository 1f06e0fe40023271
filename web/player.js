// Gapless playback of one turn's MP3 frames as one stream.
//
// MsePlayer: one <audio> element fed by a MediaSource with an `audio/mpeg` SourceBuffer in
// "sequence" mode; frames are appended back to back through a queue (appendBuffer is one at a
// time). Each turn gets a fresh MediaSource on the same element, so a stopped turn's buffer is
// dropped whole. Where `audio/mpeg` MediaSource is missing (Firefox; iOS before 17 has no
// MediaSource, 17+ has ManagedMediaSource, used when present) the page uses WebAudioPlayer.
//
// Both players have the same surface: unlock() (call inside the click handler), begin(),
// append(bytes, sentence), finish(), pause(), resume(), stop(), and the getters position,
// bufferedSeconds, ended, needsUnlock. Callbacks: onfirstsound(perfNow), onended(), onchange().

import { concatBytes } from "./mp3.js";
import { WebAudioPlayer } from "./webaudio.js";

const MP3 = "audio/mpeg";

function mediaSourceClass() {
  return window.ManagedMediaSource || window.MediaSource || null;
}

/** `forced` is the `?player=` query: "mse", "webaudio" or null (choose by support). */
export function createPlayer(forced, audio) {
  const MS = mediaSourceClass();
  const mseWorks = MS !== null && typeof MS.isTypeSupported === "function" && MS.isTypeSupported(MP3);
  if (forced === "webaudio" || (forced !== "mse" && !mseWorks)) return new WebAudioPlayer();
  return new MsePlayer(audio, MS);
}

function noop() {}

export class MsePlayer {
  constructor(audio, MS) {
    this.kind = MS === window.MediaSource ? "mse" : "managed-mse";
    this.audio = audio;
    this.MS = MS;
    this.source = null; // the current turn's MediaSource
    this.url = null;
    this.buffer = null; // its SourceBuffer, once open
    this.queue = [];
    this.finished = false;
    this.heard = false; // first sound of this turn reported
    this.needsUnlock = false;
    this.onfirstsound = noop;
    this.onended = noop;
    this.onchange = noop;
    if (MS !== window.MediaSource) audio.disableRemotePlayback = true; // ManagedMediaSource needs it
    audio.addEventListener("playing", () => {
      if (this.source !== null && !this.heard) {
        this.heard = true;
        this.onfirstsound(performance.now());
      }
    });
    audio.addEventListener("ended", () => {
      if (this.source !== null) this.onended();
    });
  }

  unlock() {
    // The element is played from inside the gesture in begin()/resume(); nothing else to do.
  }

  configure() {}

  begin() {
    this.stop();
    const source = new this.MS();
    this.source = source;
    this.finished = false;
    this.heard = false;
    this.url = URL.createObjectURL(source);
    source.addEventListener("sourceopen", () => {
      if (this.source !== source) return; // a newer turn replaced this one
      this.buffer = source.addSourceBuffer(MP3);
      this.buffer.mode = "sequence";
      this.buffer.addEventListener("updateend", () => this.pump());
      this.pump();
    }, { once: true });
    this.audio.src = this.url;
    this.play();
  }

  play() {
    this.audio.play().then(
      () => this.setNeedsUnlock(false),
      (error) => {
        // AbortError: a pause or a new source interrupted play(); that is not a failure.
        if (error.name === "NotAllowedError") this.setNeedsUnlock(true);
      },
    );
  }

  setNeedsUnlock(value) {
    if (this.needsUnlock !== value) {
      this.needsUnlock = value;
      this.onchange();
    }
  }

  append(bytes) {
    if (this.source === null) return;
    this.queue.push(bytes);
    this.pump();
  }

  finish() {
    this.finished = true;
    this.pump();
  }

  pump() {
    const { source, buffer } = this;
    if (source === null || buffer === null || buffer.updating || source.readyState !== "open") return;
    if (this.queue.length > 0) {
      const parts = this.queue.splice(0);
      const bytes = parts.length === 1 ? parts[0] : concatBytes(parts);
      try {
        buffer.appendBuffer(bytes);
      } catch (error) {
        if (error.name !== "QuotaExceededError") throw error;
        this.queue.unshift(bytes); // make room: drop what was played more than 2 s ago
        buffer.remove(0, Math.max(0.001, this.audio.currentTime - 2));
      }
    } else if (this.finished) {
      source.endOfStream();
    }
  }

  pause() {
    this.audio.pause();
  }

  resume() {
    if (this.source !== null) this.play();
  }

  stop() {
    this.queue = [];
    this.buffer = null;
    if (this.source === null) return;
    this.source = null;
    this.audio.pause();
    this.audio.removeAttribute("src");
    this.audio.load(); // detaches the MediaSource: the buffered audio is gone
    URL.revokeObjectURL(this.url);
    this.url = null;
  }

  get position() {
    return this.source === null ? 0 : this.audio.currentTime;
  }

  get bufferedSeconds() {
    const ranges = this.audio.buffered;
    return this.source === null || ranges.length === 0 ? 0 : ranges.end(ranges.length - 1);
  }

  get ended() {
    return this.source !== null && this.audio.ended;
  }

  get paused() {
    return this.audio.paused;
  }

  describe() {
    return { kind: this.kind, readyState: this.audio.readyState };
  }
}
