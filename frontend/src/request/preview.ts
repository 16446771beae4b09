// The request form's live policy preview: as the requester fills the form, ask the server what
// its policy would make of the request (POST /api/v1/requests/preview: the same checks as a
// create, writing nothing) and show the rule that applies ("rule sysadmin: 2 approvers from
// sre-leads, at most 30 minutes, ticket required"), or what the server would refuse, next to
// the field it is about. The server decides everything; this only shows what it said.

type Errors = Record<string, string[] | string>;

interface PreviewAnswer {
  policy?: { summary?: string; rule?: string };
}

// The fields a rule or the cluster looks at; `reason` is not one (no rule reads it), so it is
// left out of the preview, which stands in a placeholder for it.
const WATCHED = new Set(["kind", "namespace", "pod", "container", "node", "image", "profile", "duration_minutes", "ticket"]);
// Target fields the requester hasn't reached yet: "Choose a pod." next to them before they had
// a chance to is noise, so those stay quiet until touched or filled.
const TARGETS = new Set(["namespace", "pod", "container", "node"]);
const DEBOUNCE_MS = 300;
const UNAVAILABLE = "The policy preview is unavailable right now; your request is still checked when you send it.";

export interface Preview {
  /** Ask again after the debounce (a field changed, or a list was filled in by script). */
  schedule(): void;
}

function messages(value: string[] | string | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value.map(String) : [String(value)];
}

export function livePolicyPreview(form: HTMLFormElement, box: HTMLElement): Preview {
  const url = box.dataset.previewUrl ?? "/api/v1/requests/preview";
  const touched = new Set<string>();
  let timer = 0;
  let latest = 0;
  let inFlight: AbortController | null = null;

  const value = (name: string): string => {
    const v = new FormData(form).get(name);
    return typeof v === "string" ? v : "";
  };

  // Exactly what a submit of the form would send, so the preview says what the submit will.
  const body = (): Record<string, unknown> => {
    const data: Record<string, unknown> = {};
    for (const name of WATCHED) data[name] = value(name);
    const duration = value("duration_minutes").trim();
    data.duration_minutes = duration === "" ? null : duration;
    data.reason = "";
    return data;
  };

  const containerOf = (name: string): HTMLElement | null => {
    const control = form.querySelector<HTMLElement>(`[name="${name}"]`);
    return control?.closest<HTMLElement>(".field, fieldset") ?? null;
  };

  // One error list per field, the one the server renders after a refused submit (id err_NAME)
  // if it is there: a later preview replaces what it says, so nothing stale stays next to a field.
  const showFieldErrors = (name: string, list: string[]): void => {
    const container = containerOf(name);
    if (!container) return;
    const id = `err_${name}`;
    let ul = document.getElementById(id) as HTMLUListElement | null;
    const control = form.elements.namedItem(name);
    const described: HTMLElement = control instanceof HTMLElement ? control : container;
    if (!list.length) {
      ul?.remove();
      container.classList.remove("has-error");
      if (control instanceof HTMLElement) control.removeAttribute("aria-invalid");
      if (described.getAttribute("aria-describedby") === id) described.removeAttribute("aria-describedby");
      return;
    }
    if (!ul) {
      ul = document.createElement("ul");
      ul.className = "errorlist";
      ul.id = id;
      container.append(ul);
    }
    ul.replaceChildren(...list.map((m) => Object.assign(document.createElement("li"), { textContent: m })));
    container.classList.add("has-error");
    if (control instanceof HTMLElement) control.setAttribute("aria-invalid", "true");
    described.setAttribute("aria-describedby", id);
  };

  const show = (state: "ok" | "refused" | "incomplete" | "unavailable", text: string): void => {
    box.dataset.state = state;
    const label = Object.assign(document.createElement("span"), { className: "policy-label", textContent: "Policy:" });
    const said = Object.assign(document.createElement("span"), { className: "policy-text", textContent: text });
    box.replaceChildren(label, said);
  };

  const quiet = (name: string): boolean => TARGETS.has(name) && !touched.has(name) && value(name).trim() === "";

  const refused = (errors: Errors): void => {
    const said: string[] = [];
    let waiting = false;
    for (const name of WATCHED) {
      if (quiet(name)) {
        waiting ||= name in errors;
        continue;
      }
      const list = messages(errors[name]);
      showFieldErrors(name, list);
      said.push(...list);
    }
    // Errors not about one field of the form (no rule allows it, the cluster can't be asked),
    // and anything else the server said: in the preview line only.
    for (const [key, val] of Object.entries(errors)) if (!WATCHED.has(key)) said.push(...messages(val));
    if (said.length) show("refused", [...new Set(said)].join(" "));
    else if (waiting) show("incomplete", "Choose what to debug to see which policy rule applies.");
    else show("unavailable", UNAVAILABLE);
  };

  const allowed = (answer: PreviewAnswer): void => {
    for (const name of WATCHED) showFieldErrors(name, []);
    // What the last submit was refused for (at the top of the form) no longer holds.
    document.getElementById("form-errors")?.remove();
    show("ok", answer.policy?.summary || `rule ${answer.policy?.rule ?? "?"}`);
  };

  const run = async (): Promise<void> => {
    const mine = ++latest;
    inFlight?.abort();
    const controller = new AbortController();
    inFlight = controller;
    box.setAttribute("aria-busy", "true");
    try {
      const csrf = value("csrfmiddlewaretoken");
      const resp = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrf, "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body()),
        signal: controller.signal,
      });
      const answer = (await resp.json().catch(() => null)) as unknown;
      if (mine !== latest) return; // a later edit has its own answer coming
      if (resp.ok) allowed((answer ?? {}) as PreviewAnswer);
      else if (resp.status === 400 && answer && typeof answer === "object") refused(answer as Errors);
      else show("unavailable", UNAVAILABLE);
    } catch {
      if (mine === latest) show("unavailable", UNAVAILABLE);
    } finally {
      if (mine === latest) box.removeAttribute("aria-busy");
    }
  };

  const schedule = (): void => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void run(), DEBOUNCE_MS);
  };

  const onEdit = (ev: Event): void => {
    const name = (ev.target as HTMLInputElement | null)?.name ?? "";
    if (!WATCHED.has(name)) return;
    touched.add(name);
    schedule();
  };
  form.addEventListener("input", onEdit);
  form.addEventListener("change", onEdit);
  return { schedule };
}
