/* cnnbench's own small SVG line chart (no dependencies, ships with the package).

   cnnbenchChart.lines(series, {width, height, xLabel, yLabel}) -> <svg> element
   series: [{name, points: [{x, y, low, high}]}]: a line per series, its interval as a
   band. Text goes in with textContent: names from a study are never parsed as markup. */
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860",
                   "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd"];  // seaborn "deep"

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function ticks(lo, hi, count) {
    const span = hi - lo || 1;
    const step0 = Math.pow(10, Math.floor(Math.log10(span / count)));
    const step = [1, 2, 5, 10].map(m => m * step0).find(s => span / s <= count) || step0 * 10;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(+v.toFixed(6));
    return out;
  }

  function lines(series, opts) {
    const o = Object.assign({width: 520, height: 260, xLabel: "", yLabel: ""}, opts || {});
    const m = {l: 48, r: 120, t: 10, b: 34};
    const svg = el("svg", {width: o.width, height: o.height, viewBox: `0 0 ${o.width} ${o.height}`,
                           role: "img"});
    const pts = series.flatMap(s => s.points);
    if (!pts.length) return svg;
    const xs = pts.map(p => p.x), ys = pts.flatMap(p => [p.y, p.low, p.high]).filter(
      v => v !== null && v !== undefined && isFinite(v));
    let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    if (y0 === y1) { y0 -= 1; y1 += 1; }
    const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
    const W = o.width - m.l - m.r, H = o.height - m.t - m.b;
    const X = x => m.l + (x - x0) / (x1 - x0) * W, Y = y => m.t + (1 - (y - y0) / (y1 - y0)) * H;
    const axis = el("g", {stroke: "#999"});
    axis.appendChild(el("line", {x1: m.l, y1: m.t + H, x2: m.l + W, y2: m.t + H}));
    axis.appendChild(el("line", {x1: m.l, y1: m.t, x2: m.l, y2: m.t + H}));
    svg.appendChild(axis);
    for (const t of ticks(y0, y1, 5)) {
      svg.appendChild(el("line", {x1: m.l, x2: m.l + W, y1: Y(t), y2: Y(t), stroke: "#eee"}));
      svg.appendChild(el("text", {x: m.l - 4, y: Y(t) + 4, "text-anchor": "end"}, String(t)));
    }
    for (const t of ticks(x0, x1, 8).filter(Number.isInteger)) {
      svg.appendChild(el("text", {x: X(t), y: m.t + H + 14, "text-anchor": "middle"}, String(t)));
    }
    svg.appendChild(el("text", {x: m.l + W / 2, y: o.height - 4, "text-anchor": "middle"}, o.xLabel));
    svg.appendChild(el("text", {x: 12, y: m.t + H / 2, transform: `rotate(-90 12 ${m.t + H / 2})`,
                                "text-anchor": "middle"}, o.yLabel));
    series.forEach((s, i) => {
      const colour = PALETTE[i % PALETTE.length];
      const band = s.points.filter(p => p.low !== null && p.high !== null &&
                                        p.low !== undefined && p.high !== undefined);
      if (band.length > 1) {
        const d = band.map((p, j) => `${j ? "L" : "M"}${X(p.x)},${Y(p.high)}`).join("") +
          band.slice().reverse().map(p => `L${X(p.x)},${Y(p.low)}`).join("") + "Z";
        svg.appendChild(el("path", {d, fill: colour, "fill-opacity": 0.18, stroke: "none"}));
      }
      const line = s.points.filter(p => p.y !== null && p.y !== undefined);
      if (line.length) {
        const d = line.map((p, j) => `${j ? "L" : "M"}${X(p.x)},${Y(p.y)}`).join("");
        svg.appendChild(el("path", {d, fill: "none", stroke: colour, "stroke-width": 2}));
        for (const p of line) svg.appendChild(el("circle", {cx: X(p.x), cy: Y(p.y), r: 2.5, fill: colour}));
      }
      const ly = m.t + 12 + i * 16;
      svg.appendChild(el("rect", {x: m.l + W + 10, y: ly - 9, width: 10, height: 10, fill: colour}));
      svg.appendChild(el("text", {x: m.l + W + 24, y: ly}, s.name.length > 16 ? s.name.slice(0, 15) + "\u2026" : s.name));
    });
    return svg;
  }

  window.cnnbenchChart = {lines, PALETTE};
})();
