/* The API-keys page: lists, creates, edits, rotates and deletes the
 * signed-in user's keys through the REST API named by data-api.
 * Built with the DOM only: the page's CSP requires Trusted Types with no
 * policy, so no string is ever parsed as HTML. */
"use strict";

(function () {
  const app = document.getElementById("keys-app");
  if (!app) {
    return;
  }
  const API = app.dataset.api;
  const MAX_GRACE = Number(app.dataset.maxGrace || "0");
  const $ = (id) => document.getElementById(id);

  const state = { keys: [], cursor: "", hasMore: false, editing: null, unedited: null, target: null };

  // ---- small DOM helpers -------------------------------------------------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v === null || v === undefined) {
        continue;
      }
      if (k === "class") {
        e.className = v;
      } else if (k === "text") {
        e.textContent = v;
      } else if (v === true) {
        e.setAttribute(k, "");
      } else {
        e.setAttribute(k, String(v));
      }
    }
    for (const c of children) {
      if (c !== null && c !== undefined && c !== false) {
        e.append(c);
      }
    }
    return e;
  }

  function announce(msg) {
    const s = $("status");
    s.textContent = "";
    // A new text node, so that screen readers announce a repeated message.
    window.setTimeout(() => { s.textContent = msg; }, 30);
  }

  function showPageError(msg, reload) {
    const box = $("page-error");
    box.replaceChildren(document.createTextNode(msg));
    if (reload) {
      box.append(" ", el("a", { href: window.location.pathname, text: "Reload the page" }), " to sign in again.");
    }
    box.hidden = false;
    // The action that failed may be far down the list: bring the message
    // into view (focus scrolls to it; it is role=alert, so it is read out
    // in any case).
    box.focus();
  }

  function clearPageError() {
    const box = $("page-error");
    box.hidden = true;
    box.replaceChildren();
  }

  // ---- the API -----------------------------------------------------------

  class APIError extends Error {
    constructor(status, message, errors) {
      super(message);
      this.status = status;
      this.errors = errors || [];
    }
  }

  async function call(method, path, body) {
    const init = {
      method,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      cache: "no-store",
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(API + path, init);
    } catch (e) {
      throw new APIError(0, "Could not reach the server. Check your connection and try again.");
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      const msg = (data && data.error) || res.statusText || "Request failed";
      throw new APIError(res.status, msg, (data && Array.isArray(data.errors)) ? data.errors : []);
    }
    return data || {};
  }

  // handleCommon deals with the errors that are not about a form's fields.
  // It returns the message to show in the dialog, or "" when handled.
  function commonMessage(err) {
    if (!(err instanceof APIError)) {
      return "Something went wrong. Try again.";
    }
    switch (true) {
      case err.status === 0:
        return err.message;
      case err.status === 401:
        showPageError("Your session has ended.", true);
        return "Your session has ended. Reload the page to sign in again.";
      case err.status === 403:
        return err.message;
      case err.status === 404:
        load();
        return "This key no longer exists. The list has been refreshed.";
      case err.status === 409:
        return err.message;
      case err.status >= 500:
        return "Something went wrong on our side. Try again in a moment.";
      default:
        return err.message;
    }
  }

  // pageFailure shows an error of an action outside the dialogs (loading,
  // enabling, disabling) at the top of the page: for an ended session, with
  // the link to sign in again.
  function pageFailure(err, what) {
    if (err instanceof APIError && err.status === 401) {
      showPageError("Your session has ended.", true);
      return;
    }
    showPageError((what ? what + " " : "") + commonMessage(err), false);
  }

  // ---- formatting --------------------------------------------------------

  const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
  const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

  function fmtDuration(s) {
    const units = [[86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]];
    for (const [n, name] of units) {
      if (s >= n && s % n === 0) {
        const v = s / n;
        return v + " " + name + (v === 1 ? "" : "s");
      }
    }
    return s + " seconds";
  }

  // per is a period after "per" or "every": "minute", "5 minutes".
  function per(s) {
    return fmtDuration(s).replace(/^1 /, "");
  }

  function keyStatus(k) {
    if (k.expires_at && new Date(k.expires_at) <= new Date()) {
      return ["expired", "Expired"];
    }
    if (k.successor_id) {
      return ["retiring", "Retiring"];
    }
    if (!k.enabled) {
      return ["disabled", "Disabled"];
    }
    return ["enabled", "Active"];
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function restrictions(k) {
    const out = [];
    const list = (arr, word) => {
      if (arr && arr.length) {
        if (arr.length <= 2) {
          out.push(...arr);
        } else {
          out.push(plural(arr.length, word));
        }
      }
    };
    list(k.allowed_origins, "origin");
    list(k.allowed_assistants, "assistant");
    if (k.transient_assistant) {
      out.push("transient assistants");
    }
    list(k.scopes, "scope");
    list(k.allowed_ips, "IP range");
    if (k.rate_limit) {
      out.push(k.rate_limit.limit + " per " + per(k.rate_limit.window_seconds));
    }
    if (k.credits) {
      let c = k.credits.remaining + " credits";
      if (k.credits.refill) {
        c += " (+" + k.credits.refill.amount + " every " + per(k.credits.refill.interval_seconds) + ")";
      }
      out.push(c);
    }
    if (k.expires_at) {
      out.push((new Date(k.expires_at) <= new Date() ? "expired " : "expires ") + dateTimeFmt.format(new Date(k.expires_at)));
    }
    return out;
  }

  function timeCell(iso, never) {
    if (!iso) {
      return el("span", { class: "muted", text: never });
    }
    const d = new Date(iso);
    return el("time", { datetime: iso, title: dateTimeFmt.format(d), text: dateFmt.format(d) });
  }

  // ---- the list ----------------------------------------------------------

  async function load() {
    try {
      const res = await call("GET", "?limit=100");
      state.keys = res.data || [];
      setPage(res.pagination);
      render();
    } catch (err) {
      $("loading").hidden = true;
      pageFailure(err, "Could not load your keys.");
    }
  }

  async function loadMore() {
    const btn = $("load-more");
    btn.disabled = true;
    try {
      const res = await call("GET", "?limit=100&cursor=" + encodeURIComponent(state.cursor));
      const seen = new Set(state.keys.map((k) => k.id));
      for (const k of res.data || []) {
        if (!seen.has(k.id)) {
          state.keys.push(k);
        }
      }
      setPage(res.pagination);
      render();
      announce("Loaded more keys.");
    } catch (err) {
      pageFailure(err);
    } finally {
      btn.disabled = false;
    }
  }

  function setPage(p) {
    state.cursor = (p && p.next_cursor) || "";
    state.hasMore = Boolean(p && p.has_more && state.cursor);
  }

  function render() {
    $("loading").hidden = true;
    const table = $("keys");
    const tbody = table.tBodies[0];
    tbody.replaceChildren(...state.keys.map(row));
    table.hidden = state.keys.length === 0;
    $("no-keys").hidden = state.keys.length !== 0;
    $("load-more").hidden = !state.hasMore;
  }

  function actionButton(action, label, k, extra) {
    return el("button", {
      type: "button",
      class: "btn btn-small" + (extra ? " " + extra : ""),
      "data-action": action,
      "aria-label": label + " " + (k.name || "key"),
      text: label,
    });
  }

  function row(k) {
    const [status, statusLabel] = keyStatus(k);
    const r = restrictions(k);
    const tr = el("tr", { "data-key-id": k.id, "data-enabled": String(Boolean(k.enabled)), "data-status": status });
    tr.append(
      el("td", { class: "cell-name", "data-label": "Name" },
        el("span", { class: "key-name", text: k.name || "Untitled key" }), " ",
        el("span", { class: "badge badge-" + k.key_type, text: k.key_type === "public" ? "Public" : "Private" })),
      el("td", { class: "cell-hint", "data-label": "Key" }, el("code", { class: "hint", text: k.hint || "" })),
      el("td", { "data-label": "Status" }, el("span", { class: "status status-" + status, text: statusLabel })),
      el("td", { class: "cell-restrictions", "data-label": "Restrictions" },
        r.length ? el("ul", { class: "tags" }, ...r.map((t) => el("li", { text: t })))
          : el("span", { class: "muted", text: "None" })),
      el("td", { "data-label": "Created" }, timeCell(k.created_at, "")),
      el("td", { "data-label": "Last used" }, timeCell(k.last_used_at, "Never")),
    );
    const actions = el("div", { class: "row-actions" });
    actions.append(actionButton("edit", "Edit", k));
    actions.append(k.enabled ? actionButton("disable", "Disable", k) : actionButton("enable", "Enable", k));
    if (!k.successor_id) {
      actions.append(actionButton("rotate", "Rotate", k));
    }
    actions.append(actionButton("delete", "Delete", k, "btn-danger-quiet"));
    tr.append(el("td", { class: "cell-actions" }, actions));
    return tr;
  }

  function keyByID(id) {
    return state.keys.find((k) => k.id === id);
  }

  // ---- dialogs -----------------------------------------------------------

  // Each dialog remembers how to find the control that opened it, so focus
  // goes back there when it closes, even after the list was re-rendered.
  const returnTo = new WeakMap();

  function focusTarget(opener) {
    if (opener instanceof HTMLElement) {
      const tr = opener.closest("tr[data-key-id]");
      const action = opener.dataset.action;
      return () => {
        if (opener.isConnected) {
          return opener;
        }
        if (tr) {
          const row = document.querySelector('tr[data-key-id="' + CSS.escape(tr.dataset.keyId) + '"]');
          if (row) {
            return row.querySelector('[data-action="' + action + '"]') || row.querySelector('[data-action="edit"]');
          }
        }
        return $("new-key");
      };
    }
    return () => $("new-key");
  }

  function openDialog(d, opener) {
    returnTo.set(d, focusTarget(opener));
    d.showModal();
  }

  // closeDialog closes d; with restore false, focus is left to whatever
  // opens next (another dialog).
  function closeDialog(d, restore) {
    if (restore === false) {
      returnTo.delete(d);
    }
    if (d.open) {
      d.close();
    }
  }

  for (const d of document.querySelectorAll("dialog")) {
    d.addEventListener("close", () => {
      const target = returnTo.get(d);
      returnTo.delete(d);
      if (target) {
        const t = target();
        if (t) {
          t.focus();
        }
      }
    });
    for (const b of d.querySelectorAll('[data-action="cancel"]')) {
      b.addEventListener("click", () => closeDialog(d));
    }
  }

  function busy(button, on) {
    button.disabled = on;
    button.setAttribute("aria-busy", on ? "true" : "false");
  }

  // ---- the key form (create and edit) ------------------------------------

  function fieldError(prefix, field) {
    return el("p", { id: prefix + "-" + field + "-error", class: "field-error", hidden: true });
  }

  function hintEl(prefix, field, text) {
    return el("p", { id: prefix + "-" + field + "-hint", class: "hint-text", text });
  }

  function describe(input, prefix, field, hasHint) {
    const ids = [prefix + "-" + field + "-error"];
    if (hasHint) {
      ids.unshift(prefix + "-" + field + "-hint");
    }
    input.setAttribute("aria-describedby", ids.join(" "));
    return input;
  }

  function textField(prefix, field, label, opts) {
    const id = prefix + "-" + field;
    const input = opts.multi
      ? el("textarea", { id, name: field, class: "input", rows: 3, spellcheck: "false", placeholder: opts.placeholder })
      : el("input", { id, name: field, class: "input", type: opts.type || "text", placeholder: opts.placeholder,
        min: opts.min, step: opts.step, inputmode: opts.inputmode, autocomplete: "off", maxlength: opts.maxlength });
    describe(input, prefix, field, Boolean(opts.hint));
    return el("div", { class: "field" + (opts.class ? " " + opts.class : "") },
      el("label", { for: id, class: "label", text: label }),
      opts.hint ? hintEl(prefix, field, opts.hint) : null,
      input,
      opts.after || null,
      fieldError(prefix, field));
  }

  function checkField(prefix, field, label, hint) {
    const id = prefix + "-" + field;
    const input = describe(el("input", { id, name: field, type: "checkbox", class: "check" }), prefix, field, Boolean(hint));
    return el("div", { class: "field field-check" },
      input,
      el("div", {},
        el("label", { for: id, class: "label", text: label }),
        hint ? hintEl(prefix, field, hint) : null,
        fieldError(prefix, field)));
  }

  // optionalGroup is a fieldset whose inputs apply only while its checkbox
  // is checked.
  function optionalGroup(prefix, field, legend, hint, body) {
    const box = checkField(prefix, field, legend, hint);
    const inner = el("div", { class: "group-body", id: prefix + "-" + field + "-fields" }, ...body);
    const fs = el("fieldset", { class: "group" }, el("legend", { class: "visually-hidden", text: legend }), box, inner);
    const check = box.querySelector("input");
    check.setAttribute("aria-controls", inner.id);
    const sync = () => {
      inner.hidden = !check.checked;
      for (const i of inner.querySelectorAll("input, select")) {
        if (i.closest(".group-body") === inner) {
          i.disabled = !check.checked;
        }
      }
    };
    check.addEventListener("change", sync);
    fs.sync = sync;
    return fs;
  }

  function buildForm(form, prefix) {
    const f = [];
    f.push(textField(prefix, "name", "Name", { placeholder: "e.g. Production server", maxlength: 200,
      hint: "Only for you: it helps you tell your keys apart." }));

    if (prefix === "create") {
      const radio = (value, label, text) => {
        const id = prefix + "-key_type-" + value;
        return el("div", { class: "radio" },
          el("input", { type: "radio", id, name: "key_type", value, class: "check",
            "aria-describedby": id + "-hint " + prefix + "-key_type-error" }),
          el("div", {},
            el("label", { for: id, class: "label", text: label }),
            el("p", { id: id + "-hint", class: "hint-text", text })));
      };
      f.push(el("fieldset", { class: "field radios", id: prefix + "-key_type" },
        el("legend", { class: "label", text: "Key type" }),
        radio("private", "Private", "For your servers. Never put it in a web page or an app."),
        radio("public", "Public", "For web pages and apps: safe to expose, limited to the origins you list."),
        fieldError(prefix, "key_type")));
    }

    const addSite = el("button", { type: "button", class: "btn btn-small add-site", id: prefix + "-add-origin", text: "Add this site" });
    addSite.append(el("span", { class: "visually-hidden", text: " (" + window.location.origin + ")" }));
    f.push(textField(prefix, "allowed_origins", "Allowed origins", { multi: true, placeholder: "https://app.example.com",
      hint: "One per line. Browsers may use the key only from these origins. Empty: any origin.", after: addSite }));
    f.push(textField(prefix, "allowed_assistants", "Allowed assistants", { multi: true, placeholder: "assistant id",
      hint: "One assistant id per line. Empty: any assistant." }));
    f.push(checkField(prefix, "transient_assistant", "Allow transient assistants",
      "Let the key start calls with an assistant defined in the request."));
    f.push(textField(prefix, "scopes", "Scopes", { multi: true, placeholder: "calls:write",
      hint: "One per line, as resource:action (calls:write, calls:*). Empty: every scope." }));
    f.push(textField(prefix, "allowed_ips", "Allowed client IPs", { multi: true, placeholder: "203.0.113.0/24",
      hint: "One IP address or CIDR range per line. Empty: any address." }));
    f.push(textField(prefix, "expires_at", "Expires", { type: "datetime-local",
      hint: "In your local time. Empty: never expires." }));
    f.push(optionalGroup(prefix, "rate_limit", "Limit the request rate", "Refuse requests above a rate.", [
      el("div", { class: "field-row" },
        textField(prefix, "rate_limit-limit", "Requests", { type: "number", min: 1, step: 1, inputmode: "numeric", placeholder: "100" }),
        textField(prefix, "rate_limit-window_seconds", "Per (seconds)", { type: "number", min: 1, step: 1, inputmode: "numeric", placeholder: "60" })),
    ]));
    const refill = optionalGroup(prefix, "credits-refill", "Refill credits", "Add credits back on a schedule.", [
      el("div", { class: "field-row" },
        textField(prefix, "credits-refill-amount", "Amount", { type: "number", min: 1, step: 1, inputmode: "numeric", placeholder: "1000" }),
        textField(prefix, "credits-refill-interval_seconds", "Every (seconds)", { type: "number", min: 1, step: 1, inputmode: "numeric", placeholder: "86400",
          hint: "86400 is one day." })),
    ]);
    refill.classList.add("group-nested");
    const credits = optionalGroup(prefix, "credits", "Limit the number of uses", "Each request spends one credit.", [
      textField(prefix, "credits-remaining", "Credits remaining", { type: "number", min: 0, step: 1, inputmode: "numeric", placeholder: "1000" }),
      refill,
    ]);
    f.push(credits);
    f.push(checkField(prefix, "enabled", "Enabled", "A disabled key is refused until you enable it again."));

    form.querySelector(".fields").replaceChildren(...f);
    form.groups = [credits, credits.querySelector("fieldset"), form.querySelector("#" + prefix + "-rate_limit").closest("fieldset")];
    // Keep the refill group's inputs disabled while credits are off.
    const creditsCheck = form.querySelector("#" + prefix + "-credits");
    const refillCheck = form.querySelector("#" + prefix + "-credits-refill");
    const syncRefill = () => {
      refill.sync();
      refillCheck.disabled = !creditsCheck.checked;
      if (!creditsCheck.checked) {
        for (const i of refill.querySelectorAll(".group-body input")) {
          i.disabled = true;
        }
      }
    };
    creditsCheck.addEventListener("change", syncRefill);
    refillCheck.addEventListener("change", syncRefill);
    form.syncGroups = () => {
      form.groups[2].sync();
      credits.sync();
      syncRefill();
    };

    addSite.addEventListener("click", () => {
      const ta = form.querySelector("#" + prefix + "-allowed_origins");
      const lines = splitLines(ta.value);
      if (!lines.includes(window.location.origin)) {
        lines.push(window.location.origin);
      }
      ta.value = lines.join("\n");
      updateAddSite(form, prefix);
      announce("Added " + window.location.origin + " to the allowed origins.");
    });
    form.querySelector("#" + prefix + "-allowed_origins").addEventListener("input", () => updateAddSite(form, prefix));
    for (const r of form.querySelectorAll('input[name="key_type"]')) {
      r.addEventListener("change", () => updateAddSite(form, prefix));
    }
  }

  // updateAddSite offers "Add this site" for a public key whose origins do
  // not list the page's own origin.
  function updateAddSite(form, prefix) {
    const btn = form.querySelector("#" + prefix + "-add-origin");
    const type = prefix === "create"
      ? (form.querySelector('input[name="key_type"]:checked') || {}).value
      : (state.editing || {}).key_type;
    const listed = splitLines(form.querySelector("#" + prefix + "-allowed_origins").value).includes(window.location.origin);
    btn.hidden = type !== "public" || listed;
    // An empty list means opposite things for the two types.
    const hint = form.querySelector("#" + prefix + "-allowed_origins-hint");
    if (hint) {
      hint.textContent = "One per line. Browsers may use the key only from these origins. " +
        (type === "private" ? "Empty: no browser may use it (right for a server's key)." : "Empty: any origin.");
    }
  }

  function splitLines(s) {
    return s.split(/[\r\n]+/).map((x) => x.trim()).filter((x) => x !== "");
  }

  // toLocalInput turns an RFC 3339 time into a datetime-local value.
  function toLocalInput(iso) {
    if (!iso) {
      return "";
    }
    const d = new Date(iso);
    const p = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes());
  }

  function fill(form, prefix, k) {
    const v = (field) => form.querySelector("#" + prefix + "-" + field);
    v("name").value = k.name || "";
    v("allowed_origins").value = (k.allowed_origins || []).join("\n");
    v("allowed_assistants").value = (k.allowed_assistants || []).join("\n");
    v("transient_assistant").checked = Boolean(k.transient_assistant);
    v("scopes").value = (k.scopes || []).join("\n");
    v("allowed_ips").value = (k.allowed_ips || []).join("\n");
    v("enabled").checked = k.enabled !== false;
    v("expires_at").value = toLocalInput(k.expires_at);
    v("rate_limit").checked = Boolean(k.rate_limit);
    v("rate_limit-limit").value = k.rate_limit ? k.rate_limit.limit : "";
    v("rate_limit-window_seconds").value = k.rate_limit ? k.rate_limit.window_seconds : "";
    v("credits").checked = Boolean(k.credits);
    v("credits-remaining").value = k.credits ? k.credits.remaining : "";
    const refill = k.credits && k.credits.refill;
    v("credits-refill").checked = Boolean(refill);
    v("credits-refill-amount").value = refill ? refill.amount : "";
    v("credits-refill-interval_seconds").value = refill ? refill.interval_seconds : "";
    form.syncGroups();
    updateAddSite(form, prefix);
  }

  // read returns the request body of the form, or null after showing the
  // problems found before sending.
  function read(form, prefix) {
    const v = (field) => form.querySelector("#" + prefix + "-" + field);
    const probs = [];
    const int = (field, min) => {
      const s = v(field).value.trim();
      const n = Number(s);
      if (s === "" || !Number.isInteger(n) || n < min) {
        probs.push(field.replace(/-/g, ".") + ": must be a whole number" + (min > 0 ? " of at least " + min : " of 0 or more"));
        return null;
      }
      return n;
    };
    const body = {
      name: v("name").value.trim(),
      allowed_origins: splitLines(v("allowed_origins").value),
      allowed_assistants: splitLines(v("allowed_assistants").value),
      transient_assistant: v("transient_assistant").checked,
      scopes: splitLines(v("scopes").value),
      allowed_ips: splitLines(v("allowed_ips").value),
      enabled: v("enabled").checked,
      expires_at: null,
      rate_limit: null,
      credits: null,
    };
    if (prefix === "create") {
      const t = form.querySelector('input[name="key_type"]:checked');
      if (!t) {
        probs.push("key_type: choose private or public");
      } else {
        body.key_type = t.value;
      }
    }
    const exp = v("expires_at").value;
    if (exp) {
      const d = new Date(exp);
      if (Number.isNaN(d.getTime())) {
        probs.push("expires_at: is not a date and time");
      } else {
        body.expires_at = d.toISOString().replace(/\.\d{3}Z$/, "Z");
      }
    }
    if (v("rate_limit").checked) {
      body.rate_limit = { limit: int("rate_limit-limit", 1), window_seconds: int("rate_limit-window_seconds", 1) };
    }
    if (v("credits").checked) {
      body.credits = { remaining: int("credits-remaining", 0), refill: null };
      if (v("credits-refill").checked) {
        body.credits.refill = { amount: int("credits-refill-amount", 1), interval_seconds: int("credits-refill-interval_seconds", 1) };
      }
    }
    if (probs.length) {
      showErrors(form, prefix, probs, CHECK);
      return null;
    }
    return body;
  }

  const CHECK = "Check the highlighted fields.";

  function clearErrors(form, prefix) {
    for (const e of form.querySelectorAll(".field-error")) {
      e.textContent = "";
      e.hidden = true;
    }
    for (const i of form.querySelectorAll('[aria-invalid="true"]')) {
      i.removeAttribute("aria-invalid");
    }
    const g = $(prefix + "-error");
    g.replaceChildren();
    g.hidden = true;
  }

  // showErrors puts each "field: reason" next to the field it names (an
  // index names a line of a list field, a dot a member of a group), and
  // the rest at the top of the form.
  function showErrors(form, prefix, errors, message) {
    clearErrors(form, prefix);
    const general = [];
    let first = null;
    for (const entry of errors) {
      const m = /^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): ?(.*)$/s.exec(entry);
      let target = null;
      let text = entry;
      if (m) {
        const parts = m[1].split(".");
        const idx = /\[(\d+)\]/.exec(m[1]);
        text = (idx ? "Line " + (Number(idx[1]) + 1) + ": " : "") + m[2];
        const names = parts.map((p) => p.replace(/\[\d+\]/, ""));
        for (let n = names.length; n > 0 && !target; n--) {
          const errEl = form.querySelector("#" + prefix + "-" + names.slice(0, n).join("-") + "-error");
          if (errEl) {
            target = errEl;
            if (n < names.length) {
              text = names.slice(n).join(" ") + ": " + text;
            }
          }
        }
      }
      if (!target) {
        general.push(entry);
        continue;
      }
      target.append(el("span", { class: "error-line", text: text.charAt(0).toUpperCase() + text.slice(1) }));
      target.hidden = false;
      const input = form.querySelector("#" + target.id.replace(/-error$/, ""));
      const focusable = input && (input.matches("fieldset") ? input.querySelector("input") : input);
      if (input) {
        input.setAttribute("aria-invalid", "true");
      }
      if (!first && focusable) {
        first = focusable;
      }
    }
    const g = $(prefix + "-error");
    if (general.length) {
      g.append(el("span", { text: message && message !== CHECK ? message : "The key could not be saved:" }),
        el("ul", {}, ...general.map((t) => el("li", { text: t }))));
      g.hidden = false;
    } else if (message) {
      g.append(el("span", { text: message }));
      g.hidden = false;
    }
    if (first) {
      first.focus();
    } else if (!g.hidden) {
      g.setAttribute("tabindex", "-1");
      g.focus();
    }
  }

  function formFailure(form, prefix, err) {
    if (err instanceof APIError && err.status === 400) {
      const placed = err.errors.length ? CHECK : err.message;
      showErrors(form, prefix, err.errors, placed);
      return;
    }
    showErrors(form, prefix, [], commonMessage(err));
  }

  // ---- create ------------------------------------------------------------

  const createForm = $("create-form");
  const editForm = $("edit-form");
  buildForm(createForm, "create");
  buildForm(editForm, "edit");

  $("new-key").addEventListener("click", (ev) => {
    createForm.reset();
    clearErrors(createForm, "create");
    $("create-enabled").checked = true;
    $("create-key_type-private").checked = true;
    createForm.syncGroups();
    updateAddSite(createForm, "create");
    openDialog($("create-dialog"), ev.currentTarget);
    $("create-name").focus();
  });

  createForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = read(createForm, "create");
    if (!body) {
      return;
    }
    const btn = $("create-submit");
    busy(btn, true);
    try {
      const res = await call("POST", "", { api_key: body });
      const k = res.data;
      closeDialog($("create-dialog"), false);
      state.keys.unshift(stripValue(k));
      render();
      showValue(k, "Key " + (k.name || "") + " created.", res.warning, $("new-key"));
    } catch (err) {
      formFailure(createForm, "create", err);
    } finally {
      busy(btn, false);
    }
  });

  function stripValue(k) {
    const c = Object.assign({}, k);
    delete c.key_value;
    return c;
  }

  // ---- the value dialog --------------------------------------------------

  function showValue(k, message, note, opener) {
    $("key-value").value = k.key_value;
    $("value-name").textContent = k.name || "your key";
    $("copy-status").textContent = "";
    const n = $("value-note");
    n.textContent = note || "";
    n.hidden = !note;
    openDialog($("value-dialog"), opener);
    $("key-value").focus();
    $("key-value").select();
    announce(message);
  }

  $("copy-value").addEventListener("click", async () => {
    const input = $("key-value");
    const status = $("copy-status");
    try {
      await navigator.clipboard.writeText(input.value);
      status.textContent = "Copied";
      status.className = "copy-status ok";
    } catch (e) {
      input.focus();
      input.select();
      status.textContent = "Could not copy automatically: the key is selected, press Ctrl+C (⌘C on a Mac) to copy it.";
      status.className = "copy-status";
    }
  });

  $("value-dialog").addEventListener("close", () => {
    $("key-value").value = "";
  });
  $("value-done").addEventListener("click", () => closeDialog($("value-dialog")));

  // ---- row actions -------------------------------------------------------

  $("keys").addEventListener("click", (ev) => {
    const btn = ev.target.closest("button[data-action]");
    if (!btn) {
      return;
    }
    const tr = btn.closest("tr[data-key-id]");
    const k = tr && keyByID(tr.dataset.keyId);
    if (!k) {
      return;
    }
    switch (btn.dataset.action) {
      case "edit":
        openEdit(k, btn);
        break;
      case "disable":
      case "enable":
        setEnabled(k, btn.dataset.action === "enable", btn);
        break;
      case "rotate":
        openRotate(k, btn);
        break;
      case "delete":
        openDelete(k, btn);
        break;
    }
  });

  function replaceKey(k) {
    const i = state.keys.findIndex((x) => x.id === k.id);
    if (i >= 0) {
      state.keys[i] = stripValue(k);
    } else {
      state.keys.unshift(stripValue(k));
    }
  }

  function openEdit(k, opener) {
    state.editing = k;
    clearErrors(editForm, "edit");
    fill(editForm, "edit", k);
    // The form as filled, read as a request would be: saving sends only
    // what differs from it. An update is partial, and sending a member
    // unchanged is not a no-op: credits would be set again (spends since
    // the page loaded undone, the refill restarted), and an expiry re-sent
    // without its seconds, or refused if it has passed.
    state.unedited = read(editForm, "edit");
    clearErrors(editForm, "edit");
    $("edit-sub").textContent = (k.key_type === "public" ? "Public key " : "Private key ") + (k.hint || "");
    openDialog($("edit-dialog"), opener);
    $("edit-name").focus();
  }

  editForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const k = state.editing;
    if (!k) {
      return;
    }
    const body = read(editForm, "edit");
    if (!body) {
      return;
    }
    if (state.unedited) {
      for (const [name, v] of Object.entries(state.unedited)) {
        if (JSON.stringify(body[name]) === JSON.stringify(v)) {
          delete body[name];
        }
      }
    }
    if (Object.keys(body).length === 0) {
      closeDialog($("edit-dialog"));
      announce("No changes to save.");
      return;
    }
    const btn = $("edit-submit");
    busy(btn, true);
    try {
      const res = await call("PUT", "/" + encodeURIComponent(k.id), { api_key: body });
      replaceKey(res.data);
      render();
      closeDialog($("edit-dialog"));
      announce("Saved the changes to " + (res.data.name || "the key") + ".");
    } catch (err) {
      formFailure(editForm, "edit", err);
    } finally {
      busy(btn, false);
    }
  });

  async function setEnabled(k, enabled, btn) {
    busy(btn, true);
    clearPageError();
    try {
      const res = await call("PUT", "/" + encodeURIComponent(k.id), { api_key: { enabled } });
      replaceKey(res.data);
      render();
      const row = document.querySelector('tr[data-key-id="' + CSS.escape(k.id) + '"]');
      const next = row && row.querySelector('[data-action="' + (enabled ? "disable" : "enable") + '"]');
      if (next) {
        next.focus();
      }
      announce((res.data.name || "The key") + (enabled ? " is enabled." : " is disabled."));
    } catch (err) {
      busy(btn, false);
      pageFailure(err);
    }
  }

  // ---- rotate ------------------------------------------------------------

  const GRACES = [[0, "No grace period: stop at once"], [3600, "1 hour"], [86400, "1 day"], [604800, "7 days"], [2592000, "30 days"]];

  function openRotate(k, opener) {
    state.target = k;
    $("rotate-name").textContent = k.name || k.hint || "this key";
    const sel = $("rotate-grace");
    const opts = GRACES.filter(([s]) => s <= MAX_GRACE || s === 0)
      .map(([s, label]) => el("option", { value: String(s), text: label }));
    sel.replaceChildren(...opts);
    sel.value = opts.some((o) => o.value === "86400") ? "86400" : "0";
    const e = $("rotate-error");
    e.hidden = true;
    e.textContent = "";
    openDialog($("rotate-dialog"), opener);
    sel.focus();
  }

  $("rotate-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const k = state.target;
    const btn = $("rotate-confirm");
    const grace = Number($("rotate-grace").value);
    busy(btn, true);
    try {
      const res = await call("POST", "/" + encodeURIComponent(k.id) + "/rotate", { grace_period_seconds: grace });
      const nk = res.data;
      closeDialog($("rotate-dialog"), false);
      await load();
      let note = grace > 0
        ? "The old key keeps working for " + fmtDuration(grace) + ", then stops. Update your services before then."
        : "The old key no longer works.";
      if (res.warning) {
        note = res.warning;
      }
      const opener = document.querySelector('tr[data-key-id="' + CSS.escape(nk.id) + '"] [data-action="edit"]');
      showValue(nk, "Rotated " + (k.name || "the key") + ".", note, opener);
    } catch (err) {
      const e = $("rotate-error");
      e.textContent = err instanceof APIError && err.status === 400 && err.errors.length ? err.errors.join("; ") : commonMessage(err);
      e.hidden = false;
    } finally {
      busy(btn, false);
    }
  });

  // ---- delete ------------------------------------------------------------

  function openDelete(k, opener) {
    state.target = k;
    $("delete-name").textContent = (k.name || "this key") + (k.hint ? " (" + k.hint + ")" : "");
    const e = $("delete-error");
    e.hidden = true;
    e.textContent = "";
    openDialog($("delete-dialog"), opener);
    $("delete-dialog").querySelector('[data-action="cancel"]').focus();
  }

  $("delete-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const k = state.target;
    const btn = $("delete-confirm");
    busy(btn, true);
    try {
      await call("DELETE", "/" + encodeURIComponent(k.id));
      state.keys = state.keys.filter((x) => x.id !== k.id);
      render();
      closeDialog($("delete-dialog"), false);
      $("new-key").focus();
      announce("Deleted " + (k.name || "the key") + ".");
    } catch (err) {
      if (err instanceof APIError && err.status === 404) {
        closeDialog($("delete-dialog"), false);
        $("new-key").focus();
        load();
        announce("The key was already deleted.");
        return;
      }
      const e = $("delete-error");
      e.textContent = commonMessage(err);
      e.hidden = false;
    } finally {
      busy(btn, false);
    }
  });

  $("load-more").addEventListener("click", loadMore);

  load();
})();
