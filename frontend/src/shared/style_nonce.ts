// xterm.js (and whatever else a page bundles) writes styles into <style> elements it makes
// at run time. The CSP (portal/security_headers.py) lets a <style> element through only with
// this response's nonce, which base.html puts on the stylesheet link. Stamp it on every
// <style> made with document.createElement, at creation: a nonce given after insertion
// doesn't count. setAttribute rather than .nonce, so that a clone keeps it.
// Import this first in every entry point whose libraries make <style> elements.
const nonce = document.querySelector<HTMLLinkElement>("link[rel=stylesheet][nonce]")?.nonce ?? "";

if (nonce) {
  const create = Document.prototype.createElement;
  Document.prototype.createElement = function (this: Document, tagName: string, options?: ElementCreationOptions): HTMLElement {
    const el = create.call(this, tagName, options);
    if (el instanceof HTMLStyleElement) el.setAttribute("nonce", nonce);
    return el;
  } as typeof Document.prototype.createElement;
}

export {};
