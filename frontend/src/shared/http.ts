// Headers for requests a page makes on its own (polling, live refresh), not on the user's
// behalf: the portal does not count them as activity, so an open tab does not keep a signed-in
// session from timing out (portal/session_timeout.py).
export const BACKGROUND_HEADERS: Record<string, string> = { "X-Ephemera-Background": "1" };
