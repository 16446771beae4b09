// The session page: live status, countdown, End button and, for the requester of a running
// session, the browser terminal (./terminal/client.ts) speaking docs/terminal-protocol.md.
import "./shared/style_nonce"; // first: before any library makes a <style>
import "@xterm/xterm/css/xterm.css";
import { enhanceExtendForm } from "./session/extend";
import { enhanceFilesPanel } from "./session/files";
import { SessionPage, readInitial } from "./session/page";
import { type TerminalControl, startTerminal } from "./terminal/client";

const root = document.getElementById("session") as HTMLElement | null;
const initial = readInitial();
if (root && initial) main(root, new SessionPage(root, initial));

function main(root: HTMLElement, page: SessionPage): void {
  const banner = document.getElementById("terminal-banner");
  const box = document.getElementById("terminal");
  const endButton = document.getElementById("end-session") as HTMLButtonElement | null;

  const setBanner = (text: string, kind = "info") => {
    if (!banner) return;
    banner.textContent = text;
    banner.dataset.kind = kind;
  };

  endButton?.addEventListener("click", async () => {
    if (!confirm("End this debug session? The debug shell will be stopped.")) return;
    endButton.disabled = true;
    const csrf = (document.querySelector("input[name=csrfmiddlewaretoken]") as HTMLInputElement | null)?.value ?? "";
    const resp = await fetch(root.dataset.endUrl!, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Content-Type": "application/json" },
      body: "{}",
    });
    if (!resp.ok) {
      endButton.disabled = false;
      setBanner(`Could not end the session (${resp.status}).`, "error");
    }
    // On success the websocket receives "ended" and closes; the page follows.
    void page.refresh();
  });

  let terminal: TerminalControl | null = null;
  if (box && page.status === "running") {
    terminal = startTerminal(
      {
        box,
        takeOver: document.getElementById("take-over") as HTMLButtonElement | null,
        replacedCover: document.getElementById("terminal-replaced"),
      },
      root.dataset.wsPath!,
      {
        banner: setBanner,
        connected: (at) => {
          if (at) page.setExpiry(at);
        },
        extended: (at) => {
          page.setExpiry(at);
          void page.refresh(); // the extension's own line turns "Approved"
        },
        ended: (message) => page.markEnded(message),
        closed: () => void page.refresh(),
      },
    );
  }
  page.onEnded = (message) => {
    // However the page learnt it (terminal, or the poll after the shell exited), the terminal
    // stops reconnecting and the bar says why.
    terminal?.stop();
    if (message && !terminal?.open) setBanner(message, "error");
  };
  const extendForm = document.getElementById("extend-form") as HTMLFormElement | null;
  if (extendForm && root.dataset.extendUrl) enhanceExtendForm(extendForm, root.dataset.extendUrl, page);
  const filesPanel = document.getElementById("files-panel");
  if (filesPanel) enhanceFilesPanel(filesPanel);
  page.start();
}
