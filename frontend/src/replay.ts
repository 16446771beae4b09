// The session page's replay (auditors, admins, the requester): asciinema-player on the
// session's .cast, a marker at every command typed, a command list that jumps the player,
// and speed / skip-idle controls (the player takes those as options, so changing one
// re-creates it at the same moment).
import "./shared/style_nonce"; // first: before any library makes a <style>
import "asciinema-player/dist/bundle/asciinema-player.css";
import * as AsciinemaPlayer from "asciinema-player";

interface ReplayData {
  cast_url: string;
  commands: { t: number; text: string }[];
  transfers?: { t: number; text: string }[];
}

declare global {
  interface Window {
    ephemeraReplay?: AsciinemaPlayer.Player;
  }
}

function setup(): void {
  const box = document.getElementById("replay");
  const dataEl = document.getElementById("replay-data");
  if (!box || !dataEl) return;
  const data = JSON.parse(dataEl.textContent || "{}") as ReplayData;
  const speedEl = document.getElementById("replay-speed") as HTMLSelectElement | null;
  const idleEl = document.getElementById("replay-skip-idle") as HTMLInputElement | null;
  // Commands typed and files moved, in time order; a marker's index leads back to its command.
  const entries = [
    ...data.commands.map((c, i) => ({ t: c.t, text: c.text, command: i })),
    ...(data.transfers ?? []).map((f) => ({ t: f.t, text: f.text, command: -1 })),
  ].sort((a, b) => a.t - b.t);
  const markers: AsciinemaPlayer.Marker[] = entries.map((e) => [e.t, e.text]);
  let player: AsciinemaPlayer.Player | null = null;

  const create = (startAt = 0, autoPlay = false): void => {
    player?.dispose();
    box.replaceChildren();
    player = AsciinemaPlayer.create({ url: data.cast_url, fetchOpts: { credentials: "same-origin" } }, box, {
      markers,
      startAt,
      autoPlay,
      preload: true,
      speed: Number(speedEl?.value || "1"),
      idleTimeLimit: idleEl?.checked ? 2 : undefined,
      fit: "width",
      terminalFontSize: "small",
    });
    player.addEventListener("marker", ({ index }) => highlight(entries[index]?.command ?? -1));
    window.ephemeraReplay = player;
  };

  const items = Array.from(document.querySelectorAll<HTMLButtonElement>("[data-command-index]"));
  const highlight = (index: number): void => {
    items.forEach((el) => el.toggleAttribute("aria-current", Number(el.dataset.commandIndex) === index));
  };
  items.forEach((el) =>
    el.addEventListener("click", async () => {
      const index = Number(el.dataset.commandIndex);
      if (!player) return;
      await player.seek({ marker: entries.findIndex((e) => e.command === index) });
      highlight(index);
    }),
  );
  // Speed keeps the place; "skip idle" changes the player's clock, so it starts over.
  speedEl?.addEventListener("change", () => create(player?.getCurrentTime() ?? 0));
  idleEl?.addEventListener("change", () => create(0));
  create();
}

document.addEventListener("DOMContentLoaded", setup);
