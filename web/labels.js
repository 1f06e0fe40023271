// The words the page shows for the connection (the status pill) and for a turn (its facts line).

/** `status` as Connection reports it; `now` is performance.now(). */
export function statusText(status, now) {
  if (status.state === "connected") return "connected";
  if (status.state === "idle") return "not connected";
  if (status.state === "closed") return "closed";
  if (status.state === "connecting") return status.attempt ? "reconnecting…" : "connecting…";
  const seconds = Math.max(0, (status.retryAt - now) / 1000);
  const retry = `retrying in ${seconds.toFixed(1)} s (attempt ${status.attempt})`;
  if (status.reason === "dropped") return `connection lost · ${retry}`;
  // A browser does not say why a handshake failed; the server is up, so it refused (401/403).
  if (status.reason === "refused") return `cannot connect: refused (token?) · ${retry}`;
  return `cannot connect · ${retry}`;
}

const STATES = { waiting: "waiting for the answer…", stopped: "stopped" };

/** The facts line of turn `t` (a VoiceChat turn). The time to first sound is not here: the
 * page shows it once, in its footer. */
export function turnMeta(t) {
  const parts = [];
  if (!t.audio) parts.push("text only");
  else if (t.audioMs !== null) parts.push(`${(t.audioMs / 1000).toFixed(1)} s of audio`);
  if (t.interrupted) parts.push("connection lost · resuming…");
  if (t.paused) parts.push("paused");
  else if (STATES[t.state]) parts.push(STATES[t.state]);
  if (t.error) parts.push(t.error);
  return parts.join(" · ");
}
