// Sluice dashboard: DOM helpers and the SVG charts, drawn by hand. No framework, nothing fetched.
// Every chart carries a text alternative (role="img" and aria-label) and never relies on colour
// alone: shapes, dash patterns and text labels say the same.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

/** An HTML element: h("a", {href: "#/"}, "text", child...). Strings become text nodes. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element, as h. */
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** A number for people: up to `digits` significant digits, "—" when missing. */
function fmt(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return "—";
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(2);
  return String(Number(x.toPrecision(digits)));
}

function pct(x) {
  return x === null || x === undefined ? "—" : `${fmt(x, 3)} %`;
}

/** Evenly spaced "nice" ticks over [lo, hi]. */
function ticks(lo, hi, count = 4) {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((m) => span / m <= count) || raw;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(6)));
  return out;
}

const Charts = {
  /** The score over the judgements against the pass and marginal thresholds. */
  score(history, pass, marginal) {
    const W = 560, H = 200, L = 40, R = 92, T = 10, B = 26;
    const iw = W - L - R, ih = H - T - B;
    const n = history.length;
    const x = (i) => L + (n <= 1 ? iw / 2 : (i * iw) / (n - 1));
    const y = (v) => T + ih - (Math.max(0, Math.min(100, v)) / 100) * ih;
    const last = history[n - 1];
    const label = `Score over ${n} judgement${n === 1 ? "" : "s"}: latest ${fmt(last ? last.score : null)} (${last ? last.result : "none"}); pass at ${pass}, marginal at ${marginal}.`;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart score-chart", role: "img", "aria-label": label });
    svg.append(
      s("rect", { x: L, y: y(100), width: iw, height: y(pass) - y(100), class: "band-pass" }),
      s("rect", { x: L, y: y(pass), width: iw, height: y(marginal) - y(pass), class: "band-marginal" }),
      s("rect", { x: L, y: y(marginal), width: iw, height: y(0) - y(marginal), class: "band-fail" }),
    );
    for (const t of [0, 25, 50, 75, 100]) {
      svg.append(s("text", { x: L - 6, y: y(t) + 4, class: "tick", "text-anchor": "end" }, t));
    }
    for (const [v, name] of [[pass, "pass"], [marginal, "marginal"]]) {
      svg.append(
        s("line", { x1: L, x2: L + iw, y1: y(v), y2: y(v), class: `threshold threshold-${name}` }),
        s("text", { x: L + iw + 6, y: y(v) + 4, class: "tick" }, `${name} ≥ ${fmt(v)}`),
      );
    }
    svg.append(s("text", { x: L + iw + 6, y: y(0) - 2, class: "tick" }, "fail below"));
    if (n > 1) {
      svg.append(s("polyline", { points: history.map((p, i) => `${x(i)},${y(p.score)}`).join(" "), class: "score-line" }));
    }
    history.forEach((p, i) => svg.append(Charts.marker(x(i), y(p.score), p.result, `${new Date(p.judgedAt).toLocaleTimeString()}: ${fmt(p.score)} (${p.result})`)));
    if (n > 0) {
      svg.append(
        s("text", { x: L, y: H - 6, class: "tick" }, new Date(history[0].judgedAt).toLocaleTimeString()),
        s("text", { x: L + iw, y: H - 6, class: "tick", "text-anchor": "end" }, new Date(last.judgedAt).toLocaleTimeString()),
      );
    }
    return svg;
  },

  /** A point whose shape says its verdict: circle Pass, diamond Marginal, cross Fail. */
  marker(cx, cy, result, title) {
    const g = s("g", { class: `marker marker-${String(result).toLowerCase()}` }, s("title", {}, title));
    if (result === "Pass" || result === "Successful") g.append(s("circle", { cx, cy, r: 4.5 }));
    else if (result === "Marginal" || result === "Inconclusive" || result === "Running")
      g.append(s("path", { d: `M${cx} ${cy - 6}L${cx + 6} ${cy}L${cx} ${cy + 6}L${cx - 6} ${cy}Z` }));
    else g.append(s("path", { d: `M${cx - 5} ${cy - 5}L${cx + 5} ${cy + 5}M${cx + 5} ${cy - 5}L${cx - 5} ${cy + 5}`, class: "cross" }));
    return g;
  },

  /** The shared axis of the metrics' effect rows: change against control in percent. */
  effectAxis(domain) {
    const [lo, hi] = domain;
    const W = 240, H = 22, X = (v) => 8 + ((v - lo) / (hi - lo)) * (W - 16);
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart effect-axis", role: "img", "aria-label": `Axis: change of canary against control, ${fmt(lo)} % to ${fmt(hi)} %` });
    for (const t of ticks(lo, hi, 4)) {
      svg.append(s("line", { x1: X(t), x2: X(t), y1: 14, y2: 20, class: "axis" }), s("text", { x: X(t), y: 11, class: "tick", "text-anchor": "middle" }, `${t}%`));
    }
    return svg;
  },

  /** One metric's shift estimate and its interval on the shared axis. */
  effectRow(effect, domain, classification) {
    const [lo, hi] = domain;
    const W = 240, H = 22, X = (v) => 8 + ((Math.max(lo, Math.min(hi, v)) - lo) / (hi - lo)) * (W - 16);
    if (!effect) return h("span", { class: "muted" }, "no estimate");
    const label = `Change ${pct(effect.estimate)}, interval ${pct(effect.lower)} to ${effect.upper === null ? "unbounded" : pct(effect.upper)}`;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: `chart effect-row cls-${classification.toLowerCase()}`, role: "img", "aria-label": label });
    svg.append(s("line", { x1: X(0), x2: X(0), y1: 0, y2: H, class: "zero" }));
    const l = effect.lower === null ? lo : effect.lower;
    const u = effect.upper === null ? hi : effect.upper;
    svg.append(s("line", { x1: X(l), x2: X(u), y1: H / 2, y2: H / 2, class: "interval" }));
    if (effect.upper === null) svg.append(s("path", { d: `M${X(hi)} ${H / 2}l-6 -4v8z`, class: "interval-end" }));
    if (effect.estimate !== null) svg.append(s("rect", { x: X(effect.estimate) - 4, y: H / 2 - 4, width: 8, height: 8, class: "estimate" }));
    return svg;
  },

  /** Canary and control distributions from their recorded quantiles (0 %, 5 %, …, 100 %). */
  distribution(name, control, experiment) {
    const W = 300, H = 150, L = 36, R = 10, T = 8, B = 30;
    const iw = W - L - R, ih = H - T - B;
    const all = [...(control || []), ...(experiment || [])].filter((v) => v !== null);
    if (!all.length) return h("p", { class: "muted" }, "No data on either side.");
    let lo = Math.min(...all), hi = Math.max(...all);
    if (hi === lo) { lo -= 1; hi += 1; }
    const x = (v) => L + ((v - lo) / (hi - lo)) * iw;
    const y = (q) => T + ih - q * ih;
    const line = (qs) => qs.map((v, i) => (v === null ? null : `${x(v)},${y(i / (qs.length - 1))}`)).filter(Boolean).join(" ");
    const med = (qs) => (qs && qs.length ? qs[Math.floor(qs.length / 2)] : null);
    const label = `${name}: cumulative distributions from quantiles; canary median ${fmt(med(experiment))}, control median ${fmt(med(control))}.`;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart distribution", role: "img", "aria-label": label });
    for (const q of [0, 0.5, 1]) svg.append(s("text", { x: L - 4, y: y(q) + 4, class: "tick", "text-anchor": "end" }, `${q * 100}%`));
    for (const t of ticks(lo, hi, 3)) svg.append(s("text", { x: x(t), y: H - 14, class: "tick", "text-anchor": "middle" }, fmt(t)));
    svg.append(s("line", { x1: L, x2: L + iw, y1: y(0), y2: y(0), class: "axis" }));
    if (control && control.length) svg.append(s("polyline", { points: line(control), class: "cdf cdf-control" }));
    if (experiment && experiment.length) svg.append(s("polyline", { points: line(experiment), class: "cdf cdf-canary" }));
    svg.append(
      s("line", { x1: L + 4, x2: L + 24, y1: H - 4, y2: H - 4, class: "cdf cdf-canary" }),
      s("text", { x: L + 28, y: H - 1, class: "tick" }, "canary (solid)"),
      s("line", { x1: L + 124, x2: L + 144, y1: H - 4, y2: H - 4, class: "cdf cdf-control" }),
      s("text", { x: L + 148, y: H - 1, class: "tick" }, "control (dashed)"),
    );
    return svg;
  },

  /** A threshold metric's measured values over time; the marker shape says each phase. */
  series(metric) {
    const W = 560, H = 160, L = 48, R = 12, T = 10, B = 24;
    const iw = W - L - R, ih = H - T - B;
    const pts = metric.measurements.filter((p) => p.value !== null);
    if (!pts.length) return h("p", { class: "muted" }, "No numeric values measured yet.");
    let lo = Math.min(...pts.map((p) => p.value)), hi = Math.max(...pts.map((p) => p.value));
    if (hi === lo) { lo -= Math.abs(lo) * 0.1 || 1; hi += Math.abs(hi) * 0.1 || 1; }
    const n = pts.length;
    const x = (i) => L + (n <= 1 ? iw / 2 : (i * iw) / (n - 1));
    const y = (v) => T + ih - ((v - lo) / (hi - lo)) * ih;
    const label = `${metric.name}: ${n} measured value${n === 1 ? "" : "s"}, latest ${fmt(pts[n - 1].value)} (${pts[n - 1].phase}).`;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart series", role: "img", "aria-label": label });
    for (const t of ticks(lo, hi, 3)) svg.append(s("text", { x: L - 6, y: y(t) + 4, class: "tick", "text-anchor": "end" }, fmt(t)), s("line", { x1: L, x2: L + iw, y1: y(t), y2: y(t), class: "grid" }));
    if (n > 1) svg.append(s("polyline", { points: pts.map((p, i) => `${x(i)},${y(p.value)}`).join(" "), class: "series-line" }));
    pts.forEach((p, i) => svg.append(Charts.marker(x(i), y(p.value), p.phase, `${p.at ? new Date(p.at).toLocaleTimeString() : ""} ${p.text} (${p.phase})`)));
    if (pts[0].at) svg.append(s("text", { x: L, y: H - 6, class: "tick" }, new Date(pts[0].at).toLocaleTimeString()));
    if (n > 1 && pts[n - 1].at) svg.append(s("text", { x: L + iw, y: H - 6, class: "tick", "text-anchor": "end" }, new Date(pts[n - 1].at).toLocaleTimeString()));
    return svg;
  },

  /** Desired against actual canary weight, as two labelled bars. */
  weights(desired, actual) {
    const W = 300, H = 52, L = 70, iw = W - L - 44;
    const bar = (y, v, cls, name) => [
      s("text", { x: 0, y: y + 11, class: "tick" }, name),
      s("rect", { x: L, y, width: iw, height: 14, class: "bar-track" }),
      s("rect", { x: L, y, width: (iw * Math.max(0, Math.min(100, v || 0))) / 100, height: 14, class: cls }),
      s("text", { x: L + iw + 4, y: y + 11, class: "tick" }, v === null || v === undefined ? "—" : `${v}%`),
    ];
    return s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart weights", role: "img", "aria-label": `Canary weight: desired ${desired ?? "—"} %, actual ${actual ?? "—"} %` },
      bar(4, desired, "bar-desired", "desired"), bar(30, actual, "bar-actual", "actual"));
  },
};
