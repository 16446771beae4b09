// The approvals queue, live: a websocket tells us a request changed, and we re-fetch the
// server-rendered pending list (so who may decide what stays decided on the server).

import { clearFlash } from "./shared/flash";
import { BACKGROUND_HEADERS } from "./shared/http";

const list = document.getElementById("pending-list") as HTMLElement | null;
const state = document.getElementById("live-state") as HTMLElement | null;

function setState(name: "connecting" | "live" | "offline" | "forbidden", text: string): void {
  if (!state) return;
  state.dataset.state = name;
  state.textContent = text;
}

// Keep what an approver is typing: a refresh must not wipe a half-written comment.
function typedComments(root: HTMLElement): Map<string, string> {
  const kept = new Map<string, string>();
  root.querySelectorAll<HTMLTextAreaElement>("textarea[id]").forEach((t) => {
    if (t.value) kept.set(t.id, t.value);
  });
  return kept;
}

// What the queue shows, as one comparable string: its requests and extensions, in order.
function shownItems(root: HTMLElement): string {
  return Array.from(
    root.querySelectorAll<HTMLElement>("[data-request-id], [data-extension-id]"),
    (el) => el.dataset.requestId ?? `ext:${el.dataset.extensionId}`,
  ).join(",");
}

let refreshing: Promise<void> | null = null;
let again = false;

async function refresh(root: HTMLElement): Promise<void> {
  // Coalesce bursts of events into at most one fetch in flight plus one after it.
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      const res = await fetch(root.dataset.fragmentUrl ?? "/approvals/pending", {
        credentials: "same-origin",
        headers: BACKGROUND_HEADERS,
      });
      if (!res.ok) {
        setState("offline", res.status === 403 ? "You are no longer an approver" : "Update failed, retrying…");
        return;
      }
      const html = await res.text();
      const before = new Set(Array.from(root.querySelectorAll<HTMLElement>("[data-request-id]"), (el) => el.dataset.requestId));
      const shownBefore = shownItems(root);
      const kept = typedComments(root);
      const focused = document.activeElement?.id ?? "";
      root.innerHTML = html;
      kept.forEach((value, id) => {
        const t = document.getElementById(id) as HTMLTextAreaElement | null;
        if (t) t.value = value;
      });
      if (focused) document.getElementById(focused)?.focus();
      root.querySelectorAll<HTMLElement>("[data-request-id]").forEach((el) => {
        if (!before.has(el.dataset.requestId)) el.classList.add("is-new");
      });
      // The queue moved on since the page was drawn: its flash message ("You approved the
      // request of alice.") is about an older state and would sit above newer items.
      if (shownItems(root) !== shownBefore) clearFlash();
      root.dispatchEvent(new CustomEvent("ephemera:fragment", { bubbles: true }));
    } while (again);
  })().finally(() => {
    refreshing = null;
    recheckOpenSessions(root);
  });
  return refreshing;
}

// "alice already has a debug session running on this pod" can go stale without any event on
// this websocket: sessions starting and ending are announced to their own session's group, not
// to the queue's. While the queue shows such a cue, read it again now and then.
const OPEN_SESSION_RECHECK_MS = 10000;
let recheck = 0;

function recheckOpenSessions(root: HTMLElement): void {
  window.clearTimeout(recheck);
  if (root.querySelector("[data-open-sessions]")) recheck = window.setTimeout(() => void refresh(root), OPEN_SESSION_RECHECK_MS);
}

function connect(root: HTMLElement, attempt = 0): void {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}${root.dataset.wsPath ?? "/ws/approvals"}`);
  let opened = false;
  ws.addEventListener("open", () => {
    opened = true;
    setState("live", "Live");
    // Whatever changed while we were away: catch up once.
    if (attempt > 0) void refresh(root);
  });
  ws.addEventListener("message", (ev) => {
    try {
      const msg = JSON.parse(String(ev.data)) as { type?: string };
      if (msg.type === "request.changed") void refresh(root);
    } catch {
      /* not ours: ignore */
    }
  });
  ws.addEventListener("close", (ev) => {
    if (ev.code === 4403) {
      setState("forbidden", "Live updates are for approvers only");
      return;
    }
    setState("offline", "Offline, reconnecting…");
    const delay = Math.min(30000, 1000 * 2 ** Math.min(attempt, 5));
    window.setTimeout(() => connect(root, opened ? 1 : attempt + 1), delay);
  });
}

if (list) {
  connect(list);
  recheckOpenSessions(list);
}
