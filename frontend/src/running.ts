// The running-sessions page (sessions/running/). The list follows the server by polling its
// server-rendered fragment every few seconds as a background request (it doesn't count as
// activity: portal/session_timeout.py), swapped in only when its version changed, so what
// someone is typing survives; who sees which session and which actions stays decided on the
// server. The countdowns run here. The actions' forms work without this script (they post to
// the session pages' own views); with it they go to the JSON API, the same services.
import "./styles/running.css";
import { clearFlash } from "./shared/flash";
import { BACKGROUND_HEADERS } from "./shared/http";

const root = document.getElementById("running") as HTMLElement | null;
const state = document.getElementById("live-state") as HTMLElement | null;
const result = document.getElementById("running-result") as HTMLElement | null;
const MAX_BACKOFF_MS = 60000;

function setState(name: "live" | "offline" | "stopped", text: string): void {
  if (!state) return;
  state.dataset.state = name;
  state.textContent = text;
}

function say(text: string, kind: "ok" | "error"): void {
  if (!result) return;
  result.textContent = text;
  result.dataset.kind = kind;
  result.hidden = !text;
}

// The server enforces the limit; this only shows it, as the session page does.
function countdowns(scope: ParentNode): void {
  scope.querySelectorAll<HTMLElement>(".countdown[data-expires-at]").forEach((el) => {
    const at = new Date(el.dataset.expiresAt ?? "").getTime();
    if (Number.isNaN(at)) return;
    const left = Math.max(0, Math.floor((at - Date.now()) / 1000));
    el.textContent = left > 0 ? `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left` : "time is up";
  });
}

// What someone has typed into the list's forms (by element id), so a refresh keeps it.
function typed(scope: HTMLElement): Map<string, string> {
  const kept = new Map<string, string>();
  scope.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>("input[id], textarea[id]").forEach((input) => {
    if (input.value !== input.defaultValue) kept.set(input.id, input.value);
  });
  return kept;
}

function currentVersion(scope: HTMLElement): string {
  return scope.querySelector<HTMLElement>("[data-version]")?.dataset.version ?? "";
}

function swapIn(scope: HTMLElement, html: string): boolean {
  const next = document.createElement("template");
  next.innerHTML = html;
  const version = next.content.querySelector<HTMLElement>("[data-version]")?.dataset.version ?? "";
  if (version && version === currentVersion(scope)) return false;
  const kept = typed(scope);
  const focused = document.activeElement instanceof HTMLInputElement ? document.activeElement : null;
  const caret = focused ? [focused.id, focused.selectionStart, focused.selectionEnd] as const : null;
  scope.replaceChildren(next.content);
  kept.forEach((value, id) => {
    const input = document.getElementById(id) as HTMLInputElement | null;
    if (input && scope.contains(input)) input.value = value;
  });
  if (caret) {
    const input = document.getElementById(caret[0]) as HTMLInputElement | null;
    if (input && scope.contains(input)) {
      input.focus();
      try {
        input.setSelectionRange(caret[1], caret[2]);
      } catch {
        /* number inputs have no selection */
      }
    }
  }
  clearFlash(); // about an older state of the list
  countdowns(scope);
  scope.dispatchEvent(new CustomEvent("ephemera:fragment", { bubbles: true })); // app.ts localizes the times
  return true;
}

let failures = 0;
let stopped = false;
let timer: number | undefined;
let inFlight: Promise<void> | null = null;

async function refresh(scope: HTMLElement): Promise<void> {
  if (inFlight) return inFlight;
  inFlight = (async () => {
    try {
      const res = await fetch(scope.dataset.listUrl ?? "list", { credentials: "same-origin", headers: BACKGROUND_HEADERS });
      // login_required answers a signed-out user with a redirect to the login page.
      if (res.redirected || res.status === 401 || res.status === 403) {
        stopped = true;
        setState("stopped", "Signed out: reload the page");
        return;
      }
      if (!res.ok && res.status !== 400) throw new Error(String(res.status));
      swapIn(scope, await res.text());
      failures = 0;
      setState("live", "Live");
    } catch {
      failures++;
      setState("offline", "Update failed, retrying…");
    }
  })().finally(() => {
    inFlight = null;
  });
  return inFlight;
}

function schedule(scope: HTMLElement): void {
  window.clearTimeout(timer);
  if (stopped) return;
  const every = Number(scope.dataset.pollSeconds || "5") * 1000;
  const delay = failures ? Math.min(MAX_BACKOFF_MS, every * 2 ** Math.min(failures, 4)) : every;
  timer = window.setTimeout(async () => {
    if (!document.hidden) await refresh(scope); // a tab nobody looks at asks nothing
    schedule(scope);
  }, delay);
}

function problems(body: unknown, status: number): string {
  if (body && typeof body === "object") {
    const parts = Object.entries(body as Record<string, unknown>).map(([, v]) => (Array.isArray(v) ? v.join(" ") : String(v)));
    if (parts.length) return parts.join(" ");
  }
  return `That did not work (${status}).`;
}

async function act(scope: HTMLElement, form: HTMLFormElement, url: string): Promise<void> {
  const body: Record<string, unknown> = {};
  new FormData(form).forEach((value, key) => {
    if (key === "csrfmiddlewaretoken" || key === "verdict") return;
    const text = String(value);
    body[key] = key === "minutes" && text.trim() !== "" && !Number.isNaN(Number(text)) ? Number(text) : text;
  });
  const csrf = form.querySelector<HTMLInputElement>("input[name=csrfmiddlewaretoken]")?.value ?? "";
  const buttons = Array.from(form.querySelectorAll<HTMLButtonElement>("button"));
  buttons.forEach((b) => (b.disabled = true));
  try {
    // The user's own action: not a background request.
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    if (res.ok) {
      form.reset(); // what was typed is done with: the refresh must not put it back
      say(form.dataset.done ?? "Done.", "ok");
      await refresh(scope);
    } else {
      say(problems(await res.json().catch(() => null), res.status), "error");
    }
  } catch {
    say("The portal could not be reached; nothing was sent.", "error");
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

if (root) {
  // On the list's root, so forms swapped in later are handled too.
  root.addEventListener("submit", (ev) => {
    const form = ev.target as HTMLFormElement;
    if (!form.classList.contains("running-form")) return;
    const verdict = (ev.submitter as HTMLButtonElement | null)?.value;
    const url = form.dataset.apiUrl ?? (verdict === "deny" ? form.dataset.apiUrlDeny : form.dataset.apiUrlApprove);
    if (!url) return; // the form's own post
    ev.preventDefault();
    void act(root, form, url);
  });
  countdowns(root);
  window.setInterval(() => countdowns(root), 1000);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !stopped) void refresh(root);
  });
  setState("live", "Live");
  schedule(root);
}
