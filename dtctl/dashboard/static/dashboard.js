// dtctl dashboard: live refresh (server-sent events, polling as the fallback), charts, the timeline,
// and confirmed actions. Hand-written, no library: everything the page needs ships in the package.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const body = document.body;
  let version = Number(body.dataset.liveVersion || 0);
  const pollMs = Number(body.dataset.pollMs || 5000);
  let refreshing = false;
  let again = false;
  let pollTimer = null;

  function el(tag, attrs, parent) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function h(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function jsonOf(id) {
    const node = document.getElementById(id);
    if (!node) return null;
    try { return JSON.parse(node.textContent); } catch (e) { return null; }
  }

  function setLiveState(text, cls) {
    const node = document.getElementById("live-state");
    if (node) { node.textContent = text; node.className = "live-state " + (cls || ""); }
  }

  function flash(text, bad) {
    const node = document.getElementById("flash");
    if (!node) return;
    node.textContent = text;
    node.className = "flash" + (bad ? " bad" : "");
    node.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { node.hidden = true; }, 6000);
  }

  // --- live refresh -----------------------------------------------------------------------------------

  function busy() {
    const dialog = document.getElementById("confirm");
    if (dialog && dialog.open) return true;
    const active = document.activeElement;
    return !!(active && active.closest && active.closest("#live form") && active.matches("input, select, textarea"));
  }

  async function refresh() {
    if (refreshing || busy()) { again = true; return; }
    refreshing = true;
    try {
      const response = await fetch(location.href, { headers: { "X-Dashboard-Fragment": "1" }, cache: "no-store" });
      const live = document.getElementById("live");
      if (response.status === 404) {
        live.innerHTML = "";
        live.appendChild(h("p", { class: "card warn" }, "This instance is no longer in the hub (purged)."));
        return;
      }
      if (!response.ok) return;
      const html = await response.text();
      const open = Array.from(live.querySelectorAll("details")).map((d) => d.open);
      live.innerHTML = html;
      live.querySelectorAll("details").forEach((d, i) => { if (i < open.length) d.open = open[i]; });
      draw();
      body.dispatchEvent(new CustomEvent("dashboard:refreshed"));
    } catch (e) {
      // the server is gone for a moment: the next event or poll tries again
    } finally {
      refreshing = false;
      if (again) { again = false; setTimeout(refresh, 250); }
    }
  }

  function startPolling(reason) {
    if (pollTimer) return;
    setLiveState("polling every " + Math.round(pollMs / 1000) + " s", "poll");
    if (reason) body.dataset.liveMode = reason;
    pollTimer = setInterval(refresh, pollMs);
  }

  function stopPolling() {
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }

  function connect() {
    if (!window.EventSource) { startPolling("no-eventsource"); return; }
    const source = new EventSource("/events?since=" + version);
    let failures = 0;
    source.addEventListener("hello", () => {
      failures = 0; stopPolling(); setLiveState("live", "on"); body.dataset.liveMode = "sse";
    });
    source.addEventListener("change", (event) => {
      version = Number(event.data);
      refresh();
    });
    source.onerror = () => {
      failures += 1;
      setLiveState("reconnecting…", "poll");
      if (failures >= 3) startPolling("sse-failed");
    };
  }

  // --- charts --------------------------------------------------------------------------------------------

  const SERIES = {
    throughput: [["completed", "c-completed"], ["activities", "c-activities"], ["failures", "c-failures"]],
    latency: [["episode_p50", "c-episode"], ["activity_p50", "c-activity"], ["activity_p95", "c-activity95"]],
  };

  function chart(svg, samples, series) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const W = 480, H = 160, L = 44, R = 8, T = 8, B = 20;
    el("rect", { x: L, y: T, width: W - L - R, height: H - T - B, class: "plot" }, svg);
    if (samples.length < 2) {
      const t = el("text", { x: W / 2, y: H / 2, class: "nodata", "text-anchor": "middle" }, svg);
      t.textContent = "collecting samples…";
      return;
    }
    const t0 = samples[0].at, t1 = samples[samples.length - 1].at;
    let top = 0;
    for (const s of samples) for (const [key] of series) if (s[key] !== null) top = Math.max(top, s[key]);
    top = top > 0 ? top * 1.1 : 1;
    const x = (at) => L + ((at - t0) / Math.max(t1 - t0, 1)) * (W - L - R);
    const y = (v) => T + (1 - v / top) * (H - T - B);
    for (const frac of [0, 0.5, 1]) {
      const yy = y(top * frac);
      el("line", { x1: L, x2: W - R, y1: yy, y2: yy, class: "grid" }, svg);
      const label = el("text", { x: L - 4, y: yy + 4, "text-anchor": "end", class: "tick" }, svg);
      label.textContent = (top * frac).toPrecision(3).replace(/\.?0+$/, "");
    }
    const span = el("text", { x: L, y: H - 4, class: "tick" }, svg);
    span.textContent = "-" + Math.round((t1 - t0) / 1e6) + " s";
    const nowLabel = el("text", { x: W - R, y: H - 4, "text-anchor": "end", class: "tick" }, svg);
    nowLabel.textContent = "now";
    for (const [key, cls] of series) {
      let d = "";
      let pen = "M";
      for (const s of samples) {
        if (s[key] === null) { pen = "M"; continue; }
        d += pen + x(s.at).toFixed(1) + "," + y(s[key]).toFixed(1) + " ";
        pen = "L";
      }
      if (d) el("path", { d: d, class: "line " + cls }, svg);
    }
  }

  // --- the timeline (the picture of `dtctl history show --timeline`) ------------------------------------

  function duration(us) {
    const s = us / 1e6;
    if (s < 1) return s >= 0.001 ? Math.round(s * 1000) + " ms" : us + " µs";
    if (s < 60) return s.toFixed(2) + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + "m " + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    return Math.floor(m / 60) + "h " + String(m % 60).padStart(2, "0") + "m";
  }

  function timeline(box, data) {
    box.innerHTML = "";
    const table = h("table", { class: "data tl" });
    const head = h("tr");
    for (const c of ["task", "kind", "name", "0 … " + duration(data.total), "start", "took", "result"]) head.appendChild(h("th", {}, c));
    table.appendChild(h("thead")).appendChild(head);
    const tbody = h("tbody");
    table.appendChild(tbody);
    for (const span of data.spans) {
      const row = h("tr", { class: "span k-" + span.kind + " o-" + String(span.outcome).toLowerCase() });
      row.appendChild(h("td", {}, span.task_id === null ? "" : String(span.task_id)));
      row.appendChild(h("td", {}, span.kind.replace("_", "-")));
      row.appendChild(h("td", {}, span.name));
      const cell = h("td", { class: "barcell" });
      const svg = el("svg", { viewBox: "0 0 1000 14", preserveAspectRatio: "none", class: "bar" });
      const x0 = Math.max(0, Math.min(1000, (span.start / data.total) * 1000));
      if (span.kind === "event") {
        el("path", { d: "M" + x0 + ",1 L" + (x0 + 7) + ",7 L" + x0 + ",13 L" + (x0 - 7) + ",7 Z", class: "point" }, svg);
      } else {
        const end = span.end === null ? data.total : span.end;
        const x1 = Math.max(x0 + 3, Math.min(1000, (end / data.total) * 1000));
        el("rect", { x: x0, y: 1, width: x1 - x0, height: 12, rx: 2, class: "fill" }, svg);
      }
      cell.appendChild(svg);
      row.appendChild(cell);
      row.appendChild(h("td", {}, "+" + duration(span.start)));
      row.appendChild(h("td", {}, span.kind === "event" ? "" : span.took));
      const result = h("td", { class: "result" });
      if (span.failure) {
        result.appendChild(h("span", { class: "bad" }, "failed: " + span.failure));
      } else if (span.entity) {
        result.appendChild(document.createTextNode(span.outcome + " "));
        result.appendChild(h("a", { href: "/entities/" + encodeURIComponent(span.entity), class: "eid" }, span.entity));
      } else if (span.target) {
        result.appendChild(document.createTextNode(span.outcome + " "));
        const a = h("a", { href: "/instances/" + encodeURIComponent(span.target), class: "iid" }, span.target);
        result.appendChild(a);
      } else {
        result.appendChild(document.createTextNode(span.outcome));
      }
      row.appendChild(result);
      tbody.appendChild(row);
    }
    box.appendChild(table);
  }

  function draw() {
    const samples = jsonOf("samples");
    if (samples) {
      document.querySelectorAll("svg[data-chart]").forEach((svg) => chart(svg, samples, SERIES[svg.dataset.chart]));
    }
    const data = jsonOf("timeline-data");
    const box = document.getElementById("timeline");
    if (data && box) timeline(box, data);
  }

  // --- actions: confirmed in a dialog, sent with the page's token, the page updates from the stream -----

  function openConfirm(form) {
    const dialog = document.getElementById("confirm");
    if (!dialog) return;
    const fields = (form.dataset.fields || "").split(",").filter(Boolean);
    dialog.querySelectorAll("[data-field]").forEach((label) => {
      label.hidden = !fields.includes(label.dataset.field);
      label.querySelectorAll("input, textarea").forEach((input) => {
        if (input.type === "checkbox") input.checked = false; else input.value = "";
      });
    });
    document.getElementById("confirm-title").textContent = form.dataset.label;
    document.getElementById("confirm-text").textContent = form.dataset.confirm;
    // The id the action is about: an instance_id or an entity_id, named as the page's form names it.
    const target = form.querySelector("[data-target]");
    const hidden = document.getElementById("confirm-target");
    hidden.name = target.name;
    hidden.value = target.value;
    const ok = document.getElementById("confirm-ok");
    ok.textContent = form.dataset.label;
    dialog.dataset.action = form.getAttribute("action");
    dialog.showModal();
  }

  async function send(dialog) {
    const form = document.getElementById("confirm-form");
    const data = new URLSearchParams(new FormData(form));
    data.set("confirmed", "1");
    dialog.close();
    try {
      const response = await fetch(dialog.dataset.action, {
        method: "POST", body: data, headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      const answer = await response.json().catch(() => ({ error: "HTTP " + response.status }));
      if (!response.ok) { flash(answer.error || "refused", true); return; }
      flash(answer.message);
      if (answer.redirect) { location.href = answer.redirect; return; }
      refresh();
    } catch (e) {
      flash("the dashboard did not answer", true);
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.matches && form.matches("form.action")) {
      event.preventDefault();
      openConfirm(form);
    } else if (form.id === "confirm-form") {
      event.preventDefault();
      send(document.getElementById("confirm"));
    }
  });
  document.addEventListener("click", (event) => {
    if (event.target && event.target.id === "confirm-cancel") document.getElementById("confirm").close();
  });

  draw();
  connect();
})();
