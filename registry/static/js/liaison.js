/* Liaison page: a hit/no-hit question goes to the partner through the API's own flow
 * (POST /api/liaison/hits, with the session cookie and its CSRF token, as every cookie request
 * to the API that changes something); the answer is yes/no and a reference. */
"use strict";

(function () {
  const form = document.getElementById("hit-form");
  if (!form) return;
  const answer = document.getElementById("hit-answer");
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const body = {};
    new FormData(form).forEach(function (value, key) {
      const text = String(value).trim();
      if (text) body[key] = key === "issuing_state" ? text.toUpperCase() : text;
    });
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
