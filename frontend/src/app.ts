// Loaded on every page (portal/base.html): the stylesheet, and small progressive enhancements.
import "./styles/app.css";

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
