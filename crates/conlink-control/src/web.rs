//! The live topology page (`--web-addr`): the HTML drawing of
//! `conlink graph --format html`, coloured by link state and kept current
//! through server-sent events (`GET /v1/stream`: an `event: status` with the
//! whole status after every change and every two seconds for the counters).
//!
//! The drawing's interface nodes carry `data-key="service:NAME/DEV"` or
//! `data-key="container:NAME/DEV"` (conlink-graph sets them); the script
//! maps each status link to its node (a service's replicas share one node,
//! which shows the worst state of them and each replica's counters).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::server::{streaming, Control};

/// How often the page gets fresh counters without any event.
pub const REFRESH: Duration = Duration::from_secs(2);

/// `page` (the graph HTML) with the live style and script added.
pub fn live_page(page: &str) -> String {
    let extra = format!("<style>{LIVE_CSS}</style>\n<div id=\"live\">connecting…</div>\n<script>{LIVE_JS}</script>\n");
    match page.rfind("</body>") {
        Some(i) => format!("{}{extra}{}", &page[..i], &page[i..]),
        None => format!("{page}{extra}"),
    }
}

/// The server-sent event stream of statuses.
pub(crate) fn stream(ctl: Arc<Control>) -> crate::server::Resp {
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    tokio::spawn(async move {
        let mut events = ctl.backend().subscribe();
        loop {
            let st = ctl.status().await;
            let mut msg = b"event: status\ndata: ".to_vec();
            msg.extend(serde_json::to_vec(&st).unwrap_or_default());
            msg.extend_from_slice(b"\n\n");
            if tx.send(Bytes::from(msg)).await.is_err() {
                return;
            }
            tokio::select! {
                r = events.recv() => {
                    if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        return;
                    }
                    // Several events usually come together (both ends of a
                    // link, a whole container): send one status for them.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    while events.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(REFRESH) => {}
            }
        }
    });
    streaming("text/event-stream", rx)
}

const LIVE_CSS: &str = r#"
#live { position: fixed; left: 8px; bottom: 8px; background: #111827; color: #f9fafb; font-size: 12px;
  padding: 4px 8px; border-radius: 4px; opacity: 0.9; }
#live.bad { background: #991b1b; }
.conlink-graph .node.st-up .nodebox { fill: #bbf7d0; stroke: #15803d; }
.conlink-graph .node.st-down .nodebox { fill: #fecaca; stroke: #dc2626; stroke-width: 2; }
.conlink-graph .node.st-pending .nodebox { fill: #fef9c3; stroke: #ca8a04; stroke-dasharray: 4 2; }
.conlink-graph .node.st-failed .nodebox, .conlink-graph .node.st-missing .nodebox { fill: #f87171; stroke: #7f1d1d; stroke-width: 3; }
.conlink-graph .edge.st-up { stroke: #15803d; }
.conlink-graph .edge.st-down { stroke: #dc2626; stroke-dasharray: 4 3; }
.conlink-graph .edge.st-pending { stroke: #ca8a04; stroke-dasharray: 2 3; }
.conlink-graph .edge.st-failed, .conlink-graph .edge.st-missing { stroke: #7f1d1d; stroke-width: 3; }
"#;

const LIVE_JS: &str = r#"
(function () {
  var STATES = ["st-up", "st-down", "st-pending", "st-failed", "st-missing"];
  var RANK = {up: 1, pending: 2, down: 3, missing: 4, failed: 5};
  var nodes = {};
  document.querySelectorAll(".conlink-graph .node[data-key]").forEach(function (g) {
    var t = g.querySelector("title");
    nodes[g.getAttribute("data-key")] = {g: g, t: t, base: t ? t.textContent : ""};
  });
  var live = document.getElementById("live");
  var prev = {}, seq = 0;
  function human(n) {
    var u = ["", "K", "M", "G", "T"], i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return (i ? n.toFixed(1) : String(Math.round(n))) + u[i];
  }
  function setState(el, st) {
    var was = el.getAttribute("data-state");
    STATES.forEach(function (c) { el.classList.remove(c); });
    el.classList.add("st-" + st);
    el.setAttribute("data-state", st);
    // The states a node went through, for tests and for whoever wonders
    // what happened while they looked away.
    if (was !== st) {
      var h = el.getAttribute("data-history");
      el.setAttribute("data-history", h ? h + " " + st : st);
    }
  }
  function apply(st) {
    var now = Date.now() / 1000, per = {};
    st.links.forEach(function (l) {
      var keys = [(l.service ? "service:" + l.service : "") + "/" + l.dev, "container:" + l.container + "/" + l.dev];
      var key = keys.filter(function (k) { return nodes[k]; })[0];
      if (!key) return;
      (per[key] = per[key] || []).push(l);
    });
    Object.keys(nodes).forEach(function (key) {
      var n = nodes[key], ls = per[key] || [];
      var worst = ls.length ? "up" : "pending";
      var lines = [n.base, "", "live:"];
      ls.forEach(function (l) {
        if (RANK[l.state] > RANK[worst]) worst = l.state;
        var id = l.container + "/" + l.dev, c = l.counters, line = l.container + ": " + l.state;
        if (l.admin_down_override) line += " (held down)";
        if (l.flap) line += " flapping " + l.flap.done + "/" + (l.flap.count || "∞");
        if (l.netem) line += ", netem " + l.netem;
        if (c) {
          line += ", rx " + human(c.rx_bytes) + "B/" + c.rx_packets + "p tx " + human(c.tx_bytes) + "B/" + c.tx_packets + "p";
          var p = prev[id];
          if (p && now > p.t) {
            var dt = now - p.t;
            line += " (" + human((c.rx_bytes - p.c.rx_bytes) * 8 / dt) + "bit/s in, " +
              human((c.tx_bytes - p.c.tx_bytes) * 8 / dt) + "bit/s out)";
          }
          if (c.rx_dropped + c.tx_dropped + c.rx_errors + c.tx_errors > 0)
            line += ", drops " + (c.rx_dropped + c.tx_dropped) + " errors " + (c.rx_errors + c.tx_errors);
          prev[id] = {t: now, c: c};
        }
        if (l.reason) line += " — " + l.reason;
        lines.push(line);
      });
      setState(n.g, worst);
      if (n.t) n.t.textContent = lines.join("\n");
      document.querySelectorAll('.conlink-graph .edge[data-from="' + n.g.id + '"]').forEach(function (e) { setState(e, worst); });
    });
    seq++;
    document.body.setAttribute("data-live-seq", String(seq));
    var bad = st.failed.length + st.pending.length;
    live.className = st.converged ? "" : "bad";
    live.textContent = "live: " + st.name + " · " + st.links.length + " link(s) · " +
      (st.converged ? "converged" : bad + " pending/failed") + " · " + new Date().toLocaleTimeString();
  }
  var es = new EventSource("/v1/stream");
  es.addEventListener("status", function (e) { apply(JSON.parse(e.data)); });
  es.onerror = function () { live.className = "bad"; live.textContent = "live: connection lost, retrying…"; };
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_goes_before_the_end_of_body() {
        let p = live_page("<html><body><svg></svg></body></html>");
        let i = p.find("EventSource").unwrap();
        assert!(i < p.find("</body>").unwrap());
        assert!(p.ends_with("</body></html>"));
    }
}
