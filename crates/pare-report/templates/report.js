(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var COLORS = { a: "#3f9d52", r: "#d9534f", c: "#e0962a", m: "#8e5ab5" };
  function human(n) {
    var u = ["B", "kB", "MB", "GB", "TB"], i = 0;
    if (n < 1000) return n + " B";
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return (n < 10 ? n.toFixed(1) : n.toFixed(0)) + " " + u[i];
  }
  function el(name, attrs, parent) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function sum(row) { var s = 0; for (var i = 0; i < row.length; i++) s += row[i].v; return s; }
  function worst(row, side, scale) {
    var s = sum(row) * scale, mx = 0, mn = Infinity;
    for (var i = 0; i < row.length; i++) { var a = row[i].v * scale; mx = Math.max(mx, a); mn = Math.min(mn, a); }
    return Math.max(side * side * mx / (s * s), s * s / (side * side * mn));
  }
  function place(row, r, scale, out) {
    var s = sum(row) * scale, i, d;
    if (r.w >= r.h) {
      var cw = s / r.h, cy = r.y;
      for (i = 0; i < row.length; i++) { d = row[i].v * scale / cw; out.push({ t: row[i].t, x: r.x, y: cy, w: cw, h: d }); cy += d; }
      return { x: r.x + cw, y: r.y, w: r.w - cw, h: r.h };
    }
    var ch = s / r.w, cx = r.x;
    for (i = 0; i < row.length; i++) { d = row[i].v * scale / ch; out.push({ t: row[i].t, x: cx, y: r.y, w: d, h: ch }); cx += d; }
    return { x: r.x, y: r.y + ch, w: r.w, h: r.h - ch };
  }
  // Squarified treemap layout of `items` ({v, t}) into rectangle r.
  function squarify(items, r) {
    var out = [], rest = items.filter(function (i) { return i.v > 0; }), total = sum(rest);
    if (!total) return out;
    var scale = r.w * r.h / total, row = [];
    while (rest.length) {
      var side = Math.min(r.w, r.h), c = rest[0];
      if (!row.length || worst(row.concat([c]), side, scale) <= worst(row, side, scale)) { row.push(c); rest.shift(); }
      else { r = place(row, r, scale, out); row = []; }
    }
    if (row.length) place(row, r, scale, out);
    return out;
  }
  function Treemap(box, tree) {
    this.box = box; this.stack = [tree];
    this.crumbs = box.querySelector(".crumbs"); this.area = box.querySelector(".treemap");
    this.draw();
  }
  Treemap.prototype.draw = function () {
    var self = this, node = this.stack[this.stack.length - 1], W = 1000, H = 520;
    this.crumbs.textContent = "";
    this.stack.forEach(function (t, i) {
      var a = document.createElement(i < self.stack.length - 1 ? "a" : "span");
      a.textContent = (i === 0 ? "/" : t.n + "/") + (i === self.stack.length - 1 ? "  (" + human(t.s) + ", " + t.f + " files)" : "");
      if (i < self.stack.length - 1) a.addEventListener("click", function () { self.stack = self.stack.slice(0, i + 1); self.draw(); });
      self.crumbs.appendChild(a);
      if (i > 0 && i < self.stack.length - 1) self.crumbs.appendChild(document.createTextNode(" "));
    });
    this.area.textContent = "";
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img" }, this.area);
    var kids = (node.c || []).map(function (t) { return { v: t.s, t: t }; });
    if (!kids.length) kids = [{ v: Math.max(node.s, 1), t: node }];
    squarify(kids, { x: 0, y: 0, w: W, h: H }).forEach(function (r, i) {
      var t = r.t, isDir = t !== node && t.c && t.c.length;
      var g = el("g", { "class": isDir ? "dir" : "leaf" }, svg);
      var fill = t.k ? COLORS[t.k] : "hsl(" + ((i * 47) % 360) + ",45%,68%)";
      el("rect", { x: r.x, y: r.y, width: Math.max(r.w, 0), height: Math.max(r.h, 0), fill: fill }, g);
      var title = el("title", {}, g);
      title.textContent = t.n + " — " + human(t.s) + " (" + t.f + " files)";
      // One level deeper drawn inside, so the structure shows before any click.
      if (isDir && r.w > 40 && r.h > 36) {
        var inner = t.c.map(function (c) { return { v: c.s, t: c }; });
        squarify(inner, { x: r.x + 2, y: r.y + 17, w: r.w - 4, h: r.h - 19 }).forEach(function (q, j) {
          var f = q.t.k ? COLORS[q.t.k] : "hsl(" + ((i * 47) % 360) + ",40%," + (76 + (j % 3) * 4) + "%)";
          var rr = el("rect", { x: q.x, y: q.y, width: Math.max(q.w, 0), height: Math.max(q.h, 0), fill: f, "class": "inner" }, g);
          var tt = el("title", {}, rr);
          tt.textContent = t.n + "/" + q.t.n + " — " + human(q.t.s);
          if (q.w > 56 && q.h > 14) {
            var it = el("text", { x: q.x + 3, y: q.y + 11, "class": "inner" }, g);
            var lb = q.t.n, mx = Math.floor((q.w - 6) / 6.2);
            it.textContent = lb.length > mx ? lb.slice(0, Math.max(mx - 1, 1)) + "…" : lb;
          }
        });
      }
      if (r.w > 56 && r.h > 16) {
        var tx = el("text", { x: r.x + 4, y: r.y + 13 }, g);
        var label = t.n + " " + human(t.s), max = Math.floor((r.w - 8) / 6.2);
        tx.textContent = label.length > max ? label.slice(0, Math.max(max - 1, 1)) + "…" : label;
      }
      if (isDir) g.addEventListener("click", function () { self.stack.push(t); self.draw(); });
    });
  };
  var data = JSON.parse(document.getElementById("pare-data").textContent);
  var drawn = 0;
  Array.prototype.forEach.call(document.querySelectorAll(".treemap-box[data-tree]"), function (box) {
    var t = data.trees && data.trees[box.getAttribute("data-tree")];
    if (t) { box.pareTreemap = new Treemap(box, t); drawn++; }
  });
  Array.prototype.forEach.call(document.querySelectorAll("input.filter[data-table]"), function (input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    input.addEventListener("input", function () {
      var q = input.value.toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        row.style.display = !q || row.textContent.toLowerCase().indexOf(q) >= 0 ? "" : "none";
      });
    });
  });
  document.documentElement.setAttribute("data-pare-treemaps", String(drawn));
  document.documentElement.setAttribute("data-pare-rendered", "ok");
})();
