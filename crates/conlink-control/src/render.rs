//! Text renderings of a status: the `conlink status` table and the
//! Prometheus text exposition served on `--metrics-addr`.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::api::{Counters, EventType, LinkState, LinkStatus, Status};
use crate::backend::{Histogram, Metrics, BUCKETS};

fn state_str(s: LinkState) -> &'static str {
    match s {
        LinkState::Up => "up",
        LinkState::Down => "down",
        LinkState::Pending => "pending",
        LinkState::Failed => "failed",
        LinkState::Missing => "missing",
    }
}

/// `1.2K`, `3.4M`: short byte counts for the table.
fn human(n: u64) -> String {
    const U: [&str; 5] = ["", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}")
    } else {
        format!("{v:.1}{}", U[i])
    }
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let w: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut o = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<0$}  ", w[c]);
            }
        }
        o.push_str(line.trim_end());
        o.push('\n');
    }
    o
}

fn dash(o: Option<impl ToString>) -> String {
    o.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The `conlink status` table: links, then bridges, tunnels and what is
/// pending or failed, then one summary line.
pub fn status_table(st: &Status) -> String {
    let mut rows = vec![[
        "CONTAINER",
        "SERVICE",
        "#",
        "DEV",
        "OUTER",
        "BRIDGE",
        "STATE",
        "ADMIN/OPER",
        "ADDRESS",
        "MAC",
        "MTU",
        "NETEM",
        "RX B/PKT",
        "TX B/PKT",
        "DROP",
        "ERR",
    ]
    .map(String::from)
    .to_vec()];
    for l in &st.links {
        let c = l.counters.unwrap_or_default();
        let admin = match (l.admin_up, l.admin_down_override) {
            (_, true) => "down!".to_string(),
            (Some(true), _) => "up".into(),
            (Some(false), _) => "down".into(),
            (None, _) => "-".into(),
        };
        let mut netem = l.netem.clone().unwrap_or_else(|| "-".into());
        if l.netem_override.is_some() {
            netem.push_str(" (override)");
        }
        if let Some(f) = &l.flap {
            let _ = write!(
                netem,
                " flap {}/{}ms {}/{}",
                f.down_ms,
                f.up_ms,
                f.done,
                f.count.map_or("∞".to_string(), |n| n.to_string())
            );
        }
        let counters = l.counters.is_some();
        let pair = |b: u64, p: u64| {
            if counters {
                format!("{}/{}", human(b), p)
            } else {
                "-".into()
            }
        };
        rows.push(vec![
            l.container.clone(),
            dash(l.service.as_ref()),
            l.replica.to_string(),
            l.dev.clone(),
            dash(l.outer.as_ref()),
            match (&l.bridge, &l.bridge_mode) {
                (Some(b), Some(m)) => format!("{b} ({m})"),
                (Some(b), None) => b.clone(),
                _ => "-".into(),
            },
            state_str(l.state).into(),
            format!("{admin}/{}", dash(l.oper_state.as_ref()).to_lowercase()),
            if l.addresses.is_empty() {
                "-".into()
            } else {
                l.addresses.join(",")
            },
            dash(l.mac.as_ref()),
            dash(l.mtu),
            netem,
            pair(c.rx_bytes, c.rx_packets),
            pair(c.tx_bytes, c.tx_packets),
            if counters {
                (c.rx_dropped + c.tx_dropped).to_string()
            } else {
                "-".into()
            },
            if counters {
                (c.rx_errors + c.tx_errors).to_string()
            } else {
                "-".into()
            },
        ]);
    }
    let mut o = table(&rows);
    if !st.bridges.is_empty() {
        o.push('\n');
        let mut rows = vec![["BRIDGE", "MODE", "STATE", "PORTS"]
            .map(String::from)
            .to_vec()];
        for b in &st.bridges {
            rows.push(vec![
                b.name.clone(),
                b.mode.clone(),
                match b.admin_up {
                    Some(true) => "up".into(),
                    Some(false) => "down".into(),
                    None => "-".into(),
                },
                if b.ports.is_empty() {
                    "-".into()
                } else {
                    b.ports.join(" ")
                },
            ]);
        }
        o.push_str(&table(&rows));
    }
    if !st.tunnels.is_empty() {
        o.push('\n');
        let mut rows = vec![["TUNNEL", "TYPE", "VNI", "REMOTE", "BRIDGE", "OPER"]
            .map(String::from)
            .to_vec()];
        for t in &st.tunnels {
            rows.push(vec![
                t.name.clone(),
                t.kind.clone(),
                t.vni.to_string(),
                t.remote.clone(),
                t.bridge.clone(),
                dash(t.oper_state.as_ref()).to_lowercase(),
            ]);
        }
        o.push_str(&table(&rows));
    }
    for (what, list) in [("pending", &st.pending), ("failed", &st.failed)] {
        for p in list {
            let _ = writeln!(o, "{what}: {}: {}", p.what, p.reason);
        }
    }
    let _ = writeln!(
        o,
        "\n{}: {} container(s), {} link(s), {}",
        st.name,
        st.containers.len(),
        st.links.len(),
        if st.converged {
            "converged".to_string()
        } else {
            format!(
                "not converged ({} pending, {} failed)",
                st.pending.len(),
                st.failed.len()
            )
        }
    );
    o
}

/// Escapes a label value for the text exposition format.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn link_labels(l: &LinkStatus) -> String {
    format!(
        "container=\"{}\",service=\"{}\",replica=\"{}\",dev=\"{}\",bridge=\"{}\"",
        esc(&l.container),
        esc(l.service.as_deref().unwrap_or("")),
        l.replica,
        esc(&l.dev),
        esc(l.bridge.as_deref().unwrap_or(""))
    )
}

fn histogram(o: &mut String, name: &str, help: &str, h: &Histogram) {
    let (buckets, count, sum) = h.read();
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (b, n) in BUCKETS.iter().zip(&buckets) {
        let _ = writeln!(o, "{name}_bucket{{le=\"{b}\"}} {n}");
    }
    let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(o, "{name}_sum {sum}");
    let _ = writeln!(o, "{name}_count {count}");
}

/// The Prometheus text exposition (format 0.0.4): per-link counters named
/// like node_exporter's `node_network_*` (labels container, service,
/// replica, dev, bridge), `conlink_link_up`, latency histograms, event and
/// error counters.
pub fn metrics_text(
    st: &Status,
    m: &Metrics,
    events: &BTreeMap<(EventType, String), u64>,
) -> String {
    let mut o = String::with_capacity(256 + st.links.len() * 1200);
    type Get = fn(&Counters) -> u64;
    let series: [(&str, &str, Get); 8] = [
        (
            "receive_bytes_total",
            "Bytes received by the container end of the link.",
            |c| c.rx_bytes,
        ),
        (
            "transmit_bytes_total",
            "Bytes sent by the container end of the link.",
            |c| c.tx_bytes,
        ),
        (
            "receive_packets_total",
            "Packets received by the container end of the link.",
            |c| c.rx_packets,
        ),
        (
            "transmit_packets_total",
            "Packets sent by the container end of the link.",
            |c| c.tx_packets,
        ),
        (
            "receive_drop_total",
            "Received packets dropped at the container end.",
            |c| c.rx_dropped,
        ),
        (
            "transmit_drop_total",
            "Packets dropped on transmit at the container end.",
            |c| c.tx_dropped,
        ),
        (
            "receive_errs_total",
            "Receive errors at the container end.",
            |c| c.rx_errors,
        ),
        (
            "transmit_errs_total",
            "Transmit errors at the container end.",
            |c| c.tx_errors,
        ),
    ];
    let labels: Vec<String> = st.links.iter().map(link_labels).collect();
    for (name, help, get) in series {
        let _ = writeln!(
            o,
            "# HELP conlink_link_{name} {help}\n# TYPE conlink_link_{name} counter"
        );
        for (l, lb) in st.links.iter().zip(&labels) {
            if let Some(c) = &l.counters {
                let _ = writeln!(o, "conlink_link_{name}{{{lb}}} {}", get(c));
            }
        }
    }
    let _ = writeln!(
        o,
        "# HELP conlink_link_up Whether the link is up (1) or not (0): both ends administratively up with carrier.\n# TYPE conlink_link_up gauge"
    );
    for (l, lb) in st.links.iter().zip(&labels) {
        let _ = writeln!(
            o,
            "conlink_link_up{{{lb}}} {}",
            u8::from(l.state == LinkState::Up)
        );
    }
    let _ = writeln!(
        o,
        "# HELP conlink_link_override Whether a runtime override (link set) holds the link.\n# TYPE conlink_link_override gauge"
    );
    for (l, lb) in st.links.iter().zip(&labels) {
        let on = l.admin_down_override || l.netem_override.is_some() || l.flap.is_some();
        let _ = writeln!(o, "conlink_link_override{{{lb}}} {}", u8::from(on));
    }
    let _ = writeln!(
        o,
        "# HELP conlink_converged Whether every configured link is set up.\n# TYPE conlink_converged gauge\nconlink_converged {}",
        u8::from(st.converged)
    );
    let _ = writeln!(
        o,
        "# HELP conlink_containers Containers conlink serves, by state.\n# TYPE conlink_containers gauge"
    );
    for state in ["pending", "ready", "failed"] {
        let n = st
            .containers
            .iter()
            .filter(|c| {
                serde_json::to_value(c.state)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    == Some(state.to_string())
            })
            .count();
        let _ = writeln!(o, "conlink_containers{{state=\"{state}\"}} {n}");
    }
    histogram(
        &mut o,
        "conlink_setup_duration_seconds",
        "Container start event to its links ready.",
        &m.setup,
    );
    histogram(
        &mut o,
        "conlink_reconcile_duration_seconds",
        "One reconcile of the desired state (diff and apply).",
        &m.reconcile,
    );
    let _ = writeln!(
        o,
        "# HELP conlink_events_total Events emitted, by type and action.\n# TYPE conlink_events_total counter"
    );
    for ((t, a), n) in events {
        let _ = writeln!(
            o,
            "conlink_events_total{{type=\"{}\",action=\"{}\"}} {n}",
            t.as_str(),
            esc(a)
        );
    }
    let _ = writeln!(
        o,
        "# HELP conlink_errors_total Errors met, by kind.\n# TYPE conlink_errors_total counter"
    );
    for (k, n) in m.errors() {
        let _ = writeln!(o, "conlink_errors_total{{kind=\"{}\"}} {n}", esc(&k));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(999), "999");
        assert_eq!(human(1234), "1.2K");
        assert_eq!(human(5_600_000), "5.6M");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
