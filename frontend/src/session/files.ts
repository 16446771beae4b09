// The session page's Files panel: downloads and uploads through the JSON API, answered on the
// page (an error says why, in the panel) instead of navigating to a JSON body. Without script
// the download form is a plain GET of the same URL.

type ApiErrors = Record<string, string[] | string>;

function messageOf(status: number, body: ApiErrors | null, what: string): string {
  if (body) {
    const parts = Object.values(body).flatMap((v) => (Array.isArray(v) ? v : [v]));
    if (parts.length) return parts.join(" ");
  }
  return `The ${what} failed (HTTP ${status}).`;
}

function fileNameOf(resp: Response, fallback: string): string {
  const m = /filename="([^"]+)"/.exec(resp.headers.get("Content-Disposition") ?? "");
  return m ? m[1] : fallback;
}

export function enhanceFilesPanel(panel: HTMLElement): void {
  const url = panel.dataset.filesUrl ?? "";
  const result = panel.querySelector<HTMLElement>("#files-result");
  const show = (text: string, kind: "ok" | "error") => {
    if (!result) return;
    result.textContent = text;
    result.dataset.kind = kind;
    result.hidden = false;
  };

  const download = panel.querySelector<HTMLFormElement>("#files-download");
  download?.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const path = String(new FormData(download).get("path") ?? "");
    const button = download.querySelector<HTMLButtonElement>("button");
    if (button) button.disabled = true;
    try {
      const resp = await fetch(`${url}?${new URLSearchParams({ path })}`, { credentials: "same-origin" });
      if (!resp.ok) {
        show(messageOf(resp.status, (await resp.json().catch(() => null)) as ApiErrors | null, "download"), "error");
        return;
      }
      const blob = await resp.blob();
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = fileNameOf(resp, "download");
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
      show(`Downloaded ${path} (${blob.size} bytes); it is in the session's audit trail.`, "ok");
    } catch {
      show("The portal could not be reached; nothing was downloaded.", "error");
    } finally {
      if (button) button.disabled = false;
    }
  });

  const upload = panel.querySelector<HTMLFormElement>("#files-upload");
  upload?.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = upload.querySelector<HTMLInputElement>("#files-upload-file");
    const file = input?.files?.[0];
    if (!file) return;
    const typed = upload.querySelector<HTMLInputElement>("#files-upload-path")?.value.trim() ?? "";
    const path = typed || `/tmp/${file.name}`;
    const token = String(new FormData(upload).get("csrfmiddlewaretoken") ?? "");
    const button = upload.querySelector<HTMLButtonElement>("button");
    if (button) button.disabled = true;
    try {
      const resp = await fetch(`${url}?${new URLSearchParams({ path })}`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": token, "Content-Type": "application/octet-stream" },
        body: file,
      });
      const body = (await resp.json().catch(() => null)) as (ApiErrors & { size?: number; sha256?: string }) | null;
      if (resp.ok && body) {
        show(`Uploaded to ${path}: ${String(body.size)} bytes, sha256 ${String(body.sha256)}.`, "ok");
        upload.reset();
      } else {
        show(messageOf(resp.status, body, "upload"), "error");
      }
    } catch {
      show("The portal could not be reached; nothing was uploaded.", "error");
    } finally {
      if (button) button.disabled = false;
    }
  });
}
