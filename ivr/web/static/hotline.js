// Hotline console: the live wallboard, the agent's screen-pop and form posts.
// Plain JavaScript served by the app (no CDN, no build step).
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

async function post(url, data) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": csrf(), "X-Requested-With": "fetch", "Accept": "application/json" },
    body: data,
  });
  let body = {};
  try { body = await response.json(); } catch (e) { /* not JSON */ }
  if (!response.ok) throw new Error(body.message || body.error || response.statusText);
  return body;
}

// A websocket that reconnects by itself (the server restarted, the network
// blinked): backoff from 0.5 s to 5 s; every (re)connect starts from the
// whole board, which the server sends first.
function liveSocket(path, onMessage) {
  const status = document.getElementById("live-status");
  let delay = 500;
  const setStatus = (on) => {
    if (!status) return;
    status.textContent = on ? status.dataset.on : status.dataset.off;
    status.className = "status " + (on ? "on" : "off");
  };
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + path);
    ws.onopen = () => { delay = 500; setStatus(true); };
    ws.onmessage = (event) => onMessage(JSON.parse(event.data));
    ws.onclose = () => {
      setStatus(false);
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 5000);
    };
  };
  connect();
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function duration(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  const m = Math.floor(seconds / 60), s = seconds % 60;
  return m + ":" + String(s).padStart(2, "0");
}

// --- wallboard -----------------------------------------------------------------

// The board is redrawn on every live frame; an action's outcome (done, failed)
// is kept here for a few seconds so the redraw does not wipe the feedback.
const actionOutcomes = new Map();

function renderBoard(root, board, t, overdueList = []) {
  const phone = document.getElementById("spy-phone");
  const queues = board.queues.map((q) => {
    const alerts = q.alerts.map((a) => el("div", { class: "alert" }, t[a] || a));
    const callers = q.callers.length
      ? el("table", { class: "grid callers" },
          el("thead", {}, el("tr", {}, el("th", {}, "#"), el("th", {}, t["Caller"]),
                                      el("th", {}, t["Longest wait"]))),
          el("tbody", {}, ...q.callers.map((c) =>
            el("tr", { class: "caller", "data-uniqueid": c.uniqueid },
               el("td", {}, c.position), el("td", { class: "caller-id" }, c.caller_id),
               el("td", {}, duration(c.wait_seconds))))))
      : el("p", { class: "muted no-callers" }, t["No callers waiting"]);
    const agents = el("table", { class: "grid agents" },
      el("thead", {}, el("tr", {}, el("th", {}, t["Agents"]), el("th", {}, t["State"]),
                                  el("th", {}, t["Time in state"]), el("th", {}, t["Calls taken"]),
                                  el("th", {}, ""))),
      el("tbody", {}, ...q.agents.map((a) => {
        const actions = el("td", { class: "actions" });
        if (a.agent_id) {
          const act = (label, url, extra) => {
            const button = el("button", { type: "button", "data-agent": a.agent_id }, label);
            const key = [url, a.agent_id, (extra && extra.mode) || ""].join("|");
            const shown = (outcome) => {
              button.classList.add(outcome.cls);
              if (outcome.title) button.title = outcome.title;
            };
            const kept = actionOutcomes.get(key);
            if (kept && kept.until > Date.now()) shown(kept);
            button.addEventListener("click", async () => {
              const data = new FormData();
              for (const [k, v] of Object.entries(extra || {})) data.append(k, v);
              let outcome;
              try { await post(url, data); outcome = { cls: "done" }; }
              catch (e) { outcome = { cls: "failed", title: e.message }; }
              actionOutcomes.set(key, { ...outcome, until: Date.now() + 5000 });
              shown(outcome);
              // the button may have been redrawn meanwhile: mark the current one too
              for (const current of root.querySelectorAll("button[data-agent]")) {
                if (current.dataset.key === key) shown(outcome);
              }
            });
            button.dataset.key = key;
            return button;
          };
          const base = "/wallboard/agents/" + encodeURIComponent(a.agent_id) + "/";
          actions.append(a.paused ? act(t["Resume"], base + "unpause") : act(t["Pause"], base + "pause"),
                         act(t["Log off"], base + "logout"));
          if (phone && phone.value) {
            for (const [mode, label] of [["listen", t["Listen"]], ["whisper", t["Whisper"]], ["barge", t["Barge in"]]]) {
              actions.append(act(label, "/wallboard/spy", { agent_id: a.agent_id, mode, phone: phone.value }));
            }
          }
        }
        return el("tr", { class: "agent state-" + a.state, "data-interface": a.interface },
          el("td", {}, a.name), el("td", { class: "agent-state" },
            (t[a.state] || a.state) + (a.paused && a.paused_reason ? " (" + (t[a.paused_reason] || a.paused_reason) + ")" : "")),
          el("td", {}, duration(a.seconds_in_state)), el("td", {}, a.calls_taken), actions);
      })));
    const sl = el("div", { class: "figures" },
      el("span", {}, t["Callers waiting"] + ": ", el("b", { class: "waiting-count" }, q.callers.length)),
      el("span", {}, t["Longest wait"] + ": ", el("b", {}, duration(q.current_longest_wait || 0))),
      el("span", {}, t["Answered today"] + ": ", el("b", {}, q.today.answered)),
      el("span", {}, t["Abandoned today"] + ": ", el("b", {}, q.today.abandoned)),
      el("span", {}, t["Service level"] + ": ", el("b", {}, q.service_level_percent + "%")));
    // The hotline's owner node is down: its calls go to the standby (issue 15).
    const standby = q.on_standby ? [el("div", { class: "alert on-standby" }, t["On standby"])] : [];
    return el("section", { class: "card queue" + (q.alerts.length ? " alerting" : ""), "data-queue": q.id },
      el("h2", {}, q.title), ...standby, ...alerts, sl, callers, agents);
  });
  // Each Asterisk node's AMI link, up or down since when (several nodes only).
  if ((board.nodes || []).length > 1) {
    queues.unshift(el("div", { class: "figures nodes", id: "nodes" }, t["Nodes"] + ": ",
      ...board.nodes.map((n) => el("span", { class: "node " + (n.up ? "up" : "down"), "data-node": n.id },
        n.id + " · " + t[n.up ? "Node up since" : "Node down since"] + " " +
        new Date(n.since * 1000).toLocaleTimeString()))));
  }
  // Forwarded cases past their deadline (issue 13), the user's hotline's only:
  // the count, then which case and which unit (the list the server keeps).
  const overdue = Object.values(board.overdue_forwards || {}).reduce((a, b) => a + b, 0);
  if (overdue || overdueList.length) {
    const items = overdueList.map((f) => el("li", { "data-code": f.case_code, "data-unit": f.unit_code },
      el("a", { href: "/cases/" + encodeURIComponent(f.case_code) + "#forwards" }, f.case_code),
      " · " + f.unit_name + " · " + t["due"] + " " + f.due_date));
    queues.unshift(el("div", { class: "alert", id: "overdue-forwards" },
                      t["Overdue forwards"] + ": " + Math.max(overdue, overdueList.length),
                      el("ul", { id: "overdue-list" }, ...items)));
  }
  root.replaceChildren(...queues);
}

const overdueTotal = (board) => Object.values(board.overdue_forwards || {}).reduce((a, b) => a + b, 0);

function startWallboard(root) {
  const t = JSON.parse(root.dataset.i18n);
  let last = null;
  let overdueList = [];
  let overdueSeen = -1;
  // The list is asked for when the count changes or an escalation arrives,
  // not on every frame.
  const refreshOverdue = async () => {
    const response = await fetch("/api/v1/wallboard/overdue-forwards", { credentials: "same-origin" });
    if (!response.ok) return;
    overdueList = await response.json();
    if (last) renderBoard(root, last, t, overdueList);
  };
  liveSocket(root.dataset.socket, (message) => {
    if (message.type === "wallboard") {
      last = message.board;
      if (overdueTotal(last) !== overdueSeen) { overdueSeen = overdueTotal(last); refreshOverdue(); }
      renderBoard(root, last, t, overdueList);
    } else if (message.type === "forward_escalation") {
      refreshOverdue();
    }
  });
  // Waits tick between events without asking the server.
  setInterval(() => {
    if (!last) return;
    for (const q of last.queues) {
      for (const c of q.callers) c.wait_seconds += 1;
      for (const a of q.agents) a.seconds_in_state += 1;
      q.current_longest_wait = Math.max(0, ...q.callers.map((c) => c.wait_seconds));
    }
    renderBoard(root, last, t, overdueList);
  }, 1000);
}

// --- agent console -------------------------------------------------------------

function startAgent(root) {
  const t = JSON.parse(root.dataset.i18n);
  const pop = document.getElementById("screen-pop");
  const list = document.getElementById("my-queues");
  let shown = null;
  const refreshState = async () => {
    const response = await fetch("/api/v1/agent", { credentials: "same-origin" });
    if (!response.ok) return;
    const me = await response.json();
    list.replaceChildren(...(me.queues.length ? me.queues.map((q) =>
      el("li", { "data-queue": q.queue, "data-state": q.state }, q.title + ": ",
         el("b", {}, t[q.state] || q.state), q.paused && q.reason ? " (" + (t[q.reason] || q.reason) + ")" : ""))
      : [el("li", { class: "muted" }, t["Not in any queue"])]));
  };
  liveSocket(root.dataset.socket, async (message) => {
    if (message.type === "wallboard") { refreshState(); return; }
    if (message.type !== "screen_pop" || shown === message.uniqueid) return;
    shown = message.uniqueid;
    const query = new URLSearchParams({ number: message.number, uniqueid: message.uniqueid, queue: message.queue });
    const response = await fetch("/agent/pop?" + query, { credentials: "same-origin" });
    pop.innerHTML = await response.text();  // rendered (and escaped) by the server
    pop.hidden = false;
    bindCaseForm(pop.querySelector("form.js-case"), t);
    bindKnowledge(pop.querySelector("#kb-search"), pop.querySelector("form.js-case"));
  });
  for (const form of root.querySelectorAll("form.js-action")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try { await post(form.action, new FormData(form)); } catch (e) { alert(e.message); }
      refreshState();
    });
  }
}

function bindCaseForm(form, t) {
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = form.querySelector("#case-result");
    try {
      const body = await post(form.action, new FormData(form));
      if (body.code) {
        // Saved: the same form now updates this case.
        form.action = "/cases/" + body.code;
        result.textContent = t["Case saved with code"] + " " + body.code;
        result.dataset.code = body.code;
      }
      result.className = "ok";
    } catch (e) {
      result.textContent = e.message;
      result.className = "problem";
    }
    result.hidden = false;
  });
}

// The knowledge base in the screen-pop: search as the agent types (accents
// optional, the server folds them), read an article, put it into the case
// form, or answer and close the case with it (saving the case first if needed).
function bindKnowledge(root, form) {
  if (!root || !form) return;
  const t = JSON.parse(root.dataset.i18n);
  const input = root.querySelector("#kb-q"), list = root.querySelector("#kb-results");
  const chosen = root.querySelector("#kb-chosen"), answer = root.querySelector("#kb-answer");
  const result = root.querySelector("#kb-result");
  let article = null, timer = null, asked = 0;
  const show = async (id) => {
    const response = await fetch("/api/v1/knowledge/" + id, { credentials: "same-origin" });
    if (!response.ok) return;
    article = await response.json();
    root.querySelector("#kb-chosen-title").textContent = article.title;
    const facts = [["Documents needed", article.documents], ["Fees", article.fees],
                   ["Where", article.place], ["How long", article.processing_time]];
    root.querySelector("#kb-chosen-facts").replaceChildren(...facts.filter(([, v]) => v).flatMap(
      ([label, value]) => [el("dt", {}, t[label]), el("dd", {}, value)]));
    answer.value = article.summary;
    chosen.hidden = false;
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const mine = ++asked;
      const query = new URLSearchParams({ q: input.value });
      const response = await fetch("/api/v1/knowledge?" + query, { credentials: "same-origin" });
      if (!response.ok || mine !== asked) return;  // a later search has been sent
      const found = await response.json();
      list.replaceChildren(...(found.length ? found.map((a) => {
        const pick = el("button", { type: "button", class: "link", "data-id": a.id }, a.title);
        pick.addEventListener("click", () => show(a.id));
        return el("li", {}, pick);
      }) : [el("li", { class: "muted" }, t["No results"])]));
    }, 250);
  });
  root.querySelector("#kb-insert").addEventListener("click", () => {
    if (!article) return;
    const summary = form.querySelector("#case-summary");
    summary.value = (summary.value ? summary.value + "\n" : "") + article.title + ": " + answer.value;
  });
  root.querySelector("#kb-close").addEventListener("click", async () => {
    if (!article) return;
    const saved = form.querySelector("#case-result");
    try {
      let code = saved.dataset.code;
      if (!code) {
        const summary = form.querySelector("#case-summary");
        if (!summary.value) summary.value = article.title;
        code = (await post(form.action, new FormData(form))).code;
        form.action = "/cases/" + code;
        saved.dataset.code = code;
      }
      const data = new FormData();
      data.append("article_id", article.id);
      data.append("answer", answer.value);
      await post("/cases/" + encodeURIComponent(code) + "/knowledge-answer", data);
      result.textContent = t["Case closed with code"] + " " + code;
      result.className = "ok";
    } catch (e) {
      result.textContent = e.message;
      result.className = "problem";
    }
    result.hidden = false;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const board = document.getElementById("wallboard");
  if (board) startWallboard(board);
  const agent = document.getElementById("agent-controls");
  if (agent) startAgent(agent);
  const print = document.getElementById("print");
  if (print) print.addEventListener("click", () => window.print());
});
