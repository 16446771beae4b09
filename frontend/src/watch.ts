// The read-only live view of a running session (approvers, auditors, admins): output only.
// The terminal takes no keyboard input and nothing is ever sent to the server but the
// websocket handshake, so a watcher cannot type into the engineer's shell.
import "./shared/style_nonce"; // first: before any library makes a <style>
import "@xterm/xterm/css/xterm.css";
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";

const OUTPUT = 0x01;
const STATUS = 0x02;

function setup(): void {
  const root = document.getElementById("watch");
  const box = document.getElementById("watch-terminal");
  const banner = document.getElementById("watch-banner");
  if (!root || !box || !banner) return;
  const term = new Terminal({ disableStdin: true, cursorBlink: false, convertEol: false, scrollback: 5000 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  window.addEventListener("resize", () => fit.fit());
  const url = new URL(root.dataset.wsPath!, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (ev) => {
    const frame = new Uint8Array(ev.data as ArrayBuffer);
    if (frame[0] === OUTPUT) term.write(frame.subarray(1));
    else if (frame[0] === STATUS) {
      const msg = JSON.parse(new TextDecoder().decode(frame.subarray(1)));
      banner.textContent = msg.message;
      banner.dataset.event = msg.event;
    }
  };
  socket.onclose = (ev) => {
    if (!banner.dataset.event || banner.dataset.event === "watching") banner.textContent = `Disconnected (${ev.code}).`;
  };
}

document.addEventListener("DOMContentLoaded", setup);
