// Flash messages (Django's messages, rendered once by base.html) report what the last action
// did. A page that updates itself soon shows something newer than that report ("You approved
// the request of alice." above alice's next request), so such a page drops them when it does.
export function clearFlash(): void {
  document.getElementById("messages")?.remove();
}
