// Loaded on every page (portal/base.html): the stylesheet, and small progressive enhancements.
import "./styles/app.css";
import { BACKGROUND_HEADERS } from "./shared/http";
import { registerKey, touchToApprove } from "./shared/webauthn";

// One time format everywhere: the reader's own time zone, with the zone named ("Dec 7, 2026,
// 4:45 AM GMT+1"), and how far off it is where that helps ("in 14 min", "3 min ago": within a
// day). The server renders UTC as the no-JS fallback; the title keeps it.
const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

function relative(when: Date, now: number): string {
  const minutes = Math.round((when.getTime() - now) / 60000);
  if (Math.abs(minutes) >= 24 * 60) return "";
  if (Math.abs(minutes) >= 60) return RELATIVE.format(Math.round(minutes / 60), "hour");
  return RELATIVE.format(minutes, "minute");
}

function localizeTimes(root: ParentNode = document): void {
  // Components, not dateStyle/timeStyle: those can't be combined with timeZoneName.
  const fmt = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit", timeZoneName: "short",
  });
  const now = Date.now();
  root.querySelectorAll<HTMLTimeElement>("time[datetime]").forEach((el) => {
    const when = new Date(el.dateTime);
    if (Number.isNaN(when.getTime())) return;
    if (!el.dataset.utc) el.dataset.utc = el.textContent ?? "";
    el.title = el.dataset.utc;
    const near = relative(when, now);
    el.textContent = near ? `${fmt.format(when)} (${near})` : fmt.format(when);
  });
}

document.addEventListener("DOMContentLoaded", () => localizeTimes());
// Pages that swap in server-rendered fragments announce it so times get localized too.
document.addEventListener("ephemera:fragment", (ev) => localizeTimes(ev.target as ParentNode));

// A request page that can still change (pending, or its session provisioning) follows it
// through the JSON API and reloads when it moves on, so the page is always server-rendered.
const NO_SESSION = "00000000-0000-0000-0000-000000000000";

function watchRequest(): void {
  const watch = document.getElementById("request-watch");
  if (!watch?.dataset.apiUrl) return;
  const seen = `${watch.dataset.status}|${watch.dataset.sessionStatus ?? ""}|${watch.dataset.decisions ?? "0"}`;
  // Only on the requester's own page (request_detail.html): the session page's URL, by pattern.
  const sessionUrl = watch.dataset.sessionUrl ?? "";
  let delay = 2000;
  const poll = async (): Promise<void> => {
    try {
      const res = await fetch(watch.dataset.apiUrl!, {
        credentials: "same-origin",
        headers: { Accept: "application/json", ...BACKGROUND_HEADERS },
      });
      if (res.ok) {
        const body = (await res.json()) as {
          status: string;
          session: { id: string; status: string } | null;
          decisions: unknown[];
        };
        const now = `${body.status}|${body.session?.status ?? ""}|${body.decisions.length}`;
        // The requester waits for a shell: once it runs, straight to the terminal.
        if (sessionUrl && body.session?.status === "running" && body.session.id) {
          window.location.assign(sessionUrl.replace(NO_SESSION, encodeURIComponent(body.session.id)));
          return;
        }
        if (now !== seen) {
          window.location.reload();
          return;
        }
        delay = 2000;
      } else if (res.status === 403 || res.status === 404) {
        return; // signed out or no longer allowed: stop asking
      } else {
        delay = Math.min(delay * 2, 30000);
      }
    } catch {
      delay = Math.min(delay * 2, 30000);
    }
    window.setTimeout(() => void poll(), delay);
  };
  window.setTimeout(() => void poll(), delay);
}

document.addEventListener("DOMContentLoaded", watchRequest);

// Security keys (WebAuthn): registering one on the profile page, touching it to approve under a
// rule that asks for it. Delegated: the approvals queue swaps its forms in and out.
document.addEventListener("submit", (ev) => {
  const form = ev.target as HTMLFormElement;
  if (form.id === "key-form") {
    ev.preventDefault();
    void registerKey(form, document.getElementById("key-status")!);
    return;
  }
  const submitter = (ev as SubmitEvent).submitter as HTMLButtonElement | null;
  if (form.dataset.keyOptions && submitter?.value === "approve" && form.dataset.keyDone !== "1") {
    ev.preventDefault();
    void touchToApprove(form, submitter);
  }
});
