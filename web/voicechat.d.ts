// Types of voicechat.js, written by hand (the module itself needs no build step).
// Checked by tests/test_web_types.py: `tsc --noEmit` over web/types-check/.

/** What `ready` said. */
export interface ServerInfo {
  session: string;
  llm: string;
  /** The TTS backend that speaks next (with a fallback chain, its first healthy one). */
  tts: string;
  /** Every voice of every backend. */
  voices: string[];
  /** Each backend's voices, in the chain's order (older servers: absent). */
  backends?: Record<string, string[]>;
  sampleRate: number | null;
  resumed: boolean;
}

export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "closed";

export interface ConnectionStatus {
  state: ConnectionState;
  attempt: number;
  /** While reconnecting: the wait before the next attempt. */
  delayMs?: number;
  /** While reconnecting: performance.now() of the next attempt. */
  retryAt?: number;
  /** While reconnecting: why (null while it is being found out). */
  reason?: "dropped" | "unreachable" | "refused" | null;
}

export type TurnState = "waiting" | "speaking" | "done" | "stopped" | "lost";

/** The current turn, as the client keeps it (read it; VoiceChat changes it). */
export interface Turn {
  readonly id: string;
  readonly prompt: string;
  /** false: a text-only turn. */
  readonly audio: boolean;
  readonly state: TurnState;
  readonly paused: boolean;
  /** The LLM's text so far. */
  readonly text: string;
  /** Sentence index → its spoken text. */
  readonly sentences: ReadonlyMap<number, string>;
  /** The sentence being heard: null before the first, Infinity once all were heard. */
  readonly hearing: number | null;
  readonly firstSoundMs: number | null;
  readonly audioMs: number | null;
  /** Why it was cut off, or the last error the server reported for it. */
  readonly error: string | null;
  /** `done` came: no more frames will. */
  readonly serverDone: boolean;
  /** The connection dropped; a reconnect resumes the turn. */
  readonly interrupted: boolean;
  readonly lastPlayed: number;
}

export interface TextEvent {
  turn: string;
  delta: string;
  /** The turn's text so far (the delta alone for another turn than the current one). */
  text: string;
}

export interface SentenceEvent {
  turn: string;
  index: number;
  text: string;
}

export interface AudioEvent {
  turn: string;
  sentence: number;
  seq: number;
  bytes: Uint8Array;
  seconds: number;
}

export interface PlayedEvent {
  turn: string;
  /** Every frame up to this one has been played (and the server was told). */
  seq: number;
  sentence: number | null;
  /** The turn has played to its end. */
  ended: boolean;
}

export interface ControlEvent {
  /** null when nothing was playing. */
  turn: string | null;
}

export interface StoppedEvent extends ControlEvent {
  spoken: string;
  heard: string;
}

export interface DoneEvent {
  turn: string;
  text: string;
  sentences: number;
  audioMs: number;
}

export interface ErrorEvent {
  code: string;
  message: string;
  /** null: not about a turn (a refused start, a rate limit, ...). */
  turn: string | null;
  [extra: string]: unknown;
}

export interface BackendEvent {
  turn: string;
  tts: string;
  reason: string;
}

export interface VoiceChatEvents {
  ready: ServerInfo;
  status: ConnectionStatus;
  text: TextEvent;
  sentence: SentenceEvent;
  audio: AudioEvent;
  played: PlayedEvent;
  paused: ControlEvent;
  resumed: ControlEvent;
  stopped: StoppedEvent;
  done: DoneEvent;
  error: ErrorEvent;
  backend: BackendEvent;
  /** Some state a UI shows changed (no detail). */
  change: undefined;
}

export type PlayerKind = "mse" | "managed-mse" | "webaudio";

export interface Player {
  readonly kind: PlayerKind;
  readonly position: number;
  readonly bufferedSeconds: number;
  readonly ended: boolean;
  readonly paused: boolean;
  readonly needsUnlock: boolean;
  describe(): Record<string, unknown>;
}

export interface VoiceChatOptions {
  /** The server's /ws (relative to the page; http(s) URLs become ws(s)). Default "/ws". */
  url?: string;
  /** The server's shared secret, sent as `?token=`. */
  token?: string | null;
  /** Force a player; default: MediaSource where it plays `audio/mpeg`, else Web Audio. */
  player?: "mse" | "webaudio" | null;
  /** The <audio> element the MediaSource player uses (default: a new one). */
  audioElement?: HTMLAudioElement | null;
  /** Asked when a handshake fails, to tell "refused" from "unreachable"; null: never. */
  healthUrl?: string | null;
  /** false: stay disconnected after a drop. Default true. */
  reconnect?: boolean;
  /** The prefix of the turn ids this client makes. */
  pageId?: string;
}

export interface StartOptions {
  voice?: string | null;
  id?: string | null;
  /** false: a text-only turn (no synthesis, no audio). Default true. */
  audio?: boolean;
}

export class VoiceChat {
  constructor(options?: VoiceChatOptions);
  readonly url: string;
  readonly player: Player;
  readonly session: { readonly id: string | null; readonly resumes: number };
  readonly server: ServerInfo | null;
  /** The TTS backend speaking now. */
  readonly tts: string | null;
  readonly status: ConnectionStatus;
  readonly turn: Turn | null;
  /** Audio frames of other turns, thrown away. */
  readonly dropped: number;
  readonly isReady: boolean;
  readonly needsUnlock: boolean;
  readonly paused: boolean;

  on<K extends keyof VoiceChatEvents>(
    name: K,
    listener: (detail: VoiceChatEvents[K]) => void,
  ): () => void;
  connect(): Promise<ServerInfo>;
  retryNow(): void;
  close(): void;
  /** The turn's id, or null when not connected (or the prompt is empty). */
  start(prompt: string, options?: StartOptions): string | null;
  pause(): void;
  resume(): void;
  stop(): void;
  unlock(): void;
}

export function backoffDelay(attempt: number, random?: () => number): number;
export function socketAddress(
  url: string,
  token: string | null,
  query?: Record<string, string>,
): string;
