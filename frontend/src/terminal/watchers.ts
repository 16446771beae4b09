// Who is watching the session live (sessions/review/presence.py), for the requester: a badge in
// the terminal's bar next to the banner, always the server's latest list (`watchers` of the
// `connected`, `watcher_joined` and `watcher_left` STATUS messages). The join or leave itself is
// the banner's line. Not written into the xterm screen: that belongs to the shell, and a line
// printed into it would tear whatever is drawn there (an editor, `top`).
import "../styles/watchers.css";

export function showWatchers(names: readonly string[]): void {
  const bar = document.getElementById("terminal-banner")?.parentElement;
  if (!bar) return;
  let badge = document.getElementById("terminal-watchers");
  if (!badge) {
    badge = document.createElement("span");
    badge.id = "terminal-watchers";
    badge.className = "terminal-watchers";
    bar.append(badge);
  }
  badge.textContent = names.length ? `Watched by ${names.join(", ")} (read-only)` : "";
  badge.hidden = names.length === 0;
}
