// Loaded on every page (portal/base.html): the stylesheet, and small progressive enhancements.
import "./styles/app.css";
import { BACKGROUND_HEADERS } from "./shared/http";

// Show times in the reader's own time zone; the server renders UTC as the no-JS fallback.
function localizeTimes(root: ParentNode = document): void {
  const fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  root.querySelectorAll<HTMLTimeElement>("time[datetime]").forEach((el) => {
    const when = new Date(el.dateTime);
    if (!Number.isNaN(when.getTime())) {
      el.title = el.textContent ?? "";
      el.textContent = fmt.format(when);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => localizeTimes());
// Pages that swap in server-rendered fragments announce it so times get localized too.
document.addEventListener("ephemera:fragment", (ev) => localizeTimes(ev.target as ParentNode));

// A request page that can still change (pending, or its session provisioning) follows it
// through the JSON API and reloads when it moves on, so the page is always server-rendered.
function watchRequest(): void {
  const watch = document.getElementById("request-watch");
  if (!watch?.dataset.apiUrl) return;
  const seen = `${watch.dataset.status}|${watch.dataset.sessionStatus ?? ""}|${watch.dataset.decisions ?? "0"}`;
  let delay = 2000;
  const poll = async (): Promise<void> => {
    try {
      const res = await fetch(watch.dataset.apiUrl!, {
        credentials: "same-origin",
        headers: { Accept: "application/json", ...BACKGROUND_HEADERS },
      });
      if (res.ok) {
        const body = (await res.json()) as { status: string; session: { status: string } | null; decisions: unknown[] };
        const now = `${body.status}|${body.session?.status ?? ""}|${body.decisions.length}`;
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
