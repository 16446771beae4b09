// The request form: namespace -> pod -> target container, filled from LIVE cluster data
// through the portal's /cluster/... endpoints (the browser never talks to the cluster).
// Without JavaScript the form still posts; the server validates everything anyway.

interface Listing {
  items?: string[];
  error?: string;
}

const form = document.getElementById("request-form") as HTMLFormElement | null;

function select(id: string): HTMLSelectElement {
  return document.getElementById(id) as HTMLSelectElement;
}

function showError(message: string): void {
  const box = document.getElementById("cluster-error");
  if (!box) return;
  box.textContent = message;
  box.hidden = message === "";
}

function fill(el: HTMLSelectElement, items: string[], placeholder: string, wanted: string): void {
  el.replaceChildren();
  const first = new Option(items.length ? placeholder : "Nothing found", "");
  el.add(first);
  for (const item of items) el.add(new Option(item, item));
  el.disabled = items.length === 0;
  if (wanted && items.includes(wanted)) el.value = wanted;
  else if (items.length === 1) el.value = items[0];
}

function reset(el: HTMLSelectElement, text: string): void {
  el.replaceChildren(new Option(text, ""));
  el.disabled = true;
}

async function load(url: string): Promise<string[] | null> {
  try {
    const res = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    const body = (await res.json().catch(() => ({}))) as Listing;
    if (!res.ok) {
      showError(body.error ?? `The cluster lookup failed (HTTP ${res.status}).`);
      return null;
    }
    showError("");
    return body.items ?? [];
  } catch {
    showError("The portal could not be reached. Check your connection and reload the page.");
    return null;
  }
}

if (form) {
  const ns = select("id_namespace");
  const pod = select("id_pod");
  const ctr = select("id_container");
  const base = form.dataset.namespacesUrl ?? "/cluster/namespaces";
  const enc = encodeURIComponent;

  const loadContainers = async (wanted: string): Promise<void> => {
    if (!ns.value || !pod.value) return reset(ctr, "Choose a pod first");
    ctr.setAttribute("aria-busy", "true");
    const items = await load(`${base}/${enc(ns.value)}/pods/${enc(pod.value)}/containers`);
    ctr.removeAttribute("aria-busy");
    if (items) fill(ctr, items, "Choose a container", wanted);
  };
  const loadPods = async (wantedPod: string, wantedCtr: string): Promise<void> => {
    reset(ctr, "Choose a pod first");
    if (!ns.value) return reset(pod, "Choose a namespace first");
    pod.setAttribute("aria-busy", "true");
    const items = await load(`${base}/${enc(ns.value)}/pods`);
    pod.removeAttribute("aria-busy");
    if (!items) return;
    fill(pod, items, "Choose a pod", wantedPod);
    await loadContainers(wantedCtr);
  };

  ns.addEventListener("change", () => void loadPods("", ""));
  pod.addEventListener("change", () => void loadContainers(""));

  void (async () => {
    const items = await load(base);
    if (!items) return;
    fill(ns, items, "Choose a namespace", ns.dataset.initial ?? "");
    await loadPods(pod.dataset.initial ?? "", ctr.dataset.initial ?? "");
  })();
}
