// useVoiceChat: a React hook over VoiceChat (../voicechat.js). React is a peer dependency; this
// file is plain JavaScript (no JSX), so it runs unbundled too where "react" resolves.
//
//   const voice = useVoiceChat({ url: "/ws" });
//   voice.start("Hello");            // in a click handler: it unlocks the audio
//   voice.turns.map((t) => t.text);  // every turn of the session, the current one last
//
// The hook makes one VoiceChat per component, connects it on mount and closes it on unmount
// (StrictMode's mount, unmount, mount included). Its options are read once.

import { useCallback, useEffect, useRef, useState } from "react";
import { VoiceChat } from "../voicechat.js";

const MAX_TURNS = 50;

function describeTurn(turn) {
  const sentences = Array.from(turn.sentences, ([index, text]) => ({ index, text }));
  const heard = sentences.find((s) => s.index === turn.hearing);
  return {
    id: turn.id,
    prompt: turn.prompt,
    audio: turn.audio,
    state: turn.state,
    paused: turn.paused,
    text: turn.text,
    sentences,
    hearing: turn.hearing,
    sentence: heard === undefined ? null : heard.text, // the sentence being heard
    firstSoundMs: turn.firstSoundMs,
    audioMs: turn.audioMs,
    error: turn.error,
    interrupted: turn.interrupted,
  };
}

function snapshot(chat, turns) {
  const current = chat.turn === null ? null : describeTurn(chat.turn);
  return {
    status: chat.status.state,
    reason: chat.status.reason || null,
    server: chat.server,
    tts: chat.tts,
    turns: turns.map((t) => (t === chat.turn ? current : describeTurn(t))),
    turn: current,
    paused: chat.paused,
    firstSoundMs: current === null ? null : current.firstSoundMs,
    needsUnlock: chat.needsUnlock,
    isReady: chat.isReady,
  };
}

/** State: status, server, tts, turns, turn (the current one), paused, firstSoundMs,
 * needsUnlock, isReady. Actions: start(prompt, options), pause, resume, stop, unlock. Also
 * `chat`, the VoiceChat itself (for its events: chat.on(...)). */
export function useVoiceChat(options = {}) {
  const chatRef = useRef(null);
  if (chatRef.current === null) chatRef.current = new VoiceChat(options);
  const chat = chatRef.current;
  const turnsRef = useRef([]);
  const [state, setState] = useState(() => snapshot(chat, turnsRef.current));

  useEffect(() => {
    const update = () => {
      const turns = turnsRef.current;
      if (chat.turn !== null && !turns.includes(chat.turn)) {
        turnsRef.current = [...turns, chat.turn].slice(-MAX_TURNS);
      }
      setState(snapshot(chat, turnsRef.current));
    };
    const off = chat.on("change", update);
    chat.connect();
    update();
    return () => {
      off();
      chat.close();
    };
  }, [chat]);

  const start = useCallback((prompt, startOptions) => chat.start(prompt, startOptions), [chat]);
  const pause = useCallback(() => chat.pause(), [chat]);
  const resume = useCallback(() => chat.resume(), [chat]);
  const stop = useCallback(() => chat.stop(), [chat]);
  const unlock = useCallback(() => chat.unlock(), [chat]);
  return { ...state, start, pause, resume, stop, unlock, chat };
}
