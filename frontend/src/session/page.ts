// The session page's live facts: status, progress, countdown and time warnings, the controls
// that only make sense while the session lives, the extensions and the end message.
// Everything shown comes from the server (status.json, polled, and the terminal's status
// messages); the page decides nothing, it only keeps what it shows current. Before this, a
// session that ended while its page was open kept saying "Running" with a live End button.
import { clearFlash } from "../shared/flash";
import { BACKGROUND_HEADERS } from "../shared/http";

export interface ExtensionInfo {
  id: string;
  minutes: number;
  status: string;
  status_display: string;
  decided_by: string;
  comment: string;
  reason: string;
}

// sessions/views.py `_status`.
export interface SessionInfo {
  status: string;
  status_display: string;
  progress: string;
  failure_message: string;
  end_message: string;
  expires_at: string | null;
  cluster_clean: boolean;
  extensions: ExtensionInfo[];
}

const LIVE = new Set(["provisioning", "running"]);
const POLL_PROVISIONING_MS = 1500;
const POLL_RUNNING_MS = 3000;
// After the end the cluster still has to confirm the shell is gone; follow that for a while.
const POLL_STOPPING_MS = 4000;
const POLL_STOPPING_TIMES = 30;
// Seconds before the limit at which the requester is warned (the issue asked for 5 and 1 min).
const WARNINGS = [300, 60];

function el<T extends HTMLElement = HTMLElement>(id: string): T | null {
  return document.getElementById(id) as T | null;
}

function extensionText(ext: ExtensionInfo): string {
  // The same sentence as sessions/templates/sessions/detail.html renders.
  const by = ext.decided_by ? ` by ${ext.decided_by}` : "";
  const comment = ext.comment ? ` (${ext.comment})` : "";
  return `+${ext.minutes} min: ${ext.status_display}${by}${comment} · asked for “${ext.reason}”`;
}

// The server writes "+00:00", the browser "Z": compare the instants, not the strings.
function sameInstant(a: string | null, b: string | null): boolean {
  if (!a || !b) return a === b;
  return new Date(a).getTime() === new Date(b).getTime();
}

function extensionsKey(list: ExtensionInfo[]): string {
  return list.map((e) => `${e.id}:${e.status}`).join(",");
}

export function readInitial(): SessionInfo | null {
  const data = document.getElementById("session-status-data");
  if (!data?.textContent) return null;
  return JSON.parse(data.textContent) as SessionInfo;
}

export class SessionPage {
  info: SessionInfo;
  // Told when the session stops being live (the terminal stops reconnecting, says why).
  onEnded: (message: string) => void = () => {};
  // Told when the extensions shown change (a new one, a decision).
  onExtensionsChanged: () => void = () => {};
  private readonly isRequester: boolean;
  private warned = 0; // how many of WARNINGS have been shown for the current limit
  private pollTimer: number | undefined;
  private stoppingPolls = 0;
  private failures = 0;

  constructor(
    private readonly root: HTMLElement,
    initial: SessionInfo,
  ) {
    this.info = initial;
    this.isRequester = root.dataset.isRequester === "1";
  }

  get status(): string {
    return this.info.status;
  }

  get live(): boolean {
    return LIVE.has(this.info.status);
  }

  start(): void {
    this.render();
    window.setInterval(() => this.tick(), 1000);
    this.schedule(this.live ? 1000 : POLL_STOPPING_MS);
  }

  // The server's word (status.json). Anything new since the page was drawn makes its flash
  // messages stale ("Your extension was sent to the approvers." once it is decided).
  apply(next: SessionInfo): void {
    const before = this.info;
    this.info = next;
    const extensionsChanged = extensionsKey(before.extensions) !== extensionsKey(next.extensions);
    const changed = before.status !== next.status || before.end_message !== next.end_message || extensionsChanged;
    if (changed) clearFlash();
    if (extensionsChanged) this.onExtensionsChanged();
    if (!sameInstant(before.expires_at, next.expires_at)) this.limitMoved();
    this.render();
    if (LIVE.has(before.status) && !LIVE.has(next.status)) this.onEnded(next.end_message || next.failure_message);
    if (before.status === "provisioning" && next.status === "running" && this.isRequester) {
      window.location.reload(); // the page now renders the terminal
    }
  }

  // The terminal said the session is over: show it at once, then ask the server for the rest
  // (who ended it, the cluster's stop progress).
  markEnded(message: string): void {
    if (!this.live) return;
    this.apply({
      ...this.info,
      status: "ended",
      status_display: "Ended",
      progress: "",
      end_message: message || this.info.end_message,
    });
    void this.refresh();
  }

  // An approved extension (terminal "extended"), or the limit the terminal was told on connect.
  setExpiry(at: Date): void {
    const iso = at.toISOString();
    if (sameInstant(this.info.expires_at, iso)) return;
    this.info = { ...this.info, expires_at: iso };
    this.limitMoved();
    this.render();
  }

  async refresh(): Promise<void> {
    const url = this.root.dataset.statusUrl;
    if (!url) return;
    try {
      const resp = await fetch(url, { credentials: "same-origin", headers: BACKGROUND_HEADERS });
      if (resp.status === 403 || resp.status === 404) {
        this.failures = -1; // signed out or no longer allowed: stop asking
        return;
      }
      if (!resp.ok) throw new Error(String(resp.status));
      this.failures = 0;
      this.apply((await resp.json()) as SessionInfo);
    } catch {
      this.failures++;
    }
  }

  private schedule(delay: number): void {
    window.clearTimeout(this.pollTimer);
    this.pollTimer = window.setTimeout(async () => {
      await this.refresh();
      const next = this.nextPoll();
      if (next !== null) this.schedule(next);
    }, delay);
  }

  private nextPoll(): number | null {
    if (this.failures < 0) return null;
    const backoff = Math.min(30000, 1000 * 2 ** Math.min(this.failures, 5));
    if (this.info.status === "provisioning") return Math.max(POLL_PROVISIONING_MS, this.failures ? backoff : 0);
    if (this.info.status === "running") return Math.max(POLL_RUNNING_MS, this.failures ? backoff : 0);
    if (!this.info.cluster_clean && this.stoppingPolls++ < POLL_STOPPING_TIMES) return POLL_STOPPING_MS;
    return null;
  }

  private limitMoved(): void {
    // A later limit (an extension) re-arms the warnings it pushed back.
    this.warned = 0;
    this.tick();
  }

  private secondsLeft(): number | null {
    if (!this.info.expires_at) return null;
    return Math.max(0, Math.floor((new Date(this.info.expires_at).getTime() - Date.now()) / 1000));
  }

  // Once a second: the countdown (the server enforces the limit; this only shows it) and the
  // warnings before it.
  private tick(): void {
    const countdown = el("session-countdown");
    const left = this.secondsLeft();
    if (countdown) {
      if (this.info.status === "running" && left !== null) {
        const m = Math.floor(left / 60);
        const s = String(left % 60).padStart(2, "0");
        countdown.textContent = left > 0 ? `${m}:${s} left` : "time is up";
      } else if (this.info.status === "provisioning") {
        countdown.textContent = "—";
      } else {
        countdown.textContent = "none: the session is over";
      }
      countdown.dataset.expiresAt = this.info.expires_at ?? "";
    }
    if (this.info.status !== "running" || left === null || !this.isRequester) return;
    const due = WARNINGS.filter((seconds) => left <= seconds).length;
    if (due > this.warned) {
      this.warned = due;
      this.warn(due);
    } else if (due === 0) {
      this.hideWarning();
    }
  }

  private warn(level: number): void {
    const box = el("session-warning");
    const at = new Date(this.info.expires_at!).toLocaleTimeString();
    const extend = el("extend-form") ? " Ask for more time below if you need it." : "";
    const text =
      level >= WARNINGS.length
        ? `Less than a minute left: at ${at} the session ends and the debug shell is stopped.`
        : `Less than ${Math.round(WARNINGS[level - 1] / 60)} minutes left: the session ends at ${at}.${extend}`;
    // The banner above the terminal, and the terminal's own bar (whose connection messages
    // don't replace it), where the eyes of someone typing are.
    const short = level >= WARNINGS.length ? "Less than a minute left" : `Less than ${Math.round(WARNINGS[level - 1] / 60)} min left`;
    for (const [target, content] of [[box, text], [el("terminal-warning"), `${short} (until ${at})`]] as const) {
      if (!target) continue;
      target.textContent = content;
      target.dataset.level = level >= WARNINGS.length ? "last" : "first";
      target.hidden = false;
    }
  }

  private hideWarning(): void {
    for (const target of [el("session-warning"), el("terminal-warning")]) {
      if (target && !target.hidden) target.hidden = true;
    }
  }

  private render(): void {
    const info = this.info;
    const live = this.live;
    const status = el("session-status");
    if (status) {
      status.textContent = info.status_display;
      status.dataset.status = info.status;
    }
    const progress = el("session-progress");
    if (progress) {
      // Only what adds to the status: the stop's progress, provisioning steps, never "running".
      progress.textContent = info.progress;
      progress.hidden = !info.progress || info.progress.toLowerCase() === info.status;
    }
    const failure = el("session-failure");
    if (failure) {
      failure.textContent = info.failure_message;
      failure.hidden = !info.failure_message;
    }
    const endButton = el<HTMLButtonElement>("end-session");
    if (endButton) {
      endButton.hidden = !live;
      endButton.disabled = !live;
    }
    if (!live) {
      const takeOver = el("take-over");
      if (takeOver) takeOver.hidden = true;
      this.hideWarning();
    }
    const extend = el<HTMLFormElement>("extend-form");
    if (extend) extend.hidden = info.status !== "running";
    const revoke = el<HTMLFormElement>("revoke-form");
    if (revoke) revoke.hidden = !live;
    const endMessage = el("session-end-message");
    if (endMessage) {
      endMessage.textContent = info.end_message;
      endMessage.hidden = !info.end_message;
    }
    const replayHint = el("replay-hint");
    if (replayHint && !live) replayHint.textContent = "The session has ended: reload the page for its replay.";
    this.renderExtensions();
    this.tick();
  }

  private renderExtensions(): void {
    const list = el("session-extensions");
    const block = el("session-extensions-block");
    if (!list || !block) return;
    const items = this.info.extensions.map((ext) => {
      const li = document.createElement("li");
      li.dataset.extensionStatus = ext.status;
      li.textContent = extensionText(ext);
      return li;
    });
    list.replaceChildren(...items);
    block.hidden = items.length === 0;
  }
}
