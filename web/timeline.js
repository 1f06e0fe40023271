// One turn's audio on a single time axis: where each frame ends and where each sentence starts,
// computed from the MP3 frame headers as the frames arrive. The players report a position on
// this axis; the page turns it into "frame n was heard" and "sentence i is being heard".

import { durationOf } from "./mp3.js";

const EPSILON = 0.001; // seconds; a frame counts as played when the position reaches its end

export class Timeline {
  constructor() {
    this.frameEnds = []; // [{seq, end}] in arrival (= seq) order
    this.sentenceStarts = []; // [{index, start}] in order
    this.duration = 0;
  }

  /** Record one `audio` message of the turn; returns its playing time in seconds. */
  add(seq, sentence, bytes) {
    const last = this.sentenceStarts[this.sentenceStarts.length - 1];
    if (last === undefined || last.index !== sentence) {
      this.sentenceStarts.push({ index: sentence, start: this.duration });
    }
    const seconds = durationOf(bytes);
    this.duration += seconds;
    this.frameEnds.push({ seq, end: this.duration });
    return seconds;
  }

  get lastSeq() {
    const last = this.frameEnds[this.frameEnds.length - 1];
    return last === undefined ? -1 : last.seq;
  }

  /** The highest `seq` whose audio has fully played at `position`, or -1. */
  playedSeq(position) {
    let lo = 0;
    let hi = this.frameEnds.length; // first index whose end is beyond position
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.frameEnds[mid].end <= position + EPSILON) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? -1 : this.frameEnds[lo - 1].seq;
  }

  /** The index of the sentence being heard at `position`, or null before the first. */
  sentenceAt(position) {
    let found = null;
    for (const { index, start } of this.sentenceStarts) {
      if (start <= position + EPSILON) found = index;
      else break;
    }
    return found;
  }
}
