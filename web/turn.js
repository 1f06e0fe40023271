// One turn as the page sees it: its audio on a timeline, its view in the transcript, and how
// far it got. The page keeps only the current one; app.js moves it through its states.

import { Timeline } from "./timeline.js";

export function createTurn(id, view) {
  return {
    id,
    view,
    timeline: new Timeline(),
    startedAt: performance.now(),
    state: "waiting", // waiting → speaking → done | stopped | lost (cut off)
    paused: false,
    serverDone: false, // `done` came: no more frames will
    interrupted: false, // the connection dropped; a reconnect resumes the turn
    syncing: false, // waiting for the `stopped` that ends a resume's replay (app.js)
    captionMark: 0, // caption length when the last audio frame came: a resume replays from there
    firstSoundMs: null,
    audioMs: null,
    lastPlayed: -1,
    lastPlayedAt: 0,
    error: null,
  };
}

export const isLive = (t) => t !== null && (t.state === "waiting" || t.state === "speaking");

/** Live, and the server still owes it messages. */
export const isUnfinished = (t) => isLive(t) && !t.serverDone;

/** A plain snapshot, for `window.voicechat.state()`. */
export function describeTurn(t) {
  return {
    id: t.id,
    state: t.state,
    paused: t.paused,
    serverDone: t.serverDone,
    interrupted: t.interrupted,
    firstSoundMs: t.firstSoundMs,
    audioMs: t.audioMs,
    duration: t.timeline.duration,
    frames: t.timeline.frameEnds.length,
    lastSeq: t.timeline.lastSeq,
    lastPlayed: t.lastPlayed,
    highlighted: t.view.current,
    caption: t.view.caption.textContent,
  };
}
