// airlock console: live held requests over server-sent events. The server
// renders (and escapes) every card; this script only places them, keeping
// cards already on the page (and what an approver is typing in them), and
// counts time left down.
"use strict";

(function () {
  const list = document.getElementById("held");
  const live = document.getElementById("live");
  if (!list) {
    return;
  }
  const deadlines = new WeakMap();

  function stamp(root) {
    for (const el of root.querySelectorAll(".left[data-left]")) {
      deadlines.set(el, Date.now() + 1000 * Number(el.dataset.left));
    }
  }

  function clock(secs) {
    if (secs < 60) return secs + "s";
    if (secs < 3600) return Math.floor(secs / 60) + "m" + String(secs % 60).padStart(2, "0") + "s";
    return Math.floor(secs / 3600) + "h" + String(Math.floor((secs % 3600) / 60)).padStart(2, "0") + "m";
  }

  function tick() {
    for (const el of list.querySelectorAll(".left[data-left]")) {
      const until = deadlines.get(el);
      if (until !== undefined) {
        el.textContent = clock(Math.max(0, Math.round((until - Date.now()) / 1000))) + " left";
      }
    }
  }

  // Replaces the list with `html`, keeping the cards that are still held.
  function place(html) {
    const next = document.createElement("template");
    next.innerHTML = html;
    const kept = new Map();
    for (const card of list.querySelectorAll("article.held")) {
      kept.set(card.id, card);
    }
    const nodes = [];
    for (const node of Array.from(next.content.childNodes)) {
      const old = node.id ? kept.get(node.id) : undefined;
      if (old) {
        nodes.push(old);
      } else {
        stamp(node.nodeType === 1 ? node : next.content);
        nodes.push(node);
      }
    }
    list.replaceChildren(...nodes);
  }

  stamp(list);
  setInterval(tick, 1000);
  const events = new EventSource("/events");
  events.addEventListener("held", function (e) {
    place(e.data);
    live.textContent = "live";
    live.className = "live on";
  });
  events.onerror = function () {
    live.textContent = "reconnecting…";
    live.className = "live off";
  };
})();
