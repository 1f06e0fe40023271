// The Web Audio path, for browsers without `audio/mpeg` MediaSource (Firefox, older iOS).
//
// The frames of one sentence are one MP3 stream (each sentence is encoded on its own), so they
// are decoded per sentence and the decoded buffers are scheduled back to back at a running
// `nextStart` on one AudioContext: no gap and no click between them. A sentence that is still
// arriving while the schedule runs low is decoded in parts; each later part is decoded together
// with the PREROLL frames before it (the MP3 bit reservoir and the decoder's overlap need them)
// and only its own samples are kept, so the parts join as if decoded in one piece.
//
// The context is made at the stream's sample rate (from `ready`) so decoding does not resample.

import { concatBytes, splitFrames } from "./mp3.js";

const LEAD = 0.05; // seconds between "now" and the first start: room for the main thread's jitter
const LOW_WATER = 0.35; // decode what has arrived once less than this is scheduled ahead
const PREROLL = 4; // frames decoded before a cut and thrown away
const TICK_MS = 100;

function noop() {}

function decodeAudio(ctx, bytes) {
  // The callback form works in old Safari too; newer browsers also return a promise.
  return new Promise((resolve, reject) => {
    ctx.decodeAudioData(bytes.buffer, resolve, reject);
  });
}

export class WebAudioPlayer {
  constructor() {
    this.kind = "webaudio";
    this.ctx = null;
    this.sampleRate = null;
    this.userPaused = false;
    this.turn = null;
    this.generation = 0;
    this.onfirstsound = noop;
    this.onended = noop;
    this.onchange = noop;
  }

  configure({ sampleRate }) {
    this.sampleRate = sampleRate || null;
  }

  /** Create or resume the AudioContext; must run inside the click (or key) handler. */
  unlock() {
    if (this.ctx === null) {
      const AudioContextClass = window.AudioContext || window.webkitAudioContext;
      const options = { latencyHint: "interactive" };
      try {
        this.ctx = new AudioContextClass(
          this.sampleRate ? { ...options, sampleRate: this.sampleRate } : options,
        );
      } catch {
        this.ctx = new AudioContextClass(); // this browser cannot run a context at that rate
      }
      this.ctx.addEventListener("statechange", () => this.onchange());
    }
    if (!this.userPaused) this.ctx.resume();
    // iOS opens the output only once something starts inside the gesture: one silent sample.
    const silence = this.ctx.createBufferSource();
    silence.buffer = this.ctx.createBuffer(1, 1, this.ctx.sampleRate);
    silence.connect(this.ctx.destination);
    silence.start();
  }

  get needsUnlock() {
    return this.ctx !== null && this.ctx.state !== "running" && !this.userPaused;
  }

  begin() {
    this.stop();
    if (this.ctx === null) this.unlock();
    this.turn = {
      generation: (this.generation += 1),
      group: null, // {sentence, frames, decoded}: the sentence whose frames are arriving
      chain: Promise.resolve(), // decoded parts are scheduled in this order
      pending: 0, // decodes not yet scheduled
      decodingSeconds: 0, // their playing time: counts as scheduled ahead
      finished: false,
      segments: [], // [{at, media, duration, buffer}] as scheduled
      nextStart: 0, // context time where the next part starts
      mediaEnd: 0, // seconds of the turn's audio scheduled so far
      sources: new Set(),
      heard: false,
      ended: false,
      gaps: 0, // parts that had to start later than nextStart (the schedule ran dry)
      errors: 0,
      timer: setInterval(() => this.tick(), TICK_MS),
    };
  }

  append(bytes, sentence) {
    const turn = this.turn;
    if (turn === null) return;
    if (turn.group !== null && turn.group.sentence !== sentence) this.decode(turn);
    if (turn.group === null || turn.group.sentence !== sentence) {
      turn.group = { sentence, frames: [], decoded: 0 };
    }
    turn.group.frames.push(...splitFrames(bytes));
    this.tick();
  }

  finish() {
    const turn = this.turn;
    if (turn === null) return;
    turn.finished = true;
    this.decode(turn);
    this.checkEnded(turn);
  }

  tick() {
    const turn = this.turn;
    if (turn === null || this.userPaused) return;
    const ahead = Math.max(0, turn.nextStart - this.ctx.currentTime) + turn.decodingSeconds;
    if (ahead < LOW_WATER) this.decode(turn);
    const position = this.position;
    if (!turn.heard && position > 0) {
      turn.heard = true;
      this.onfirstsound(performance.now() - position * 1000);
    }
    this.checkEnded(turn);
  }

  decode(turn) {
    const group = turn.group;
    if (group === null || group.decoded === group.frames.length) return;
    const from = group.decoded;
    const to = group.frames.length;
    group.decoded = to;
    const pre = Math.min(PREROLL, from);
    const frames = group.frames.slice(from - pre, to);
    const ownSeconds = group.frames.slice(from, to).reduce((s, f) => s + f.samples / f.sampleRate, 0);
    const decoding = decodeAudio(this.ctx, concatBytes(frames.map((f) => f.bytes)));
    turn.pending += 1;
    turn.decodingSeconds += ownSeconds;
    turn.chain = turn.chain
      .then(() => decoding)
      .then(
        (buffer) => {
          if (this.turn !== turn) return; // stopped or superseded meanwhile
          const keep = pre === 0 ? buffer.length : Math.round(ownSeconds * buffer.sampleRate);
          this.schedule(turn, this.tail(buffer, keep));
        },
        (error) => {
          turn.errors += 1;
          console.warn("voicechat: could not decode audio", error);
        },
      )
      .finally(() => {
        turn.pending -= 1;
        turn.decodingSeconds -= ownSeconds;
        this.checkEnded(turn);
      });
  }

  tail(buffer, keep) {
    if (keep >= buffer.length) return buffer;
    const out = this.ctx.createBuffer(buffer.numberOfChannels, keep, buffer.sampleRate);
    for (let channel = 0; channel < buffer.numberOfChannels; channel += 1) {
      out.copyToChannel(buffer.getChannelData(channel).subarray(buffer.length - keep), channel);
    }
    return out;
  }

  schedule(turn, buffer) {
    const ctx = this.ctx;
    const at = Math.max(turn.nextStart, ctx.currentTime + LEAD);
    if (turn.segments.length > 0 && at > turn.nextStart + 1e-6) turn.gaps += 1;
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(ctx.destination);
    source.onended = () => {
      turn.sources.delete(source);
      this.checkEnded(turn);
    };
    source.start(at);
    turn.sources.add(source);
    turn.segments.push({ at, media: turn.mediaEnd, duration: buffer.duration, buffer });
    turn.nextStart = at + buffer.duration;
    turn.mediaEnd += buffer.duration;
  }

  checkEnded(turn) {
    if (this.turn !== turn || turn.ended || !turn.finished || turn.pending > 0) return;
    if (turn.sources.size > 0 || (turn.group !== null && turn.group.decoded < turn.group.frames.length)) {
      return;
    }
    turn.ended = true;
    clearInterval(turn.timer);
    this.onended();
  }

  pause() {
    this.userPaused = true;
    if (this.ctx !== null) this.ctx.suspend(); // the whole schedule holds still, at once
  }

  resume() {
    this.userPaused = false;
    if (this.ctx !== null) this.ctx.resume();
  }

  stop() {
    const turn = this.turn;
    this.turn = null;
    if (turn !== null) {
      clearInterval(turn.timer);
      for (const source of turn.sources) {
        source.onended = null;
        source.stop();
        source.disconnect();
      }
      turn.sources.clear();
    }
    if (this.userPaused) this.resume(); // nothing left to hold; the next turn starts running
  }

  /** Seconds of this turn's audio played so far. */
  get position() {
    const turn = this.turn;
    if (turn === null || this.ctx === null) return 0;
    const now = this.ctx.currentTime;
    let position = 0;
    for (const segment of turn.segments) {
      if (segment.at > now) break;
      position = segment.media + Math.min(now - segment.at, segment.duration);
    }
    return position;
  }

  get bufferedSeconds() {
    return this.turn === null ? 0 : this.turn.mediaEnd;
  }

  get ended() {
    return this.turn !== null && this.turn.ended;
  }

  get paused() {
    return this.userPaused;
  }

  describe() {
    const turn = this.turn;
    return {
      kind: this.kind,
      contextState: this.ctx === null ? null : this.ctx.state,
      sampleRate: this.ctx === null ? null : this.ctx.sampleRate,
      parts: turn === null ? 0 : turn.segments.length,
      gaps: turn === null ? 0 : turn.gaps,
      decodeErrors: turn === null ? 0 : turn.errors,
    };
  }

  /** The samples scheduled for this turn, joined (channel 0): for tests of the seams. */
  scheduledSamples() {
    const segments = this.turn === null ? [] : this.turn.segments;
    const out = new Float32Array(segments.reduce((n, s) => n + s.buffer.length, 0));
    let at = 0;
    for (const { buffer } of segments) {
      out.set(buffer.getChannelData(0), at);
      at += buffer.length;
    }
    return out;
  }
}
