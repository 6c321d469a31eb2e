/* The registration desk: MRZ from a keyboard-wedge reader, photo (webcam or file) with its
 * live quality result, the check step (integrity checks + watchlist instructions), the save
 * and the receipt, all on one screen and all by keyboard.
 *
 * Flow: MRZ lines + Enter -> the server parses them, the form fills and shows the checks,
 * focus moves to "Check & save" -> Enter runs the checks -> with no warning at all, the
 * decision "cleared" is preselected and Enter saves; with any warning (document, MRZ,
 * minor, stay, name, photo, watchlist) no decision is preselected and the officer must
 * choose one, with the warnings in view -> the receipt opens in the page with the print
 * dialog, and a confirmation line shows at the top, by the MRZ box, for the next traveller.
 * The server is the single source of truth: this script never parses an MRZ or decides
 * anything itself.
 *
 * A half-finished registration is kept in the browser, encrypted (AES-GCM) under a key
 * only the officer's pages carry (``data-draft-key``), so that it survives an idle logout,
 * Back or a reload and never lies on disk in clear; it is dropped once saved or on "New
 * traveller". Without WebCrypto (plain http) nothing is kept.
 */
"use strict";

(function () {
  const form = document.getElementById("desk");
  if (!form) return;

  const $ = function (id) { return document.getElementById(id); };
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const msg = $("desk-messages").dataset;
  const urls = form.dataset;
  const mrz = $("mrz");
  const submit = $("submit");
  const decisionBox = $("decision");
  const instructionsBox = $("instructions");
  const summaryBox = $("check-summary");
  const errorBox = $("desk-error");
  const qualityBox = $("photo-quality");
  const overrideField = $("override-field");
  const overrideInput = $("f-photo_quality_override");
  const nameMismatchField = $("name-mismatch-field");
  const nameMismatchInput = $("f-name_mismatch_acknowledged");
  const fileInput = $("photo-file");
  const video = $("camera");
  const canvas = $("snapshot");
  const preview = $("photo-preview");
  const LAYOUTS = [[2, 44], [2, 36], [3, 30]];
  const ONE_LINE_LENGTHS = [88, 72, 90];  // both (or all three) lines pasted on one line
  const decidePanel = $("decide");
  const DRAFT_STORE = "borderpost.desk.draft";
  const REMEMBERED = ["direction", "mode"];
  const state = {
    checked: false,
    busy: false,
    lastMrz: "",
    photoBlob: null,
    photoTicket: null,
    photoPending: null,
    stream: null,
    mrzTimer: null,
    saveKey: newSaveKey(),
  };

  /* One Idempotency-Key per traveller: a save sent again (a timeout, a double press) gets
   * the first answer back instead of a second crossing. getRandomValues works on plain
   * http too, where crypto.randomUUID does not. */
  function newSaveKey() {
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return "desk-" + Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  /* ------------------------------------------------------------------ requests */
  async function answer(response) {
    window.dispatchEvent(new Event("borderpost:request"));
    if (response.status === 401) {
      window.location.assign("/web/login?next=/web/desk");
      throw new Error("login");
    }
    let data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    if (!response.ok) {
      const error = new Error((data && (data.detail || data.title)) || msg.failed);
      error.problem = data || {};
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function headers(json) {
    const result = { Accept: "application/json", "X-CSRF-Token": csrf };
    if (json) result["Content-Type"] = "application/json";
    return result;
  }

  async function postJSON(url, body) {
    return answer(await fetch(url, {
      method: "POST", credentials: "same-origin", headers: headers(true), body: JSON.stringify(body),
    }));
  }

  async function postForm(url, data, extra) {
    return answer(await fetch(url, {
      method: "POST", credentials: "same-origin", headers: Object.assign(headers(false), extra || {}), body: data,
    }));
  }

  /* ------------------------------------------------------------------ field helpers */
  function input(name) { return form.elements.namedItem(name); }

  function value(name) {
    const element = input(name);
    return element && typeof element.value === "string" ? element.value.trim() : "";
  }

  function radio(name) {
    const checked = form.querySelector('input[name="' + name + '"]:checked');
    return checked ? checked.value : "";
  }

  function setField(name, text) {
    const element = input(name);
    if (element && "value" in element) element.value = text;
  }

  function checkSlot(field) {
    return form.querySelector('[data-check-for="' + field + '"]');
  }

  function clearChecks() {
    form.querySelectorAll("[data-check-for]").forEach(function (slot) { slot.textContent = ""; });
    form.querySelectorAll('[aria-invalid="true"]').forEach(function (element) {
      element.removeAttribute("aria-invalid");
    });
  }

  function addCheck(field, ok, text, detail) {
    const slot = checkSlot(field) || checkSlot("mrz");
    /* The same sentence once: a save refused for what the check already said adds nothing. */
    const said = Array.from(slot.children).some(function (other) { return other.textContent === text; });
    const element = input(field);
    if (!ok && element && element.setAttribute) element.setAttribute("aria-invalid", "true");
    if (said) return;
    const line = document.createElement("span");
    line.className = ok ? "ok" : "bad";
    line.textContent = text;
    /* The service's own English wording stays out of sight (for support only): the officer
       reads the check in the page's language. */
    if (detail && detail !== text) line.dataset.detail = detail;
    slot.appendChild(line);
  }

  function showChecks(checks) {
    checks.forEach(function (check) { addCheck(check.field, check.ok, check.message, check.detail); });
    /* A typed name that differs from the MRZ saves only once the officer confirms it. */
    if (checks.some(function (check) { return check.code === "name_mismatch"; })) nameMismatchField.hidden = false;
  }

  function showError(error) {
    const params = (error.problem && error.problem.invalid_params) || [];
    params.forEach(function (param) {
      const field = String(param.name || "").replace(/^crossing\./, "");
      if (!field || field === "name_mismatch_acknowledged") return;
      const slot = checkSlot(field);  /* what was fine about the field before is no longer */
      if (slot) slot.querySelectorAll(".ok").forEach(function (line) { line.remove(); });
      addCheck(field, false, param.reason, "");
    });
    errorBox.textContent = error.message;
    errorBox.hidden = false;
    if (params.some(function (p) { return p.name === "photo"; })) overrideField.hidden = false;
    if (params.some(function (p) { return p.name === "name_mismatch_acknowledged"; })) {
      nameMismatchField.hidden = false;
      errorBox.textContent = msg.nameMismatch;
      nameMismatchInput.focus();
    }
  }

  function clearError() {
    errorBox.textContent = "";
    errorBox.hidden = true;
  }

  /* ------------------------------------------------------------------ check state */
  function setSubmitState(checked) {
    state.checked = checked;
    submit.dataset.state = checked ? "save" : "check";
    submit.textContent = checked ? msg.labelSave : msg.labelCheck;
    decisionBox.hidden = !checked;
  }

  function invalidate() {
    if (!state.checked) return;
    setSubmitState(false);
    instructionsBox.textContent = "";
    summaryBox.textContent = "";
  }

  /* ------------------------------------------------------------------ MRZ */
  function mrzLines() {
    return mrz.value.toUpperCase().split(/\r?\n/)
      .map(function (line) { return line.replace(/\s+/g, ""); })
      .filter(function (line) { return line.length > 0; });
  }

  function complete(lines) {
    if (lines.length === 1 && ONE_LINE_LENGTHS.indexOf(lines[0].length) >= 0) return true;
    return LAYOUTS.some(function (layout) {
      return lines.length === layout[0] && lines.every(function (line) { return line.length === layout[1]; });
    });
  }

  async function parseMrz() {
    const lines = mrzLines();
    const text = lines.join("\n");
    if (!text || text === state.lastMrz) return;
    state.lastMrz = text;
    invalidate();
    clearError();
    try {
      const result = await postJSON(urls.mrzUrl, { mrz: text });
      clearChecks();
      Object.keys(result.values).forEach(function (name) { setField(name, result.values[name]); });
      showChecks(result.checks);
      if (result.readable) {
        submit.focus();
      } else {
        addCheck("mrz", false, msg.mrzUnreadable, "");
      }
    } catch (error) {
      showError(error);
    }
  }

  mrz.addEventListener("keydown", function (event) {
    if (event.key !== "Enter") return;
    if (complete(mrzLines())) {
      event.preventDefault();
      window.clearTimeout(state.mrzTimer);
      parseMrz();
    }
  });

  mrz.addEventListener("input", function () {
    window.clearTimeout(state.mrzTimer);
    const lines = mrzLines();
    if (complete(lines)) {
      state.mrzTimer = window.setTimeout(parseMrz, 250);
    } else if (lines.length >= 2 || (lines.length === 1 && lines[0].length >= 60)) {
      /* Not a complete layout: the server explains what is wrong with it. */
      state.mrzTimer = window.setTimeout(parseMrz, 1500);
    }
  });

  /* ------------------------------------------------------------------ photo */
  function showQuality(result) {
    qualityBox.textContent = "";
    const head = document.createElement("p");
    head.className = result.passed ? "accepted" : "refused";
    head.textContent = (result.passed ? msg.accepted : msg.refused) + " (" + msg.score + " " + result.score + ")";
    qualityBox.appendChild(head);
    if (result.reasons.length) {
      const list = document.createElement("ul");
      result.reasons.forEach(function (reason) {
        const item = document.createElement("li");
        item.textContent = reason.message;
        item.title = reason.detail;
        list.appendChild(item);
      });
      qualityBox.appendChild(list);
    }
    overrideField.hidden = result.passed;
    if (!result.passed) {
      const hint = document.createElement("p");
      hint.textContent = msg.overrideHint;
      qualityBox.appendChild(hint);
    }
  }

  async function analyse(blob) {
    qualityBox.textContent = msg.analysing;
    const data = new FormData();
    data.append("photo", blob, "photo.jpg");
    try {
      const result = await postForm(urls.photoUrl, data);
      state.photoTicket = result.ticket;
      showQuality(result);
      return result;
    } catch (error) {
      state.photoBlob = null;
      qualityBox.textContent = "";
      const line = document.createElement("p");
      line.className = "refused";
      line.textContent = msg.refused + ": " + error.message;
      qualityBox.appendChild(line);
      return null;
    }
  }

  function usePhoto(blob) {
    state.photoBlob = blob;
    state.photoTicket = null;
    preview.src = URL.createObjectURL(blob);
    preview.hidden = false;
    invalidate();
    const pending = analyse(blob);
    state.photoPending = pending;
    pending.finally(function () {
      if (state.photoPending === pending) state.photoPending = null;
    });
  }

  fileInput.addEventListener("change", function () {
    if (fileInput.files && fileInput.files[0]) usePhoto(fileInput.files[0]);
  });

  $("camera-start").addEventListener("click", async function () {
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      qualityBox.textContent = msg.cameraUnavailable;
      fileInput.focus();
      return;
    }
    try {
      state.stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 1280 }, height: { ideal: 960 }, facingMode: "user" },
        audio: false,
      });
      video.srcObject = state.stream;
      video.hidden = false;
      $("camera-capture").disabled = false;
      $("camera-capture").focus();
    } catch (error) {
      qualityBox.textContent = msg.cameraUnavailable;
      fileInput.focus();
    }
  });

  $("camera-capture").addEventListener("click", function () {
    if (!state.stream || !video.videoWidth) return;
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob(function (blob) { if (blob) usePhoto(blob); }, "image/jpeg", 0.92);
  });

  /* ------------------------------------------------------------------ the registration */
  function compact(object) {
    const result = {};
    Object.keys(object).forEach(function (key) { if (object[key]) result[key] = object[key]; });
    return result;
  }

  function section(prefix, names, upper) {
    const values = {};
    names.forEach(function (name) {
      const text = value(prefix + "." + name);
      values[name] = upper.indexOf(name) >= 0 ? text.toUpperCase() : text;
    });
    return compact(values);
  }

  function collect() {
    const crossing = { direction: radio("direction") || "entry", mode: value("mode") || "foot" };
    const lines = mrzLines();
    if (lines.length) crossing.mrz = lines.join("\n");
    const document_ = section("document", ["issuing_state", "number", "document_type", "expiry_date"],
      ["issuing_state", "number", "document_type"]);
    if (document_.issuing_state || document_.number) crossing.document = document_;
    const traveller = section("traveller",
      ["surname", "given_names", "surname_ar", "given_names_ar", "nationality", "date_of_birth", "sex"],
      ["nationality"]);
    if (traveller.surname || traveller.nationality) crossing.traveller = traveller;
    ["vehicle_plate", "purpose", "destination", "remarks", "photo_quality_override"].forEach(function (name) {
      const text = value(name);
      if (text) crossing[name] = name === "vehicle_plate" ? text.toUpperCase() : text;
    });
    if (nameMismatchInput.checked) crossing.name_mismatch_acknowledged = true;
    const guardian = value("guardian_crossing_id");
    if (guardian) crossing.guardian_crossing_id = guardian;
    const companions = Array.from(input("companions").selectedOptions).map(function (o) { return o.value; });
    if (companions.length) crossing.companions = companions;
    return crossing;
  }

  function showInstructions(instructions) {
    instructionsBox.textContent = "";
    instructions.forEach(function (text) {
      const line = document.createElement("p");
      line.textContent = msg.watchlist + ": " + text;
      instructionsBox.appendChild(line);
    });
  }

  async function runCheck() {
    clearError();
    summaryBox.textContent = msg.checking;
    if (state.photoPending) await state.photoPending;
    const result = await postJSON(urls.checkUrl, { crossing: collect(), photo_ticket: state.photoTicket });
    clearChecks();
    showChecks(result.checks);
    showInstructions(result.instructions);
    summaryBox.textContent = "";
    const summary = document.createElement("p");
    summary.className = result.checks.length ? "bad" : "ok";
    summary.textContent = result.checks.length
      ? result.checks.map(function (check) { return check.message; }).join(" · ")
      : msg.noProblem;
    summaryBox.appendChild(summary);
    setSubmitState(true);
    const defaultDecision = form.querySelector('input[name="decision"][data-default]');
    form.querySelectorAll('input[name="decision"]').forEach(function (r) { r.checked = false; });
    if (result.checks.length || result.instructions.length) {
      /* Any warning: no preselected decision; the officer reads the warnings and chooses. */
      errorBox.textContent = msg.warningsDecide;
      errorBox.hidden = false;
      defaultDecision.focus({ preventScroll: true });
    } else {
      defaultDecision.checked = true;
      submit.focus({ preventScroll: true });
    }
    showWhole(decidePanel);
  }

  /* Bring a whole panel into view (the decision and its warnings, the confirmation). */
  function showWhole(element) {
    element.scrollIntoView({ block: element.offsetHeight < window.innerHeight ? "nearest" : "start" });
  }

  async function register(crossing, withPhotoFile) {
    const data = new FormData();
    data.append("crossing", JSON.stringify(crossing));
    if (state.photoTicket && !withPhotoFile) data.append("photo_ticket", state.photoTicket);
    if (state.photoBlob && (withPhotoFile || !state.photoTicket)) data.append("photo", state.photoBlob, "photo.jpg");
    try {
      return await postForm(urls.registerUrl, data, { "Idempotency-Key": state.saveKey });
    } catch (error) {
      const params = (error.problem && error.problem.invalid_params) || [];
      const expired = params.some(function (p) { return p.name === "photo_ticket"; });
      if (expired && !withPhotoFile && state.photoBlob) return register(crossing, true);
      throw error;
    }
  }

  async function save() {
    const decision = radio("decision");
    if (!decision) {
      errorBox.textContent = msg.chooseDecision;
      errorBox.hidden = false;
      form.querySelector('input[name="decision"]').focus();
      return;
    }
    clearError();
    summaryBox.textContent = msg.saving;
    const crossing = collect();
    crossing.decision = decision;
    const result = await register(crossing, false);
    showSaved(result);
    resetDesk();
    window.scrollTo(0, 0);  // the confirmation line sits above the MRZ box, in view
  }

  function showSaved(result) {
    const saved = $("saved");
    $("saved-summary").textContent = result.traveller + " · " + result.decision;
    const alerts = $("saved-alerts");
    alerts.textContent = "";
    result.alerts.forEach(function (text) {
      const line = document.createElement("p");
      line.textContent = msg.watchlist + ": " + text;
      alerts.appendChild(line);
    });
    $("receipt-80").href = result.receipt_80mm_url;
    $("receipt-a4").href = result.receipt_a4_url;
    showReceipt(result.receipt_url);
    saved.hidden = false;
    $("saved-banner-text").textContent = $("saved-summary").textContent +
      (result.alerts.length ? " · " + msg.watchlist + ": " + result.alerts.join(" · ") : "");
    $("saved-banner-80").href = result.receipt_80mm_url;
    $("saved-banner-a4").href = result.receipt_a4_url;
    $("saved-banner-refer").href = result.crossing_url + "#referral";
    $("saved-refer").href = result.crossing_url + "#referral";
    $("saved-banner").hidden = false;
    document.querySelectorAll(".recent-select").forEach(function (select) {
      const option = document.createElement("option");
      option.value = result.recent.id;
      option.textContent = result.recent.label;
      select.insertBefore(option, select.options[select.id === "f-guardian_crossing_id" ? 1 : 0] || null);
    });
    const row = $("recent-table").tBodies[0].insertRow(0);
    [result.recent.time, result.traveller, result.direction, result.decision].forEach(function (text) {
      row.insertCell().textContent = text;
    });
    const links = row.insertCell();
    [["80 mm", result.receipt_80mm_url], ["A4", result.receipt_a4_url]].forEach(function (pair, index) {
      if (index) links.appendChild(document.createTextNode(" · "));
      const link = document.createElement("a");
      link.href = pair[1];
      link.target = "_blank";
      link.rel = "noopener";
      link.textContent = pair[0];
      links.appendChild(link);
    });
    const open = document.createElement("a");
    open.href = result.crossing_url;
    open.textContent = msg.openCrossing;
    row.insertCell().appendChild(open);
  }

  // No page may be framed (frame-ancestors 'none'): the slip is fetched and shown in a
  // srcdoc frame, which inherits this page's policy; its own script opens the print dialog.
  async function showReceipt(url) {
    const frame = $("receipt-frame");
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    frame.srcdoc = response.ok ? await response.text() : "";
  }

  function remember() {
    REMEMBERED.forEach(function (name) {
      try { window.localStorage.setItem("borderpost.desk." + name, name === "direction" ? radio(name) : value(name)); } catch (err) { /* private mode */ }
    });
  }

  function restore() {
    REMEMBERED.forEach(function (name) {
      let stored = null;
      try { stored = window.localStorage.getItem("borderpost.desk." + name); } catch (err) { stored = null; }
      if (!stored) return;
      if (name === "direction") {
        const choice = form.querySelector('input[name="direction"][value="' + stored + '"]');
        if (choice) choice.checked = true;
      } else {
        setField(name, stored);
      }
    });
  }

  /* ------------------------------------------------------------------ the draft */
  const DRAFT_FIELDS = ["mrz", "document.issuing_state", "document.document_type", "document.number",
    "document.expiry_date", "traveller.surname", "traveller.given_names", "traveller.surname_ar",
    "traveller.given_names_ar", "traveller.nationality", "traveller.sex", "traveller.date_of_birth",
    "mode", "vehicle_plate", "purpose", "destination", "remarks", "photo_quality_override"];

  function fromBase64url(text) {
    const plain = text.replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(window.atob(plain + "===".slice((plain.length + 3) % 4)), function (c) { return c.charCodeAt(0); });
  }

  function toBase64(bytes) {
    return window.btoa(String.fromCharCode.apply(null, Array.from(bytes)));
  }

  let draftKey = null;
  async function key() {
    if (draftKey || !window.crypto.subtle || !form.dataset.draftKey) return draftKey;
    draftKey = await window.crypto.subtle.importKey(
      "raw", fromBase64url(form.dataset.draftKey), "AES-GCM", false, ["encrypt", "decrypt"]);
    return draftKey;
  }

  async function keepDraft() {
    const cipherKey = await key();
    if (!cipherKey) return;
    const draft = { direction: radio("direction"), saveKey: state.saveKey };
    DRAFT_FIELDS.forEach(function (name) { draft[name] = name === "mrz" ? mrz.value : value(name); });
    if (!DRAFT_FIELDS.some(function (name) { return draft[name] && name !== "mode" && name !== "document.document_type" && name !== "traveller.sex"; })) {
      dropDraft();
      return;
    }
    const iv = window.crypto.getRandomValues(new Uint8Array(12));
    const sealed = await window.crypto.subtle.encrypt(
      { name: "AES-GCM", iv: iv }, cipherKey, new TextEncoder().encode(JSON.stringify(draft)));
    try {
      window.localStorage.setItem(DRAFT_STORE, toBase64(iv) + "." + toBase64(new Uint8Array(sealed)));
    } catch (err) { /* storage full or private mode: nothing kept */ }
  }

  function dropDraft() {
    try { window.localStorage.removeItem(DRAFT_STORE); } catch (err) { /* private mode */ }
  }

  async function restoreDraft() {
    let stored = null;
    try { stored = window.localStorage.getItem(DRAFT_STORE); } catch (err) { stored = null; }
    const cipherKey = stored ? await key() : null;
    if (!stored || !cipherKey) return;
    const parts = stored.split(".");
    let draft;
    try {
      const opened = await window.crypto.subtle.decrypt(
        { name: "AES-GCM", iv: fromBase64url(parts[0]) }, cipherKey, fromBase64url(parts[1] || ""));
      draft = JSON.parse(new TextDecoder().decode(opened));
    } catch (err) {
      dropDraft();  // another officer's draft, or damaged: never shown
      return;
    }
    DRAFT_FIELDS.forEach(function (name) {
      if (name === "mrz") mrz.value = draft.mrz || "";
      else if (draft[name] !== undefined) setField(name, draft[name]);
    });
    const direction = form.querySelector('input[name="direction"][value="' + draft.direction + '"]');
    if (direction) direction.checked = true;
    if (draft.saveKey) state.saveKey = draft.saveKey;  // a save that did go through answers again
    const note = $("draft-note");
    note.textContent = msg.draftRestored;
    note.hidden = false;
  }

  let draftTimer = null;
  form.addEventListener("input", function () {
    window.clearTimeout(draftTimer);
    draftTimer = window.setTimeout(keepDraft, 300);
  });
  form.addEventListener("change", function () {
    window.clearTimeout(draftTimer);
    draftTimer = window.setTimeout(keepDraft, 300);
  });

  function resetDesk() {
    window.clearTimeout(draftTimer);
    dropDraft();
    $("draft-note").hidden = true;
    state.saveKey = newSaveKey();
    remember();
    form.reset();
    restore();
    clearChecks();
    clearError();
    setSubmitState(false);
    instructionsBox.textContent = "";
    summaryBox.textContent = "";
    qualityBox.textContent = "";
    overrideField.hidden = true;
    nameMismatchField.hidden = true;
    preview.hidden = true;
    preview.removeAttribute("src");
    state.lastMrz = "";
    state.photoBlob = null;
    state.photoTicket = null;
    state.photoPending = null;
    mrz.focus();
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (state.busy) return;
    state.busy = true;
    try {
      if (state.checked) {
        await save();
      } else {
        await runCheck();
      }
    } catch (error) {
      summaryBox.textContent = "";
      showError(error);
    } finally {
      state.busy = false;
    }
  });

  form.addEventListener("input", function (event) {
    const target = event.target;
    if (target.name === "decision" || target === overrideInput || target === nameMismatchInput) return;
    invalidate();
  });

  $("new-traveller").addEventListener("click", resetDesk);
  form.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      resetDesk();
    }
  });

  restore();
  restoreDraft();
})();
