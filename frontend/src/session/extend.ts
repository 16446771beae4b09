// "Ask for more time" on the session page, sent through the JSON API (the same service as the
// form's own POST, which stays the no-script fallback), so asking neither reloads the page nor
// re-attaches the terminal in the middle of what the engineer is doing.
import type { SessionPage } from "./page";

type ApiErrors = Record<string, string[] | string>;

function messageOf(status: number, body: ApiErrors | null): string {
  if (body) {
    const parts = Object.values(body).flatMap((v) => (Array.isArray(v) ? v : [v]));
    if (parts.length) return parts.join(" ");
  }
  return `The extension could not be asked for (HTTP ${status}).`;
}

export function enhanceExtendForm(form: HTMLFormElement, apiUrl: string, page: SessionPage): void {
  const result = form.querySelector<HTMLElement>("#extend-result");
  const button = form.querySelector<HTMLButtonElement>("button[type=submit]");
  const show = (text: string, kind: "ok" | "error") => {
    if (!result) return;
    result.textContent = text;
    result.dataset.kind = kind;
    result.hidden = false;
  };
  // An answer is about this request; once the extension is decided, the list says the rest.
  page.onExtensionsChanged = () => {
    if (result) result.hidden = true;
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    if (button) button.disabled = true;
    try {
      const resp = await fetch(apiUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": String(data.get("csrfmiddlewaretoken") ?? ""), "Content-Type": "application/json" },
        body: JSON.stringify({ minutes: Number(data.get("minutes")), reason: String(data.get("reason") ?? "") }),
      });
      if (resp.ok) {
        await page.refresh(); // the new extension's line ("Pending") comes from the server
        form.reset();
        show("Your extension was sent to the approvers.", "ok");
      } else {
        show(messageOf(resp.status, (await resp.json().catch(() => null)) as ApiErrors | null), "error");
      }
    } catch {
      show("The portal could not be reached; nothing was sent. Try again.", "error");
    } finally {
      if (button) button.disabled = false;
    }
  });
}
