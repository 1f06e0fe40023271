// The WebSocket to /ws, reconnected after a drop with exponential backoff and full jitter
// (a random wait up to base * 2^attempt, capped), so that many pages whose server restarted
// do not all come back at the same instant. The attempt count resets once the server says
// `ready`, not merely when the socket opens.

const BASE_MS = 500;
const CAP_MS = 15000;
const MIN_MS = 250;

function noop() {}

export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(CAP_MS, BASE_MS * 2 ** attempt);
  return Math.max(MIN_MS, Math.round(random() * ceiling));
}

export class Connection {
  /** onstatus({state, attempt, delayMs, retryAt}); state: connecting | connected | reconnecting. */
  constructor(url, { onmessage = noop, onstatus = noop, ondrop = noop } = {}) {
    this.url = url;
    this.onmessage = onmessage;
    this.onstatus = onstatus;
    this.ondrop = ondrop;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.ready = false;
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws !== null) return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    this.ready = false;
    this.onstatus({ state: "connecting", attempt: this.attempt });
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return; // the server only sends JSON; ignore anything else
      }
      if (message.action === "ready") {
        this.ready = true;
        this.attempt = 0;
        this.onstatus({ state: "connected", attempt: 0 });
      }
      this.onmessage(message);
    });
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return;
      this.ws = null;
      const wasReady = this.ready;
      this.ready = false;
      this.ondrop(wasReady);
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    const delayMs = backoffDelay(this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), delayMs);
    this.onstatus({
      state: "reconnecting",
      attempt: this.attempt,
      delayMs,
      retryAt: performance.now() + delayMs,
    });
  }

  /** Try now instead of waiting out the backoff (the user asked, or the network came back). */
  retryNow() {
    if (this.ws === null) this.connect();
  }

  get isReady() {
    return this.ws !== null && this.ready && this.ws.readyState === WebSocket.OPEN;
  }

  send(message) {
    if (!this.isReady) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }
}
