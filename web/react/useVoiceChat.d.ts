// Types of useVoiceChat.js (hand-written; checked by tests/test_web_types.py).
import type {
  ConnectionState,
  ServerInfo,
  StartOptions,
  TurnState,
  VoiceChat,
  VoiceChatOptions,
} from "../voicechat.js";

export interface TurnSnapshot {
  id: string;
  prompt: string;
  audio: boolean;
  state: TurnState;
  paused: boolean;
  text: string;
  sentences: { index: number; text: string }[];
  /** The index of the sentence being heard: null before the first, Infinity after the last. */
  hearing: number | null;
  /** The text of the sentence being heard. */
  sentence: string | null;
  firstSoundMs: number | null;
  audioMs: number | null;
  error: string | null;
  interrupted: boolean;
}

export interface VoiceChatState {
  status: ConnectionState;
  reason: "dropped" | "unreachable" | "refused" | null;
  server: ServerInfo | null;
  tts: string | null;
  /** Every turn of the session (the last 50), the current one last. */
  turns: TurnSnapshot[];
  turn: TurnSnapshot | null;
  paused: boolean;
  firstSoundMs: number | null;
  needsUnlock: boolean;
  isReady: boolean;
}

export interface VoiceChatHook extends VoiceChatState {
  start(prompt: string, options?: StartOptions): string | null;
  pause(): void;
  resume(): void;
  stop(): void;
  unlock(): void;
  chat: VoiceChat;
}

export function useVoiceChat(options?: VoiceChatOptions): VoiceChatHook;
