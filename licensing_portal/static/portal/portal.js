// Copy buttons for secrets shown once (API keys, tokens): no framework needed.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copyTarget);
  if (!field) return;
  field.select();
  const done = () => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = label), 1500);
  };
  if (navigator.clipboard) {
    navigator.clipboard.writeText(field.value).then(done, () => document.execCommand("copy") && done());
  } else if (document.execCommand("copy")) {
    done();
  }
});

// Forms that ask first (revoke a key, deactivate a person): no inline handlers, so the
// Content-Security-Policy can forbid inline script.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// htmx leaves 4xx answers unswapped, so a refused change would look like nothing happened and
// the field would keep the unsaved number. The portal answers a refusal with the fragment
// re-rendered: the reason beside the field and the value as it really is now. Swap those.
const SWAP_REFUSALS = new Set([400, 409, 422]);
document.addEventListener("htmx:beforeSwap", (event) => {
  if (SWAP_REFUSALS.has(event.detail.xhr.status)) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// Focus the first field the answer marks invalid, so keyboard and screen-reader users land
// on the reason.
document.addEventListener("htmx:afterSwap", (event) => {
  const invalid = event.detail.target.querySelector("[aria-invalid='true']");
  if (invalid) invalid.focus();
});

// A form htmx will not send because the browser finds a field invalid: say why, as the
// browser would without htmx.
document.addEventListener("htmx:validation:halted", (event) => {
  const form = event.detail.elt && event.detail.elt.closest("form");
  if (form) form.reportValidity();
});

// Any other failure (no permission, the network, the server) still says so beside the form
// that was sent (or the part of the page being refreshed), instead of nothing at all.
function showFailure(elt, text) {
  const anchor = (elt && elt.closest("form")) || elt;
  if (!anchor || !anchor.parentNode) return null;
  let note = anchor.parentNode.querySelector(":scope > .htmx-failure");
  if (!note) {
    note = document.createElement("p");
    note.className = "message message-error htmx-failure";
    note.setAttribute("role", "alert");
    anchor.parentNode.insertBefore(note, anchor);
  }
  note.textContent = text;
  return note;
}
function failureText(elt, status) {
  if (!(elt && elt.closest("form"))) {
    return `This part of the page could not be refreshed (error ${status}). Reload the page.`;
  }
  if (status === 403) return "Refused: your role may not make this change. Nothing was changed.";
  if (status === 404) {
    return "Not found: this item no longer exists or is not yours to change. Reload the page.";
  }
  return `The change did not go through (error ${status}). Reload the page and try again.`;
}
// A session that ended or changed (logged out, or logged in again, in another tab) is not a
// refusal: the portal answers with X-Session and the sentence to show; offer to log in again,
// coming back to this page (licensing_portal/lost_sessions.py).
function showLostSession(elt, xhr) {
  const note = showFailure(elt || document.querySelector("main"), xhr.responseText);
  if (!note) return;
  note.classList.add("session-lost");
  note.append(" ");
  const link = document.createElement("a");
  link.href = xhr.getResponseHeader("X-Session-Login") ||
    `/login/?next=${encodeURIComponent(location.pathname + location.search)}`;
  link.textContent = "Log in again";
  note.append(link);
}
document.addEventListener("htmx:responseError", (event) => {
  const xhr = event.detail.xhr;
  if (xhr.getResponseHeader("X-Session")) {
    showLostSession(event.detail.elt, xhr);
    return;
  }
  const status = xhr.status;
  if (SWAP_REFUSALS.has(status)) return;
  showFailure(event.detail.elt, failureText(event.detail.elt, status));
});
document.addEventListener("htmx:sendError", (event) => {
  showFailure(
    event.detail.elt,
    "The portal could not be reached: nothing was changed. Check the connection and try again.",
  );
});
// A later answer that works clears the note.
document.addEventListener("htmx:afterRequest", (event) => {
  if (!event.detail.successful) return;
  const anchor = (event.detail.elt && event.detail.elt.closest("form")) || event.detail.elt;
  const note = anchor && anchor.parentNode && anchor.parentNode.querySelector(":scope > .htmx-failure");
  if (note) note.remove();
});

// Tables on a phone: each cell carries its column's name (data-label) so that the stylesheet
// can turn rows into small cards (portal.css, "Tables on a phone") and no page scrolls
// sideways. Tables marked .stack label their own cells; the order lines have their own rules.
function labelTables(root) {
  for (const table of root.querySelectorAll("main table")) {
    // A visually hidden table (a chart's data, for screen readers) keeps its 1 px box.
    if (table.classList.contains("stack") || table.classList.contains("visually-hidden")) continue;
    if (table.closest(".lines-stack")) continue;
    const headRow = table.tHead && table.tHead.rows[0];
    if (!headRow) continue;
    const names = [];
    for (const th of headRow.cells) {
      const name = th.textContent.replace(/[↑↓▲▼]/g, "").replace(/\s+/g, " ").trim();
      for (let i = 0; i < th.colSpan; i++) names.push(name);
    }
    table.dataset.stack = "";
    for (const body of table.tBodies) {
      for (const row of body.rows) {
        let column = 0;
        for (const cell of row.cells) {
          if (cell.colSpan === 1 && names[column] && !cell.hasAttribute("data-label")) {
            cell.dataset.label = names[column];
          }
          column += cell.colSpan;
        }
      }
    }
  }
}
labelTables(document);
document.addEventListener("htmx:afterSettle", (event) => labelTables(event.detail.target.ownerDocument));
