// The session page: live status, countdown, End button and, for the requester of a
// running session, the browser terminal speaking docs/terminal-protocol.md.
import "./shared/style_nonce"; // first: before any library makes a <style>
import "@xterm/xterm/css/xterm.css";
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { SearchAddon } from "@xterm/addon-search";
import { Unicode11Addon } from "@xterm/addon-unicode11";
import { WebLinksAddon } from "@xterm/addon-web-links";
import { WebglAddon } from "@xterm/addon-webgl";
import {
  FINAL_CLOSE_CODES,
  OUTPUT,
  STATUS,
  ackFrame,
  inputFrame,
  parseStatus,
  resizeFrame,
} from "./terminal/protocol";
import { BACKGROUND_HEADERS } from "./shared/http";

// Ack in batches: each ack is a frame, but the server only pauses past 1 MiB unacked.
const ACK_EVERY = 64 * 1024;
const MAX_BACKOFF_MS = 15000;

const root = document.getElementById("session") as HTMLElement | null;
if (root) main(root);

function main(root: HTMLElement): void {
  const statusEl = document.getElementById("session-status")!;
  const progressEl = document.getElementById("session-progress")!;
  const countdownEl = document.getElementById("session-countdown")!;
  const banner = document.getElementById("terminal-banner");
  const box = document.getElementById("terminal");
  const endButton = document.getElementById("end-session") as HTMLButtonElement | null;
  let expiresAt = countdownEl.dataset.expiresAt ? new Date(countdownEl.dataset.expiresAt) : null;
  let status = statusEl.dataset.status || "";

  const setBanner = (text: string, kind = "info") => {
    if (!banner) return;
    banner.textContent = text;
    banner.dataset.kind = kind;
  };

  // Countdown to expiry: the server enforces it; this only shows it.
  setInterval(() => {
    if (!expiresAt || status !== "running") return;
    const left = Math.max(0, Math.floor((expiresAt.getTime() - Date.now()) / 1000));
    const m = Math.floor(left / 60);
    const s = String(left % 60).padStart(2, "0");
    countdownEl.textContent = left > 0 ? `${m}:${s} left` : "time is up";
  }, 1000);

  // Live status by polling while provisioning (and slowly afterwards, for non-requesters).
  const poll = async () => {
    try {
      const resp = await fetch(root.dataset.statusUrl!, { credentials: "same-origin", headers: BACKGROUND_HEADERS });
      if (resp.ok) {
        const data = await resp.json();
        const was = status;
        status = data.status;
        statusEl.textContent = data.status_display;
        statusEl.dataset.status = data.status;
        progressEl.textContent = data.failure_message || data.progress || "";
        if (data.expires_at) expiresAt = new Date(data.expires_at);
        if (was === "provisioning" && status === "running" && root.dataset.isRequester === "1") {
          location.reload(); // the page now renders the terminal
          return;
        }
      }
    } catch {
      /* transient: poll again */
    }
    if (status === "provisioning") setTimeout(poll, 1500);
    else if (status === "running" && !box) setTimeout(poll, 5000);
  };
  if (status === "provisioning" || (status === "running" && !box)) setTimeout(poll, 1000);

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
    // On success the websocket receives "ended" and closes.
  });

  if (box && status === "running") startTerminal(box, root.dataset.wsPath!, setBanner, (s) => {
    status = s;
    statusEl.textContent = s === "ended" ? "Ended" : statusEl.textContent;
    statusEl.dataset.status = s;
    if (endButton) endButton.disabled = s !== "running";
  }, (at) => {
    expiresAt = at;
    countdownEl.dataset.expiresAt = at.toISOString();
  });
}

function startTerminal(
  box: HTMLElement,
  wsPath: string,
  setBanner: (text: string, kind?: string) => void,
  setStatus: (s: string) => void,
  setExpiry: (at: Date) => void,
): void {
  const term = new Terminal({
    allowProposedApi: true, // unicode11
    cursorBlink: true,
    scrollback: 5000,
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
  });
  const fit = new FitAddon();
  const search = new SearchAddon();
  term.loadAddon(fit);
  term.loadAddon(search);
  term.loadAddon(new WebLinksAddon());
  term.loadAddon(new Unicode11Addon());
  term.unicode.activeVersion = "11";
  term.open(box);
  loadWebgl(term);
  fit.fit();
  setupSearch(box, term, search);

  let ws: WebSocket | null = null;
  let attempts = 0;
  let finished = false;
  let unacked = 0;
  let writesInFlight = 0;

  const send = (frame: Uint8Array) => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(frame);
  };
  const sendSize = () => send(resizeFrame(term.cols, term.rows));
  const flushAck = () => {
    if (unacked > 0) {
      send(ackFrame(unacked));
      unacked = 0;
    }
  };

  term.onData((data) => send(inputFrame(data)));
  term.onBinary((data) => send(inputFrame(Uint8Array.from(data, (c) => c.charCodeAt(0)))));
  term.onResize(() => sendSize());

  let resizeTimer: number | undefined;
  new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => fit.fit(), 100); // debounce: fit is costly
  }).observe(box);

  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${wsPath}`);
    socket.binaryType = "arraybuffer";
    ws = socket;
    setBanner(attempts ? "Reconnecting…" : "Connecting…");
    socket.onopen = () => {
      unacked = 0;
      sendSize(); // right away: the shell must know the size before it draws
    };
    socket.onmessage = (ev) => {
      const frame = new Uint8Array(ev.data as ArrayBuffer);
      const payload = frame.subarray(1);
      if (frame[0] === OUTPUT) {
        const size = payload.length;
        writesInFlight++;
        // Ack only after xterm has parsed the bytes: that is what keeps a flood bounded.
        term.write(payload, () => {
          writesInFlight--;
          if (ws !== socket) return;
          unacked += size;
          if (unacked >= ACK_EVERY || writesInFlight === 0) flushAck();
        });
      } else if (frame[0] === STATUS) {
        const msg = parseStatus(payload);
        if (msg.event === "connected") {
          attempts = 0;
          setBanner(msg.message, "ok");
          if (msg.expires_at) setExpiry(new Date(msg.expires_at));
          if (msg.reattached) term.reset(); // the restored tail repaints from a clean screen
          term.focus();
        } else if (msg.event === "ended" || msg.event === "expired") {
          finished = true;
          setStatus("ended");
          setBanner(msg.message, "error");
          term.write(`\r\n\x1b[1;31m[${msg.message}]\x1b[0m\r\n`);
        } else {
          // An approved extension moves the limit: the countdown follows at once.
          if (msg.event === "extended" && msg.expires_at) setExpiry(new Date(msg.expires_at));
          setBanner(msg.message, msg.event === "error" ? "error" : "info");
          if (msg.reconnect === false) finished = true;
        }
      }
    };
    socket.onclose = (ev) => {
      if (ws !== socket) return;
      ws = null;
      if (finished || FINAL_CLOSE_CODES.has(ev.code)) {
        finished = true;
        if (ev.reason) setBanner(ev.reason, "error");
        term.options.disableStdin = true;
        return;
      }
      attempts++;
      const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempts, 5)) * (0.75 + Math.random() / 2);
      setBanner(`Disconnected${ev.reason ? `: ${ev.reason}` : ""}. Reconnecting in ${Math.round(delay / 1000)} s…`, "error");
      setTimeout(connect, delay);
    };
  };
  connect();
}

function loadWebgl(term: Terminal): void {
  // WebGL is much faster for floods; the DOM renderer is the fallback when it is missing
  // or its context is lost (GPU reset, too many contexts).
  try {
    const webgl = new WebglAddon();
    webgl.onContextLoss(() => webgl.dispose());
    term.loadAddon(webgl);
  } catch {
    /* DOM renderer stays */
  }
}

function setupSearch(box: HTMLElement, term: Terminal, search: SearchAddon): void {
  const form = document.createElement("form");
  form.className = "terminal-search";
  form.hidden = true;
  const input = document.createElement("input");
  input.type = "search";
  input.placeholder = "Search (Enter: next, Shift+Enter: previous, Esc: close)";
  form.append(input);
  box.before(form);
  term.attachCustomKeyEventHandler((ev) => {
    if (ev.type === "keydown" && ev.ctrlKey && ev.shiftKey && ev.key.toLowerCase() === "f") {
      form.hidden = false;
      input.focus();
      input.select();
      return false;
    }
    return true;
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      form.hidden = true;
      search.clearDecorations();
      term.focus();
    } else if (ev.key === "Enter") {
      ev.preventDefault();
      if (ev.shiftKey) search.findPrevious(input.value);
      else search.findNext(input.value);
    }
  });
  form.addEventListener("submit", (ev) => ev.preventDefault());
}
