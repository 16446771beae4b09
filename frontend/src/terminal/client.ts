// The browser terminal: xterm.js speaking docs/terminal-protocol.md over the session's websocket.
// What the session page shows about the session itself (status, countdown) is the page's
// business (../session/page.ts); this tells it what the socket heard, through `hooks`.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { SearchAddon } from "@xterm/addon-search";
import { Unicode11Addon } from "@xterm/addon-unicode11";
import { WebLinksAddon } from "@xterm/addon-web-links";
import { WebglAddon } from "@xterm/addon-webgl";
import { CLOSE_REPLACED, FINAL_CLOSE_CODES, OUTPUT, STATUS, ackFrame, inputFrames, parseStatus, resizeFrame } from "./protocol";
import { showWatchers } from "./watchers";

// Ack in batches: each ack is a frame, but the server only pauses past 1 MiB unacked.
const ACK_EVERY = 64 * 1024;
const MAX_BACKOFF_MS = 15000;

export interface TerminalHooks {
  banner(text: string, kind?: string): void;
  connected(expiresAt: Date | null): void;
  extended(expiresAt: Date): void;
  // The server said the session is over (ended, expired).
  ended(message: string): void;
  // The socket closed: the session may have ended meanwhile (the shell exited), so the page
  // asks the server rather than trusting that the terminal will say so.
  closed(final: boolean): void;
}

export interface TerminalElements {
  box: HTMLElement;
  takeOver: HTMLButtonElement | null; // "Take over here", shown once another tab replaced this one
  replacedCover: HTMLElement | null;
}

export interface TerminalControl {
  // The session is over: no more reconnecting (an open socket is closed by the server, with its reason).
  stop(): void;
  get open(): boolean;
}

export function startTerminal(els: TerminalElements, wsPath: string, hooks: TerminalHooks): TerminalControl {
  const { box, takeOver, replacedCover } = els;
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
  let stopped = false;
  let replaced = false;
  let reconnectTimer: number | undefined;
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

  // A big paste arrives as one onData call: split it below the server's message limit.
  term.onData((data) => inputFrames(data).forEach(send));
  term.onBinary((data) => inputFrames(Uint8Array.from(data, (c) => c.charCodeAt(0))).forEach(send));
  term.onResize(() => sendSize());

  let resizeTimer: number | undefined;
  new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => fit.fit(), 100); // debounce: fit is costly
  }).observe(box);

  // Another tab or window opened this terminal (4409): this one no longer reaches the shell.
  // Say so over the screen, stop taking keys, and offer to take it back.
  const showReplaced = () => {
    if (replaced) return;
    replaced = true;
    finished = true;
    term.options.disableStdin = true;
    term.blur();
    hooks.banner("Opened in another tab or window: this one is disconnected.", "replaced");
    if (replacedCover) replacedCover.hidden = false;
    if (takeOver && !stopped) takeOver.hidden = false;
  };
  const hideReplaced = () => {
    replaced = false;
    if (replacedCover) replacedCover.hidden = true;
    if (takeOver) takeOver.hidden = true;
  };
  takeOver?.addEventListener("click", () => {
    if (stopped) return;
    hideReplaced();
    finished = false;
    attempts = 0;
    term.options.disableStdin = false;
    connect(); // the server hands the terminal to this connection and replaces the other one
  });

  const connect = () => {
    window.clearTimeout(reconnectTimer);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${wsPath}`);
    socket.binaryType = "arraybuffer";
    ws = socket;
    hooks.banner(attempts ? "Reconnecting…" : "Connecting…");
    socket.onopen = () => {
      unacked = 0;
      sendSize(); // right away: the shell must know the size before it draws
    };
    socket.onmessage = (ev) => {
      if (ws !== socket) return;
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
          hooks.banner(msg.message, "ok");
          hooks.connected(msg.expires_at ? new Date(msg.expires_at) : null);
          showWatchers(msg.watchers ?? []);
          if (msg.reattached) term.reset(); // the restored tail repaints from a clean screen
          term.focus();
        } else if (msg.event === "ended" || msg.event === "expired") {
          finished = true;
          hooks.banner(msg.message, "error");
          term.write(`\r\n\x1b[1;31m[${msg.message}]\x1b[0m\r\n`);
          hooks.ended(msg.message);
        } else if (msg.event === "replaced") {
          showReplaced();
        } else {
          // An approved extension moves the limit: the countdown follows at once.
          if (msg.event === "extended" && msg.expires_at) hooks.extended(new Date(msg.expires_at));
          // Someone started or stopped watching: the banner says who, the badge who is now.
          if (msg.event === "watcher_joined" || msg.event === "watcher_left") showWatchers(msg.watchers ?? []);
          hooks.banner(msg.message, msg.event === "error" || msg.event === "revoked" || msg.event === "denied" ? "error" : "info");
          if (msg.reconnect === false || msg.event === "denied" || msg.event === "revoked") finished = true;
        }
      }
    };
    socket.onclose = (ev) => {
      if (ws !== socket) return;
      ws = null;
      if (ev.code === CLOSE_REPLACED) showReplaced();
      if (finished || stopped || FINAL_CLOSE_CODES.has(ev.code)) {
        finished = true;
        showWatchers([]); // over: nobody watches this terminal any more
        if (ev.reason && !replaced && !stopped) hooks.banner(ev.reason, "error");
        term.options.disableStdin = true;
        hooks.closed(true);
        return;
      }
      attempts++;
      const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempts, 5)) * (0.75 + Math.random() / 2);
      hooks.banner(`Disconnected${ev.reason ? `: ${ev.reason}` : ""}. Reconnecting in ${Math.round(delay / 1000)} s…`, "error");
      reconnectTimer = window.setTimeout(connect, delay);
      hooks.closed(false);
    };
  };
  connect();

  return {
    stop() {
      stopped = true;
      finished = true;
      window.clearTimeout(reconnectTimer);
      if (takeOver) takeOver.hidden = true;
      if (!ws) term.options.disableStdin = true;
    },
    get open() {
      return ws !== null && ws.readyState === WebSocket.OPEN;
    },
  };
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
