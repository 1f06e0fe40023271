// Compiled (never run) by `tsc --noEmit` in tests/test_web_types.py: the published types, used
// as an app would, through the package's own name (its `exports`).
import { VoiceChat, backoffDelay } from "voicechat-client";
import type { DoneEvent, ServerInfo, Turn, TurnState } from "voicechat-client";

const chat = new VoiceChat({ url: "wss://example.org/ws", token: null, player: "webaudio" });
const off = chat.on("sentence", ({ turn, index, text }) => {
  const line: string = `${turn} ${index.toFixed(0)} ${text.trim()}`;
  console.log(line);
});
chat.on("done", (done: DoneEvent) => console.log(done.audioMs + done.sentences));
chat.on("audio", ({ bytes, seconds }) => console.log(bytes.byteLength, seconds));
chat.on("error", ({ code, message, turn }) => console.log(code, message, turn ?? "no turn"));
chat.on("status", ({ state, reason }) => console.log(state === "reconnecting", reason));
chat.on("change", () => undefined);
off();

async function ask(): Promise<string | null> {
  const server: ServerInfo = await chat.connect();
  const id = chat.start("Hello", { voice: server.voices[0] ?? null, audio: false });
  const turn: Turn | null = chat.turn;
  const state: TurnState | undefined = turn?.state;
  if (state === "speaking") chat.pause();
  chat.resume();
  chat.stop();
  chat.close();
  return id;
}

console.log(ask(), backoffDelay(3, Math.random), chat.player.kind, chat.isReady);
