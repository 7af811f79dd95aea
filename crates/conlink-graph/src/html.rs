//! A self-contained HTML page: the SVG inline, a side panel listing the
//! properties of the node under the mouse, and a tiny script. No external
//! resources, so it opens offline and from `file://`.

use crate::svg;
use crate::topo::Topology;

/// Renders the page.
pub fn render(t: &Topology) -> String {
    let svg = svg::render(t);
    let mut o = String::with_capacity(svg.len() + 4096);
    o.push_str(HEAD);
    o.push_str("<div id=\"picture\">\n");
    o.push_str(&svg);
    o.push_str("</div>\n");
    o.push_str(TAIL);
    o
}

const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>conlink topology</title>
<style>
body { margin: 0; font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace; background: #ffffff; }
#picture { padding: 8px; }
#info { position: fixed; top: 8px; right: 8px; max-width: 420px; background: #111827; color: #f9fafb;
  font-size: 12px; padding: 8px 10px; border-radius: 6px; opacity: 0.92; white-space: pre-wrap; display: none; }
#info b { color: #fde68a; }
</style>
</head>
<body>
"#;

const TAIL: &str = r#"<div id="info"></div>
<script>
// Hovering a node shows its properties (the text of its <title>) in the
// panel and highlights the edges that touch it.
(function () {
  var info = document.getElementById("info");
  var lit = [];
  function clear() {
    lit.forEach(function (e) { e.classList.remove("hl"); });
    lit = [];
    info.style.display = "none";
  }
  document.querySelectorAll(".conlink-graph .node").forEach(function (g) {
    g.addEventListener("mouseenter", function () {
      clear();
      var t = g.querySelector("title");
      var lines = t ? t.textContent.split("\n") : [];
      info.textContent = "";
      lines.forEach(function (line, i) {
        var div = document.createElement("div");
        var k = line.indexOf(": ");
        if (i === 0) { var b = document.createElement("b"); b.textContent = line; div.appendChild(b); }
        else if (k > 0) { var b2 = document.createElement("b"); b2.textContent = line.slice(0, k) + ": ";
          div.appendChild(b2); div.appendChild(document.createTextNode(line.slice(k + 2))); }
        else { div.textContent = line; }
        info.appendChild(div);
      });
      info.style.display = "block";
      g.classList.add("hl"); lit.push(g);
      document.querySelectorAll('.conlink-graph .edge[data-from="' + g.id + '"], .conlink-graph .edge[data-to="' + g.id + '"]')
        .forEach(function (e) { e.classList.add("hl"); lit.push(e); });
    });
    g.addEventListener("mouseleave", clear);
  });
})();
</script>
</body>
</html>
"#;
