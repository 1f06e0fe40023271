// The WebSocket to /ws, reconnected after a drop with exponential backoff and full jitter
// (a random wait up to base * 2^attempt, capped), so that many pages whose server restarted
// do not all come back at the same instant. The attempt count resets once the server says
// `ready`, not merely when the socket opens: a server that refuses the handshake (401 without
// the token, 403 from a foreign page) is retried ever more slowly, never in a tight loop.
//
// A browser does not tell a page why a handshake failed. When it fails, `/healthz` (which
// needs no token) tells "the server is up and refused us" from "the server is unreachable".

const BASE_MS = 500;
const CAP_MS = 15000;
const MIN_MS = 250;

function noop() {}

export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(CAP_MS, BASE_MS * 2 ** attempt);
  return Math.max(MIN_MS, Math.round(random() * ceiling));
}

export class Connection {
  /**
   * `url()` gives the URL of each attempt (it may change between attempts: resume tokens).
   * onstatus({state, attempt, delayMs, retryAt, reason}); state: connecting | connected |
   * reconnecting | closed; reason (while reconnecting): dropped | unreachable | refused | null (probing).
   */
  constructor(url, { healthUrl = null, onmessage = noop, onstatus = noop, ondrop = noop } = {}) {
    this.url = url;
    this.healthUrl = healthUrl;
    this.onmessage = onmessage;
    this.onstatus = onstatus;
    this.ondrop = ondrop;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.ready = false;
    this.status = null;
    this.closed = false; // close() was called: no more attempts
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    this.closed = false;
    if (this.ws !== null) return;
    const ws = new WebSocket(this.url());
    this.ws = ws;
    this.ready = false;
    let opened = false;
    this.report({ state: "connecting", attempt: this.attempt });
    ws.addEventListener("open", () => {
      opened = true;
    });
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
        this.report({ state: "connected", attempt: 0 });
      }
      this.onmessage(message);
    });
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return;
      this.ws = null;
      const wasReady = this.ready;
      this.ready = false;
      this.ondrop(wasReady);
      if (this.closed) return;
      this.scheduleReconnect(opened ? "dropped" : null);
      if (!opened) this.probe();
    });
  }

  scheduleReconnect(reason) {
    const delayMs = backoffDelay(this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), delayMs);
    const retryAt = performance.now() + delayMs;
    this.report({ state: "reconnecting", attempt: this.attempt, delayMs, retryAt, reason });
  }

  /** The handshake failed: is the server there (then it refused us) or not? */
  probe() {
    const status = this.status;
    const settle = (reason) => {
      if (this.status === status) this.report({ ...status, reason });
    };
    if (this.healthUrl === null) {
      settle("unreachable");
      return;
    }
    fetch(this.healthUrl, { cache: "no-store" }).then(
      (response) => settle(response.ok ? "refused" : "unreachable"),
      () => settle("unreachable"),
    );
  }

  report(status) {
    this.status = status;
    this.onstatus(status);
  }

  /** Try now instead of waiting out the backoff (the user asked, or the network came back). */
  retryNow() {
    if (this.ws === null && !this.closed) this.connect();
  }

  /** Close the socket and make no more attempts. */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    if (ws !== null) ws.close(1000, "closed by the client");
    this.report({ state: "closed", attempt: this.attempt });
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
