// The hook's types, used as a component would (compiled, never run; see usage.ts).
import { useVoiceChat } from "voicechat-client/react";
import type { TurnSnapshot } from "voicechat-client/react";

export function useAnswer(): string {
  const voice = useVoiceChat({ url: "/ws" });
  const last: TurnSnapshot | undefined = voice.turns[voice.turns.length - 1];
  if (voice.isReady && last === undefined) voice.start("Hello", { audio: false });
  if (voice.paused) voice.resume();
  else if (voice.turn?.state === "speaking") voice.pause();
  voice.chat.on("done", ({ audioMs }) => console.log(audioMs));
  return `${voice.status} ${voice.firstSoundMs ?? "–"} ${last?.sentence ?? ""}`;
}
