// The React example: a text box, Start / Pause / Resume / Stop, and the turns with the sentence
// being heard. Built by esbuild (see docs/clients.md): web/react/example/index.html loads the
// bundle, example.js.
import { useState } from "react";
import { createRoot } from "react-dom/client";
import { useVoiceChat } from "../useVoiceChat.js";

function Turn({ turn }) {
  return (
    <li className="turn" data-turn={turn.id} data-state={turn.state}>
      <p className="prompt">{turn.prompt}</p>
      <p className="text">{turn.text}</p>
      <p className="hearing">{turn.sentence ?? ""}</p>
    </li>
  );
}

function App() {
  const voice = useVoiceChat({ url: "/ws" });
  const [prompt, setPrompt] = useState("");
  window.example = voice; // for the tests and the curious
  const ask = (event) => {
    event.preventDefault();
    if (voice.start(prompt.trim()) !== null) setPrompt("");
  };
  return (
    <main>
      <p id="status" data-state={voice.status}>{voice.status}</p>
      <form onSubmit={ask}>
        <input id="prompt" value={prompt} onChange={(e) => setPrompt(e.target.value)} />
        <button id="start" type="submit" disabled={!voice.isReady}>Start</button>
        <button id="pause" type="button" onClick={voice.pause} disabled={voice.paused}>Pause</button>
        <button id="resume" type="button" onClick={voice.resume} disabled={!voice.paused}>Resume</button>
        <button id="stop" type="button" onClick={voice.stop}>Stop</button>
      </form>
      <p id="first-sound">{voice.firstSoundMs === null ? "–" : `${voice.firstSoundMs} ms`}</p>
      <ol id="turns">
        {voice.turns.map((turn) => <Turn key={turn.id} turn={turn} />)}
      </ol>
    </main>
  );
}

createRoot(document.getElementById("root")).render(<App />);
