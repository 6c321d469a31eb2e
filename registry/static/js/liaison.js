/* Liaison page: a hit/no-hit question goes to the partner through the API's own flow
 * (POST /api/liaison/hits, with the session cookie and its CSRF token, as every cookie request
 * to the API that changes something); the answer is yes/no and a reference. The birth date is
 * typed as the pages write days (dd/mm/yyyy, never the browser's own format) and sent to the
 * API as ISO; a day that is not one is said in the page's language and nothing is sent. */
"use strict";

(function () {
  const form = document.getElementById("hit-form");
  if (!form) return;
  const answer = document.getElementById("hit-answer");

  /* dd/mm/yyyy (also with - or .) or ISO as ISO; null when it is not a day. */
  function isoDay(text) {
    let parts = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
    if (parts) parts = [parts[3], parts[2], parts[1]];
    else parts = (/^(\d{1,2})[\/.-](\d{1,2})[\/.-](\d{4})$/.exec(text) || []).slice(1);
    if (parts.length !== 3) return null;
    const day = new Date(Date.UTC(Number(parts[2]), Number(parts[1]) - 1, Number(parts[0])));
    if (day.getUTCDate() !== Number(parts[0]) || day.getUTCMonth() !== Number(parts[1]) - 1) return null;
    return day.toISOString().slice(0, 10);
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const body = {};
    new FormData(form).forEach(function (value, key) {
      const text = String(value).trim();
      if (text) body[key] = key === "issuing_state" ? text.toUpperCase() : text;
    });
    const dob = document.getElementById("h-dob");
    if (body.date_of_birth) {
      body.date_of_birth = isoDay(body.date_of_birth);
      if (!body.date_of_birth) {
        dob.setAttribute("aria-invalid", "true");
        answer.textContent = form.dataset.badDay;
        dob.focus();
        return;
      }
    }
    dob.removeAttribute("aria-invalid");
    answer.textContent = "…";
    try {
      const response = await fetch(form.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content,
        },
        body: JSON.stringify(body),
      });
      const data = await response.json();
      if (!response.ok) throw new Error(data.detail || data.title || String(response.status));
      answer.textContent = (data.hit ? form.dataset.hit : form.dataset.noHit) + " " +
        form.dataset.reference + ": " + data.reference;
    } catch (error) {
      answer.textContent = error.message;
    }
  });
})();
