// Where the page connects: `/ws` on the host that served it, with the server's shared secret
// when it has one. A browser cannot set headers on a WebSocket, so the secret travels in the
// URL: the page is opened as `/?token=SECRET` and passes it on as `/ws?token=SECRET`.
//
// The token is taken out of the address bar at once (kept in sessionStorage, so a reload in
// this tab still has it): it is then not shown, not copied along with the link, and not sent
// as `Referer`. The page never writes it anywhere else.

const KEY = "voicechat.token";

function stored() {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null; // storage disabled (some private modes)
  }
}

function store(token) {
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    // without storage, a reload needs the token in the URL again
  }
}

/** The token from this page's `?token=` (which is then removed), else the one kept earlier. */
export function takeToken() {
  const address = new URL(location.href);
  const token = address.searchParams.get("token");
  if (token === null) return stored();
  store(token);
  address.searchParams.delete("token");
  history.replaceState(history.state, "", address);
  return token;
}

/** The URL of one connection attempt; `query` holds the resume parameters, if any. */
export function socketUrl(token, query = {}) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const params = new URLSearchParams(query);
  if (token) params.set("token", token);
  const search = params.toString();
  return `${scheme}//${location.host}/ws${search ? `?${search}` : ""}`;
}
