// The terminal websocket protocol (docs/terminal-protocol.md): one type byte, then payload.
export const INPUT = 0x00;
export const OUTPUT = 0x01;
export const STATUS = 0x02;
export const RESIZE = 0x04;
export const ACK = 0x06;

// Close codes after which reconnecting cannot help.
export const FINAL_CLOSE_CODES = new Set([4400, 4401, 4403, 4404, 4409, 4410]);

const encoder = new TextEncoder();

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
}

export function parseStatus(payload: Uint8Array): StatusMessage {
  return JSON.parse(new TextDecoder().decode(payload)) as StatusMessage;
}
