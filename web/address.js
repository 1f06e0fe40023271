// The server's shared secret, when it has one. A browser cannot set headers on a WebSocket, so
// the secret travels in the URL: the page is opened as `/?token=SECRET` and VoiceChat passes it
// on as `/ws?token=SECRET`.
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
