// The voice picker and the words around it. It shows the voices of each TTS backend, the one
// that will speak first (`ready.data.tts`), and follows a fallback chain: when another backend
// speaks (`backend` event), the page says which, and why, instead of leaving a voice selected
// that is no longer the one heard.

const KEY = "voicechat.voice";

function stored() {
  try {
    return localStorage.getItem(KEY) || "";
  } catch {
    return "";
  }
}

/** The backend owning `voice` in `backends` ({backend: [voices]}), or null. */
export function ownerOf(backends, voice) {
  for (const [backend, voices] of Object.entries(backends)) {
    if (voices.includes(voice)) return backend;
  }
  return null;
}

function backendsOf(server) {
  // A server from before `ready.data.backends`: one list, said to be the speaker's.
  return server.backends || { [server.tts]: server.voices };
}

/** Fill `select` with a "default" entry and the voices grouped by backend. The voice kept
 * from earlier is preselected only when the backend speaking now owns it: an online voice
 * (edge's) is not preselected while an offline chain speaks with piper. */
export function fillVoices(select, server, speaking) {
  if (server === null) return;
  const backends = backendsOf(server);
  const wanted = select.value || stored();
  const groups = Object.entries(backends).map(([backend, voices]) => {
    const group = document.createElement("optgroup");
    group.label = backend === speaking ? `${backend} (speaking)` : backend;
    group.append(...voices.map((v) => new Option(v, v)));
    return group;
  });
  select.replaceChildren(new Option(`default (${speaking})`, ""), ...groups);
  select.value = ownerOf(backends, wanted) === speaking ? wanted : "";
}

/** The line beside the picker: who speaks, in which voice, and why (after a switch). A voice
 * picks the backend that owns it, unless that one comes before the speaking one in the chain
 * (it is cooling down after a failure): then the speaking one goes on in its own voice. */
export function speakingText(chat, voiceOff, voice, reason) {
  if (voiceOff) return "voice off: answers come as text only";
  if (chat.server === null) return "";
  const backends = backendsOf(chat.server);
  const order = Object.keys(backends);
  const owner = voice ? ownerOf(backends, voice) : null;
  let who = `${chat.tts} speaks in its default voice`;
  if (owner === chat.tts || (owner !== null && order.indexOf(owner) > order.indexOf(chat.tts))) {
    who = `${owner} speaks in ${voice}`;
  } else if (owner !== null) {
    who += `: ${voice} is ${owner}'s, and ${owner} cannot speak now`;
  }
  return reason ? `${who} (${reason})` : who;
}

/** What the page says when the server answers from recordings (`ready.data.llm` "replay"). */
export function replayNotice() {
  return (
    "Replay mode: answers are recordings, the same whatever you ask. For real answers, " +
    "restart the server with an OpenAI key (OPENAI_API_KEY=sk-… make serve) or with an " +
    "OpenAI-compatible server such as Ollama " +
    "(voicechat serve --openai-base-url http://127.0.0.1:11434/v1 --llm-model llama3.2)."
  );
}
