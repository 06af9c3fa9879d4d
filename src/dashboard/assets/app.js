// Sluice dashboard: routing, the live feed (server-sent events), the pages and the actions.
// The server sends a page's whole view model on connect and after every change, so a page that
// reconnects (the server restarted, the network dropped) is in sync with its first message.
"use strict";

const main = document.getElementById("main");
const live = document.getElementById("live");
const crumbs = document.getElementById("crumbs");
const filters = { namespace: "", search: "", phase: "" };
let feed = null;
let current = null; // { kind: "overview" | "rollout", namespace, name }
let data = null;

const PHASE_ICONS = { Healthy: "✔", Progressing: "↻", Paused: "‖", Degraded: "✖" };
const VERDICT_ICONS = { Pass: "✔", Marginal: "◆", Fail: "✖" };
const CLASS_ICONS = { Pass: "✔", High: "▲", Low: "▼", NoData: "∅", Error: "⚠" };
const RUN_ICONS = { Successful: "✔", Failed: "✖", Error: "⚠", Inconclusive: "◆", Running: "↻", Pending: "…" };

function badge(kind, value, icons) {
  const text = value || "Unknown";
  return h("span", { class: `badge ${kind}-${text.toLowerCase()}` }, h("span", { "aria-hidden": "true" }, icons[text] || "•"), " ", text);
}

// ---- routing and the live feed ----

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "rollouts" && parts.length >= 3) return { kind: "rollout", namespace: parts[1], name: parts[2] };
  return { kind: "overview" };
}

function connect() {
  if (feed) feed.close();
  current = route();
  data = null;
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  const query = current.kind === "rollout" ? `?namespace=${encodeURIComponent(current.namespace)}&name=${encodeURIComponent(current.name)}` : "";
  const source = new EventSource(`/api/stream${query}`);
  feed = source;
  const onData = (event) => {
    if (source !== feed) return;
    data = JSON.parse(event.data);
    setLive("live");
    render();
    // The first data on screen: the bench's "first meaningful paint".
    if (!performance.getEntriesByName("sluice-first-data").length) performance.mark("sluice-first-data");
  };
  source.addEventListener("overview", onData);
  source.addEventListener("rollout", onData);
  source.addEventListener("open", () => source === feed && setLive("live"));
  source.addEventListener("error", () => {
    if (source !== feed) return;
    setLive("reconnecting");
    // EventSource retries by itself unless the server answered with an error status.
    if (source.readyState === EventSource.CLOSED) setTimeout(() => source === feed && connect(), 2000);
  });
}

function setLive(state) {
  live.dataset.state = state;
  live.textContent = state === "live" ? "● Live" : "◌ Reconnecting…";
}

window.addEventListener("hashchange", () => {
  connect();
  main.focus();
});

function render() {
  renderCrumbs();
  if (current.kind === "overview") renderOverview(data);
  else renderRollout(data);
}

function renderCrumbs() {
  const items = [h("li", {}, h("a", { href: "#/" }, "Rollouts"))];
  if (current.kind === "rollout") {
    items.push(h("li", {}, h("span", { "aria-current": "page" }, `${current.namespace}/${current.name}`)));
  }
  crumbs.replaceChildren(h("ol", {}, items));
}

// ---- overview ----

function renderOverview(view) {
  let results = document.getElementById("results");
  if (!results) {
    main.replaceChildren(
      h("h1", {}, "Rollouts"),
      overviewFilters(view),
      h("div", { id: "results", "aria-live": "polite" }),
    );
    results = document.getElementById("results");
  }
  updateNamespaceOptions(view);
  const rows = view.rollouts.filter(matches);
  const scope = view.namespace ? `namespace ${view.namespace}` : "all namespaces";
  const summary = h("p", { class: "muted", id: "count" }, `${rows.length} of ${view.rollouts.length} Rollouts in ${scope}${view.readOnly ? " · read-only" : ""}`);
  if (!rows.length) {
    results.replaceChildren(summary, h("p", { class: "empty" }, view.rollouts.length ? "No Rollout matches the filters." : "No Rollouts yet."));
    return;
  }
  const head = ["Rollout", "Namespace", "Phase", "Step", "Canary weight (desired / actual)", "Latest score"];
  results.replaceChildren(
    summary,
    h("table", { class: "rollouts" },
      h("caption", { class: "visually-hidden" }, "Rollouts"),
      h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((r) => h("tr", { "data-rollout": `${r.namespace}/${r.name}` },
        h("th", { scope: "row", "data-label": "Rollout" }, h("a", { href: `#/rollouts/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}` }, r.name), " ", h("span", { class: "muted small" }, r.strategy === "canary" ? "canary" : "blue/green")),
        h("td", { "data-label": "Namespace" }, r.namespace),
        h("td", { "data-label": "Phase", class: "phase" }, badge("phase", r.phase, PHASE_ICONS), r.aborted ? h("span", { class: "badge phase-degraded" }, "aborted") : null, r.paused && r.phase !== "Paused" ? h("span", { class: "small muted" }, " paused") : null),
        h("td", { "data-label": "Step", class: "step" }, stepText(r)),
        h("td", { "data-label": "Canary weight", class: "weight" }, r.strategy === "canary" ? `${r.desiredWeight ?? "—"} % / ${r.actualWeight ?? "—"} %` : "—"),
        h("td", { "data-label": "Latest score", class: "score" }, r.score === null ? h("span", { class: "muted" }, "—") : [fmt(r.score, 4), " ", badge("verdict", r.verdict, VERDICT_ICONS)]),
      ))),
    ),
  );
}

function stepText(r) {
  if (r.strategy !== "canary" || !r.steps) return "—";
  const at = Math.min(r.step ?? 0, r.steps);
  return at >= r.steps ? `done (${r.steps}/${r.steps})` : `${at + 1}/${r.steps}`;
}

function overviewFilters(view) {
  const field = (id, text, control) => h("div", { class: "field" }, h("label", { for: id }, text), control);
  const search = h("input", { id: "f-search", type: "search", placeholder: "name or namespace", value: filters.search, oninput: (e) => { filters.search = e.target.value; renderOverview(data); } });
  const phase = h("select", { id: "f-phase", onchange: (e) => { filters.phase = e.target.value; renderOverview(data); } },
    [["", "Any phase"], ...["Healthy", "Progressing", "Paused", "Degraded"].map((p) => [p, p])].map(([v, t]) => h("option", { value: v, selected: filters.phase === v }, t)));
  const ns = h("select", { id: "f-namespace", onchange: (e) => { filters.namespace = e.target.value; renderOverview(data); } });
  return h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
    field("f-search", "Search", search), field("f-namespace", "Namespace", ns), field("f-phase", "Phase", phase));
}

function updateNamespaceOptions(view) {
  const select = document.getElementById("f-namespace");
  const names = [...new Set(view.rollouts.map((r) => r.namespace))].sort();
  const want = ["", ...names].join("\n");
  if (select.dataset.options === want) return;
  select.dataset.options = want;
  select.replaceChildren(...[["", "All namespaces"], ...names.map((n) => [n, n])].map(([v, t]) => h("option", { value: v, selected: filters.namespace === v }, t)));
}

function matches(r) {
  const q = filters.search.trim().toLowerCase();
  return (!filters.namespace || r.namespace === filters.namespace)
    && (!filters.phase || r.phase === filters.phase)
    && (!q || r.name.toLowerCase().includes(q) || r.namespace.toLowerCase().includes(q));
}

// ---- one Rollout ----

function renderRollout(view) {
  if (!view) {
    main.replaceChildren(h("h1", {}, current.name), h("p", { class: "empty" }, `Rollout ${current.name} is not in namespace ${current.namespace} (deleted, or outside this dashboard's scope).`), h("p", {}, h("a", { href: "#/" }, "Back to all Rollouts")));
    return;
  }
  const open = new Set([...main.querySelectorAll("details[open]")].map((d) => d.id));
  const focused = document.activeElement && document.activeElement.id;
  const r = view.rollout;
  main.replaceChildren(
    h("div", { class: "title" },
      h("h1", {}, r.name, " ", h("span", { class: "muted small" }, r.namespace)),
      badge("phase", r.phase, PHASE_ICONS),
      r.aborted ? h("span", { class: "badge phase-degraded" }, "✖ aborted") : null),
    r.message ? h("p", { class: "message" }, r.message) : null,
    view.readOnly ? h("p", { class: "muted small", id: "read-only" }, "Read-only: actions are off.") : actions(r),
    h("div", { class: "grid" },
      h("section", { "aria-labelledby": "h-steps" }, h("h2", { id: "h-steps" }, "Steps"), steps(view)),
      h("section", { "aria-labelledby": "h-weights" }, h("h2", { id: "h-weights" }, "Traffic"),
        r.strategy === "canary" ? Charts.weights(r.desiredWeight, r.actualWeight) : h("p", {}, "Blue/green: traffic switches at promotion."),
        view.pauseReasons.length ? h("p", { class: "small" }, "‖ Paused: ", view.pauseReasons.join(", ")) : null,
        conditions(view.conditions))),
    h("section", { "aria-labelledby": "h-revisions" }, h("h2", { id: "h-revisions" }, "Revisions"), revisions(view.revisions)),
    h("section", { "aria-labelledby": "h-runs" }, h("h2", { id: "h-runs" }, "AnalysisRuns"),
      view.runs.length ? view.runs.map(run) : h("p", { class: "muted" }, "No AnalysisRuns.")),
  );
  for (const id of open) { const d = document.getElementById(id); if (d) d.open = true; }
  if (focused) { const f = document.getElementById(focused); if (f) f.focus(); }
}

function actions(r) {
  const promoted = r.phase === "Healthy" && !r.aborted;
  const button = (action, text, title, disabled) => h("button", { type: "button", id: `act-${action}`, "data-action": action, disabled, title, onclick: () => confirmAction(r, action, text) }, text);
  return h("div", { class: "actions", role: "group", "aria-label": "Actions" },
    button("promote", "Promote", "Go past the current pause or step", promoted || r.aborted),
    button("promote-full", "Promote full", "Skip every remaining step and promote now", promoted || r.aborted),
    button("abort", "Abort", "All traffic back to the stable revision", promoted || r.aborted),
    button("retry", "Retry", "Start the aborted update again from its first step", !r.aborted));
}

const ACTION_TEXT = {
  promote: "goes past its current pause or step",
  "promote-full": "skips every remaining step, pause and analysis, and is promoted now",
  abort: "is aborted: all traffic goes back to the stable revision",
  retry: "starts its update again from the first step",
};

function confirmAction(r, action, text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = `${text} ${r.name}?`;
  document.getElementById("confirm-text").textContent = `Rollout ${r.namespace}/${r.name} ${ACTION_TEXT[action]}.`;
  const ok = document.getElementById("confirm-ok");
  ok.textContent = text;
  ok.onclick = () => { dialog.close("ok"); act(r, action); };
  document.getElementById("confirm-cancel").onclick = () => dialog.close("cancel");
  dialog.showModal();
  document.getElementById("confirm-cancel").focus();
}

async function act(r, action) {
  const url = `/api/rollouts/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}/actions/${action}`;
  try {
    const response = await fetch(url, { method: "POST", headers: { "X-Sluice-Dashboard": "1" } });
    const body = await response.json();
    toast(response.ok ? `✔ ${body.message}` : `✖ ${body.error}`, response.ok);
  } catch (e) {
    toast(`✖ The dashboard did not answer: ${e.message}`, false);
  }
}

function toast(text, ok) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.dataset.ok = ok ? "true" : "false";
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 6000);
}

function describeStep(step) {
  if (step.setWeight !== undefined) return `Set canary weight to ${step.setWeight} %`;
  if (step.pause !== undefined) return step.pause && step.pause.duration !== undefined ? `Pause ${step.pause.duration}${typeof step.pause.duration === "number" ? " s" : ""}` : "Pause until promoted";
  if (step.analysis) return `Analysis: ${(step.analysis.templates || []).map((t) => t.templateName || t.clusterTemplateName || "?").join(", ")}`;
  if (step.setCanaryScale) return `Canary scale: ${JSON.stringify(step.setCanaryScale)}`;
  if (step.setHeaderRoute) return `Header route ${step.setHeaderRoute.name || ""}`;
  if (step.setMirrorRoute) return `Mirror route ${step.setMirrorRoute.name || ""}`;
  return Object.keys(step).join(", ");
}

function steps(view) {
  const r = view.rollout;
  if (!view.stepSpecs.length) return h("p", { class: "muted" }, r.strategy === "canary" ? "No steps: straight to 100 %." : "Blue/green has no steps.");
  const at = r.step ?? 0;
  return h("ol", { class: "steps" }, view.stepSpecs.map((step, i) => {
    const state = i < at ? "done" : i === at ? "current" : "todo";
    const mark = { done: "✔", current: "▶", todo: "○" }[state];
    return h("li", { class: `step step-${state}`, "aria-current": state === "current" ? "step" : null },
      h("span", { class: "mark", "aria-hidden": "true" }, mark), " ", describeStep(step),
      state === "current" ? h("span", { class: "small" }, " (current)") : state === "done" ? h("span", { class: "visually-hidden" }, " (done)") : null);
  }));
}

function conditions(list) {
  if (!list.length) return null;
  return h("details", { id: "conditions" }, h("summary", {}, `Conditions (${list.length})`),
    h("ul", { class: "plain" }, list.map((c) => h("li", {}, `${c.status === "True" ? "✔" : "✖"} ${c.kind}: ${c.status}`, c.reason ? ` · ${c.reason}` : "", c.message ? h("div", { class: "small muted" }, c.message) : null))));
}

function revisions(list) {
  if (!list.length) return h("p", { class: "muted" }, "No ReplicaSets yet.");
  return h("ul", { class: "revisions" }, list.map((rev) => h("li", { class: "revision", "data-hash": rev.hash || "" },
    h("div", {}, h("strong", {}, `Revision ${rev.revision ?? "?"}`), " ", rev.roles.map((role) => h("span", { class: `badge role-${role}` }, role)), " ",
      h("code", {}, rev.name), " ", h("span", { class: "small" }, `${rev.ready}/${rev.replicas} ready`)),
    h("div", { class: "small muted" }, rev.images.join(", ")),
    rev.pods.length ? h("ul", { class: "pods" }, rev.pods.map((p) => h("li", { class: p.ready ? "pod-ready" : "pod-waiting" }, p.ready ? "✔ " : "○ ", p.name, " ", h("span", { class: "muted small" }, p.ready ? "ready" : p.phase || "pending")))) : null)));
}

// ---- AnalysisRuns and judgements ----

function run(r) {
  return h("article", { class: "run", id: `run-${r.name}`, "aria-labelledby": `run-h-${r.name}` },
    h("h3", { id: `run-h-${r.name}` }, r.name, " ", badge("run", r.phase, RUN_ICONS)),
    h("p", { class: "small muted" }, [r.kind ? `${r.kind} analysis` : "analysis", r.step !== null ? ` at step ${Number(r.step) + 1}` : "", r.created ? ` · created ${new Date(r.created).toLocaleString()}` : ""].join("")),
    r.message ? h("p", { class: "message" }, r.message) : null,
    r.judgement ? judgement(r) : null,
    r.metrics.length ? h("div", { class: "measured" }, h("h4", {}, "Threshold metrics"), r.metrics.map(measured)) : null);
}

function judgement(r) {
  const j = r.judgement;
  const history = j.history && j.history.length ? j.history : [{ judgedAt: j.judgedAt, score: j.score, result: j.result }];
  const metrics = j.metrics.map((m) => ({ m, effect: effectOf(m) }));
  const domain = effectDomain(metrics.map((x) => x.effect));
  return h("section", { class: "judgement", "aria-label": `Judgement of ${r.name}` },
    h("div", { class: "verdict" },
      h("span", { class: "score-big" }, fmt(j.score, 4)), " ", badge("verdict", j.result, VERDICT_ICONS),
      h("span", { class: "small muted" }, ` against ${j.control} · judged ${new Date(j.judgedAt).toLocaleTimeString()}`,
        j.window && j.window.length === 2 ? ` over ${new Date(j.window[0]).toLocaleTimeString()}–${new Date(j.window[1]).toLocaleTimeString()}` : "")),
    j.reason ? h("p", { class: "reason" }, h("strong", {}, "Reason: "), j.reason) : null,
    h("figure", {}, Charts.score(history, r.pass, r.marginal), h("figcaption", { class: "small" }, `Score per judgement; ● pass (≥ ${r.pass}), ◆ marginal (≥ ${r.marginal}), ✖ fail.`)),
    j.groups.length > 1 ? h("p", { class: "small" }, "Groups: ", j.groups.map((g) => `${g.name} ${fmt(g.score)}`).join(" · ")) : null,
    h("div", { class: "table-wrap" }, h("table", { class: "metrics" },
      h("caption", {}, "Judge metrics: shift of canary against control (percent of the control median; rate ratio − 1 for rates)"),
      h("thead", {}, h("tr", {}, ["Metric", "Classification", "p-value", "Shift [interval]"].map((c) => h("th", { scope: "col" }, c)), h("th", { scope: "col", class: "axis-cell" }, Charts.effectAxis(domain)))),
      h("tbody", {}, metrics.map(({ m, effect }) => h("tr", { class: "metric-row", "data-metric": m.name },
        h("th", { scope: "row", "data-label": "Metric" }, m.name, m.critical ? h("span", { class: "badge cls-high" }, "critical") : null, m.muted ? h("span", { class: "small muted" }, " muted") : null, h("div", { class: "small muted" }, m.group)),
        h("td", { "data-label": "Classification" }, badge("cls", m.classification, CLASS_ICONS)),
        h("td", { "data-label": "p-value" }, m.statistics ? fmt(m.statistics.pValue) : "—"),
        h("td", { "data-label": "Shift" }, shiftText(m)),
        h("td", { "data-label": "On the common axis", class: "axis-cell" }, Charts.effectRow(effect, domain, m.classification))))))),
    h("details", { id: `dist-${r.name}`, class: "distributions" }, h("summary", {}, "Canary vs control distributions"),
      h("div", { class: "dist-grid" }, j.metrics.filter((m) => m.control && m.control.quantiles).map((m) => h("figure", {}, Charts.distribution(m.name, m.control.quantiles, m.experiment && m.experiment.quantiles), h("figcaption", { class: "small" }, m.name))))),
    h("details", { id: `reasons-${r.name}` }, h("summary", {}, "Every metric's reason"),
      h("ul", { class: "plain small" }, j.metrics.map((m) => h("li", {}, h("strong", {}, m.name), ": ", m.reason || "—")))));
}

function shiftText(m) {
  const st = m.statistics;
  if (!st) return m.reason || "—";
  const ci = st.confidenceInterval;
  const kind = m.experiment && m.experiment.events !== undefined ? "rate ratio " : "";
  return `${kind}${fmt(st.estimate)} [${fmt(ci.lower)}, ${ci.upper === null ? "∞" : fmt(ci.upper)}] at ${Math.round(ci.level * 100)} %`;
}

/** A metric's effect in percent of control: the shift over the control median, or the rate ratio − 1. */
function effectOf(m) {
  const st = m.statistics;
  if (!st) return null;
  const ci = st.confidenceInterval;
  let scale;
  if (m.experiment && m.experiment.events !== undefined) {
    scale = (v) => (v === null ? null : (v - 1) * 100);
  } else {
    const base = m.control && m.control.median;
    if (!base) return null;
    scale = (v) => (v === null ? null : (v / Math.abs(base)) * 100);
  }
  return { estimate: scale(st.estimate), lower: scale(ci.lower), upper: scale(ci.upper) };
}

function effectDomain(effects) {
  let m = 5;
  for (const e of effects) for (const v of e ? [e.estimate, e.lower, e.upper] : []) if (v !== null && Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  m = Math.min(m * 1.1, 1000);
  return [-m, m];
}

function measured(m) {
  const counts = {};
  for (const p of m.measurements) counts[p.phase] = (counts[p.phase] || 0) + 1;
  return h("figure", { class: "measured-metric", "data-metric": m.name },
    h("figcaption", {}, h("strong", {}, m.name), " ", badge("run", m.phase, RUN_ICONS),
      h("div", { class: "small" }, m.successCondition ? `success when ${m.successCondition}` : "", m.successCondition && m.failureCondition ? " · " : "", m.failureCondition ? `failure when ${m.failureCondition}` : ""),
      h("div", { class: "small muted" }, Object.entries(counts).map(([k, v]) => `${RUN_ICONS[k] || "•"} ${v} ${k.toLowerCase()}`).join(" · "))),
    Charts.series(m));
}

connect();
