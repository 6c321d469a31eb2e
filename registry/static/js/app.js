/* Borderpost pages: behaviour shared by every page (no inline script anywhere).
 * - idle logout: after the idle limit without activity, go to the login page (the server
 *   revokes the session on that request, or on any later one);
 * - confirmation of dangerous forms (data-confirm);
 * - progress of a watchlist import (#import-job polls its JSON progress).
 */
"use strict";

(function () {
  function idleLogout() {
    const seconds = Number(document.body.dataset.idleSeconds || 0);
    if (!seconds) return;
    let timer = null;
    const arm = function () {
      if (timer) window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        window.location.assign("/web/login?expired=1");
      }, (seconds + 5) * 1000);
    };
    /* The server counts requests, not keystrokes: re-arm on page loads and fetches only. */
    arm();
    window.addEventListener("borderpost:request", arm);
  }

  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  function importProgress() {
    const box = document.getElementById("import-job");
    if (!box || box.dataset.state !== "running") return;
    const bar = document.getElementById("import-progress");
    const count = document.getElementById("import-count");
    const label = document.getElementById("import-label");
    const error = document.getElementById("import-error");
    const report = document.getElementById("import-report");
    const rejected = document.getElementById("import-rejected");
    async function poll() {
      let job;
      try {
        const response = await fetch(box.dataset.progressUrl, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        if (!response.ok) throw new Error(String(response.status));
        job = await response.json();
      } catch (err) {
        window.setTimeout(poll, 2000);
        return;
      }
      bar.max = Math.max(job.total, 1);
      bar.value = job.done;
      bar.textContent = String(job.done);
      count.textContent = job.done + " / " + job.total;
      if (job.state === "running") {
        window.setTimeout(poll, 600);
        return;
      }
      box.dataset.state = job.state;
      label.textContent = job.state === "done" ? box.dataset.labelDone : box.dataset.labelFailed;
      if (job.error) {
        error.textContent = job.error;
        error.hidden = false;
      }
      if (job.report) {
        report.querySelectorAll("dd[data-key]").forEach(function (dd) {
          const key = dd.dataset.key;
          dd.textContent = key === "rejected_count" ? job.report.rejected.length : job.report[key];
        });
        report.hidden = false;
        rejected.textContent = "";
        job.report.rejected.forEach(function (item) {
          /* Each part isolated: a column name or a value in Latin letters inside an
             Arabic sentence keeps its place (the line number first, then the reason). */
          const li = document.createElement("li");
          const line = document.createElement("bdi");
          const reason = document.createElement("bdi");
          line.textContent = String(item.line);
          reason.textContent = item.reason;
          li.append(line, ": ", reason);
          rejected.appendChild(li);
        });
      }
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    idleLogout();
    confirmations();
    importProgress();
  });
})();
