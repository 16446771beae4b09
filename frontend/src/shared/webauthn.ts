// WebAuthn in the browser: registering a security key on the profile page, and touching it to
// approve a request whose rule asks for it (portal/sso/security_keys.py checks both).
// The server's options are JSON with base64url byte strings; the browser API wants ArrayBuffers.

function fromB64url(s: string): ArrayBuffer {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

function toB64url(buf: ArrayBuffer | null): string | null {
  if (buf === null) return null;
  let bin = "";
  new Uint8Array(buf).forEach((b) => (bin += String.fromCharCode(b)));
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function descriptors(list: Json[] | undefined): PublicKeyCredentialDescriptor[] | undefined {
  return list?.map((c) => ({ ...c, id: fromB64url(c.id) }) as PublicKeyCredentialDescriptor);
}

async function postJson(url: string, csrf: string, body: unknown): Promise<Response> {
  return fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRFToken": csrf, "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
}

async function problem(res: Response): Promise<string> {
  try {
    return ((await res.json()) as { detail?: string }).detail ?? `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

export async function registerKey(form: HTMLFormElement, status: HTMLElement): Promise<void> {
  const data = new FormData(form);
  const csrf = String(data.get("csrfmiddlewaretoken") ?? "");
  status.textContent = "Touch your security key…";
  const optionsRes = await postJson(form.dataset.optionsUrl!, csrf, {});
  if (!optionsRes.ok) {
    const body = (await optionsRes.json().catch(() => ({}))) as { detail?: string; reauth?: string };
    if (body.reauth) {
      window.location.assign(body.reauth); // a fresh sign-in first, then back to the profile page
      return;
    }
    status.textContent = body.detail ?? `HTTP ${optionsRes.status}`;
    return;
  }
  const o = (await optionsRes.json()) as Json;
  const publicKey: PublicKeyCredentialCreationOptions = {
    ...o,
    challenge: fromB64url(o.challenge),
    user: { ...o.user, id: fromB64url(o.user.id) },
    excludeCredentials: descriptors(o.excludeCredentials),
  } as PublicKeyCredentialCreationOptions;
  let cred: PublicKeyCredential;
  try {
    cred = (await navigator.credentials.create({ publicKey })) as PublicKeyCredential;
  } catch (err) {
    status.textContent = `No key was registered (${(err as Error).name}).`;
    return;
  }
  const att = cred.response as AuthenticatorAttestationResponse;
  const credential = {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    response: {
      clientDataJSON: toB64url(att.clientDataJSON),
      attestationObject: toB64url(att.attestationObject),
      transports: att.getTransports?.() ?? [],
    },
    clientExtensionResults: cred.getClientExtensionResults(),
  };
  const saved = await postJson(form.dataset.registerUrl!, csrf, { name: data.get("name"), credential });
  if (!saved.ok) {
    status.textContent = await problem(saved);
    return;
  }
  window.location.reload();
}

// The approve button of a form with data-key-options: get the challenge for this request, have
// the key sign it, put the answer in the form's `webauthn` field, then submit as usual.
export async function touchToApprove(form: HTMLFormElement, submitter: HTMLButtonElement): Promise<void> {
  const csrf = String(new FormData(form).get("csrfmiddlewaretoken") ?? "");
  const field = form.querySelector<HTMLInputElement>('input[name="webauthn"]')!;
  const res = await postJson(form.dataset.keyOptions!, csrf, {});
  if (res.ok) {
    const o = (await res.json()) as Json;
    const publicKey = {
      ...o,
      challenge: fromB64url(o.challenge),
      allowCredentials: descriptors(o.allowCredentials),
    } as PublicKeyCredentialRequestOptions;
    try {
      const cred = (await navigator.credentials.get({ publicKey })) as PublicKeyCredential;
      const a = cred.response as AuthenticatorAssertionResponse;
      field.value = JSON.stringify({
        id: cred.id,
        rawId: toB64url(cred.rawId),
        type: cred.type,
        response: {
          clientDataJSON: toB64url(a.clientDataJSON),
          authenticatorData: toB64url(a.authenticatorData),
          signature: toB64url(a.signature),
          userHandle: toB64url(a.userHandle),
        },
        clientExtensionResults: cred.getClientExtensionResults(),
      });
    } catch {
      field.value = ""; // no touch: the server refuses and says so
    }
  }
  // Submitted either way: without a touch the portal answers with what is missing.
  form.dataset.keyDone = "1";
  form.requestSubmit(submitter);
}
