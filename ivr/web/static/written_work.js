// The counts of open written cases per channel (issue 14) on the wallboard and
// the agent console: asked for again every 30 seconds (the cases arrive by SMS,
// email, Zalo, the web form and Open311, not through the queue manager's feed).
"use strict";

(function () {
  const REFRESH_MS = 30000;
  async function refresh(panel) {
    let body;
    try {
      const response = await fetch(panel.dataset.writtenCounts, { credentials: "same-origin" });
      if (!response.ok) return;
      body = await response.json();
    } catch (e) {
      return; // the next round tries again
    }
    panel.querySelector(".written-total").textContent = String(body.total);
    for (const item of panel.querySelectorAll("li[data-channel]")) {
      const count = body.by_channel[item.dataset.channel];
      item.querySelector(".written-count").textContent = String(count === undefined ? 0 : count);
    }
  }
  function start() {
    for (const panel of document.querySelectorAll("[data-written-counts]")) {
      setInterval(() => refresh(panel), REFRESH_MS);
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
