// The terminal websocket protocol (docs/terminal-protocol.md): one type byte, then payload.
export const INPUT = 0x00;
export const OUTPUT = 0x01;
export const STATUS = 0x02;
export const RESIZE = 0x04;
export const ACK = 0x06;

// A newer connection to the same terminal took over (another tab or window).
export const CLOSE_REPLACED = 4409;

// Close codes after which reconnecting cannot help.
export const FINAL_CLOSE_CODES = new Set([4400, 4401, 4403, 4404, 4408, 4409, 4410]);

const encoder = new TextEncoder();

// The portal's server (Daphne) drops a connection on any websocket message over 1 MiB, and a
// dropped connection would lose the rest of a big paste: input goes out in frames of at most
// this many bytes. The server writes them to the shell in order, as one stream of bytes (a
// character split across two frames arrives whole).
export const MAX_INPUT_BYTES = 64 * 1024;

export function inputFrames(data: string | Uint8Array): Uint8Array[] {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const frames: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += MAX_INPUT_BYTES) {
    frames.push(inputFrame(bytes.subarray(at, at + MAX_INPUT_BYTES)));
  }
  return frames;
}

export function inputFrame(data: string | Uint8Array): Uint8Array {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const frame = new Uint8Array(bytes.length + 1);
  frame[0] = INPUT;
  frame.set(bytes, 1);
  return frame;
}

export function resizeFrame(cols: number, rows: number): Uint8Array {
  const frame = new Uint8Array(5);
  const view = new DataView(frame.buffer);
  frame[0] = RESIZE;
  view.setUint16(1, cols);
  view.setUint16(3, rows);
  return frame;
}

export function ackFrame(count: number): Uint8Array {
  const frame = new Uint8Array(5);
  frame[0] = ACK;
  new DataView(frame.buffer).setUint32(1, count);
  return frame;
}

export interface StatusMessage {
  event: string;
  message: string;
  expires_at?: string;
  reconnect?: boolean;
  reattached?: boolean;
  watcher?: string; // watcher_joined / watcher_left: who
  watchers?: string[]; // connected, watcher_joined, watcher_left: everyone watching now
}

export function parseStatus(payload: Uint8Array): StatusMessage {
  return JSON.parse(new TextDecoder().decode(payload)) as StatusMessage;
}
