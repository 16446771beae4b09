// The request form: namespace -> pod -> target container, filled from LIVE cluster data
// through the portal's /cluster/... endpoints (the browser never talks to the cluster).
// Without JavaScript the form still posts; the server validates everything anyway.
// As it is filled in, request/preview.ts shows which policy rule would apply.
import { livePolicyPreview } from "./request/preview";

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

// `wanted` is what the form was submitted with (the server sent it back with an error). It
// stays chosen even when the cluster no longer lists it: choosing another pod for the user
// (the only one left, say) would aim the next submit at a target nobody picked.
// `listed` is null when the cluster could not be asked.
function fill(el: HTMLSelectElement, listed: string[] | null, placeholder: string, wanted: string): void {
  const items = listed ?? [];
  el.replaceChildren();
  const first = new Option(items.length ? placeholder : "Nothing found", "");
  el.add(first);
  for (const item of items) el.add(new Option(item, item));
  if (wanted && !items.includes(wanted)) el.add(new Option(listed ? `${wanted} (not found in the cluster)` : wanted, wanted));
  el.disabled = el.options.length === 1;
  if (wanted) el.value = wanted;
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
  const previewBox = document.getElementById("policy-preview");
  const preview = previewBox ? livePolicyPreview(form, previewBox) : null;

  const loadContainers = async (wanted: string): Promise<void> => {
    if (!ns.value || !pod.value) return reset(ctr, "Choose a pod first");
    ctr.setAttribute("aria-busy", "true");
    const items = await load(`${base}/${enc(ns.value)}/pods/${enc(pod.value)}/containers`);
    ctr.removeAttribute("aria-busy");
    if (items || wanted) fill(ctr, items, "Choose a container", wanted);
    preview?.schedule(); // the lists were filled in by script: no change event says so
  };
  const loadPods = async (wantedPod: string, wantedCtr: string): Promise<void> => {
    reset(ctr, "Choose a pod first");
    if (!ns.value) {
      reset(pod, "Choose a namespace first");
      return preview?.schedule();
    }
    // The old namespace's pods go at once: a preview (or a submit) meanwhile must not pair
    // the new namespace with a pod of the old one.
    reset(pod, "Loading…");
    pod.setAttribute("aria-busy", "true");
    const items = await load(`${base}/${enc(ns.value)}/pods`);
    pod.removeAttribute("aria-busy");
    if (!items && !wantedPod) {
      fill(pod, null, "", "");
      return preview?.schedule();
    }
    fill(pod, items, "Choose a pod", wantedPod);
    await loadContainers(wantedCtr);
  };

  ns.addEventListener("change", () => void loadPods("", ""));
  pod.addEventListener("change", () => void loadContainers(""));

  // Pod or node: only the chosen target's fields are shown (app.css) and required. A hidden
  // field left `required` blocks the submit without a word ("An invalid form control ... is
  // not focusable"): node requests could not be sent at all.
  const kindRadios = Array.from(form.querySelectorAll<HTMLInputElement>("input[name=kind]"));
  const node = select("id_node");
  const applyKind = (): void => {
    const isNode = kindRadios.some((r) => r.checked && r.value === "node");
    for (const el of [ns, pod, ctr]) el.required = !isNode;
    node.required = isNode;
  };
  kindRadios.forEach((r) => r.addEventListener("change", applyKind));
  applyKind();

  void (async () => {
    const wantedNs = ns.dataset.initial ?? "";
    const items = await load(base);
    if (!items && !wantedNs) return preview?.schedule();
    fill(ns, items, "Choose a namespace", wantedNs);
    await loadPods(pod.dataset.initial ?? "", ctr.dataset.initial ?? "");
  })();
}
