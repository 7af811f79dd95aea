//! The servers and clients over real sockets (unix and TCP), against a fake
//! backend that records the override changes it is asked for. The real
//! daemon is tested in crates/conlink/tests/control_netns.rs; this file
//! pins the protocol: status, set/clear, flaps (counted), events (order,
//! history, filters), tokens, bad requests that change nothing, and the
//! metrics text checked with the Python prometheus_client parser.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use conlink_control::api::{
    Admin, EventType, FlapRequest, LinkState, LinkStatus, SetRequest, Status,
};
use conlink_control::client::{Client, Endpoint};
use conlink_control::server::{serve_tcp, serve_unix, Control, Role};
use conlink_control::{ControlBackend, EventHub, Metrics, OverrideChange, Selector};
use tokio::sync::broadcast;

/// (link id, admin_down, netem) per change, in order.
type Calls = Arc<Mutex<Vec<(String, Option<bool>, Option<String>, bool)>>>;

struct Fake {
    links: Vec<LinkStatus>,
    over: Mutex<HashMap<String, (bool, Option<String>)>>,
    calls: Calls,
    hub: EventHub,
    metrics: Metrics,
}

fn link(container: &str, service: &str, replica: u32, dev: &str) -> LinkStatus {
    LinkStatus {
        container: container.into(),
        service: Some(service.into()),
        replica,
        dev: dev.into(),
        kind: "veth".into(),
        outer: Some(format!("{container}-{dev}")),
        bridge: Some("s1".into()),
        bridge_mode: Some("linux".into()),
        state: LinkState::Up,
        admin_up: Some(true),
        oper_state: Some("UP".into()),
        outer_admin_up: Some(true),
        outer_oper_state: Some("UP".into()),
        addresses: vec![format!("10.0.0.{replica}/24")],
        mac: None,
        mtu: Some(1500),
        netem_config: Some("delay 10ms".into()),
        netem_override: None,
        netem: Some("delay 10ms".into()),
        admin_down_override: false,
        flap: None,
        counters: Some(conlink_control::api::Counters {
            rx_bytes: 1000 * replica as u64,
            tx_bytes: 2000,
            rx_packets: 10,
            tx_packets: 20,
            ..Default::default()
        }),
        reason: None,
    }
}

impl Fake {
    fn new() -> Arc<Fake> {
        Arc::new(Fake {
            links: vec![
                link("lab-node-1", "node", 1, "eth0"),
                link("lab-node-2", "node", 2, "eth0"),
                link("lab-r \"x\"", "r", 1, "eth1"),
            ],
            over: Mutex::new(HashMap::new()),
            calls: Calls::default(),
            hub: EventHub::new(),
            metrics: Metrics::default(),
        })
    }
}

impl ControlBackend for Fake {
    fn snapshot(&self) -> Status {
        let over = self.over.lock().unwrap();
        let mut links = self.links.clone();
        for l in &mut links {
            if let Some((down, netem)) = over.get(&l.id()) {
                l.admin_down_override = *down;
                if *down {
                    l.state = LinkState::Down;
                    l.admin_up = Some(false);
                }
                l.netem_override = netem.clone();
            }
        }
        Status {
            name: "fake".into(),
            converged: true,
            links,
            ..Default::default()
        }
    }
    fn subscribe(&self) -> broadcast::Receiver<conlink_control::api::Event> {
        self.hub.subscribe()
    }
    fn history(&self, since: Option<SystemTime>) -> Vec<conlink_control::api::Event> {
        self.hub.history(since)
    }
    fn set_override(
        &self,
        sel: &Selector,
        c: &OverrideChange,
    ) -> conlink_control::Result<Vec<String>> {
        let st = self.snapshot();
        let ids: Vec<String> = sel.resolve(&st)?.iter().map(|l| l.id()).collect();
        let mut over = self.over.lock().unwrap();
        for id in &ids {
            let e = over.entry(id.clone()).or_default();
            if let Some(d) = c.admin_down {
                e.0 = d;
            }
            if let Some(n) = &c.netem {
                e.1 = Some(n.to_string());
            }
            if c.reset_netem {
                e.1 = None;
            }
            self.calls.lock().unwrap().push((
                id.clone(),
                c.admin_down,
                c.netem.as_ref().map(|n| n.to_string()),
                c.reset_netem,
            ));
            let mut attrs = vec![];
            if let Some(d) = c.admin_down {
                attrs.push(("admin", if d { "down" } else { "up" }.to_string()));
            }
            self.hub.emit(EventType::Override, "set", id.clone(), attrs);
        }
        Ok(ids)
    }
    fn clear_override(&self, sel: &Selector) -> conlink_control::Result<Vec<String>> {
        let st = self.snapshot();
        let ids: Vec<String> = sel.resolve(&st)?.iter().map(|l| l.id()).collect();
        for id in &ids {
            self.over.lock().unwrap().remove(id);
            self.hub
                .emit(EventType::Override, "cleared", id.clone(), []);
        }
        Ok(ids)
    }
    fn graph_html(&self) -> String {
        "<html><body><svg class=\"conlink-graph\"></svg></body></html>".into()
    }
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    fn event_counts(&self) -> BTreeMap<(EventType, String), u64> {
        self.hub.counts()
    }
}

fn sock_path(tag: &str) -> PathBuf {
    std::env::temp_dir()
        .join(format!("conlink-ctl-{}-{tag}", std::process::id()))
        .join("t.sock")
}

async fn unix_setup(tag: &str) -> (Arc<Fake>, Client, conlink_control::server::Listener) {
    let fake = Fake::new();
    let ctl = Control::new(fake.clone());
    let path = sock_path(tag);
    let l = serve_unix(&path, ctl).unwrap();
    (fake, Client::new(Endpoint::Unix(path)), l)
}

#[tokio::test]
async fn status_over_a_root_only_socket() {
    let (_fake, c, l) = unix_setup("status").await;
    let path = sock_path("status");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode");
    let st = c.status().await.unwrap();
    assert_eq!(st.name, "fake");
    assert_eq!(st.links.len(), 3);
    assert_eq!(st.links[1].counters.unwrap().rx_bytes, 2000);
    // A second server on the same live socket is refused.
    let e = serve_unix(&path, Control::new(Fake::new())).err().unwrap();
    assert!(e.to_string().contains("another conlink"), "{e}");
    drop(l);
    assert!(!path.exists(), "socket removed when the listener stops");
}

#[tokio::test]
async fn set_down_up_netem_reset_and_clear() {
    let (fake, c, _l) = unix_setup("set").await;
    let r = c
        .set(&SetRequest {
            target: "node:2".into(),
            admin: Some(Admin::Down),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(r.links, ["lab-node-2/eth0"]);
    let st = c.status().await.unwrap();
    assert!(st.links[1].admin_down_override);
    assert_eq!(st.links[1].state, LinkState::Down);
    assert!(!st.links[0].admin_down_override);
    c.set(&SetRequest {
        target: "node".into(),
        netem: Some("loss 1%".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    c.set(&SetRequest {
        target: "lab-node-1:eth0".into(),
        reset: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let cl = c.clear("node:2:eth0").await.unwrap();
    assert_eq!(cl.links, ["lab-node-2/eth0"]);
    let calls = fake.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            ("lab-node-2/eth0".to_string(), Some(true), None, false),
            (
                "lab-node-1/eth0".into(),
                None,
                Some("loss 1%".into()),
                false
            ),
            (
                "lab-node-2/eth0".into(),
                None,
                Some("loss 1%".into()),
                false
            ),
            ("lab-node-1/eth0".into(), None, None, true),
        ]
    );
    let st = c.status().await.unwrap();
    assert!(!st.links[1].admin_down_override);
    assert_eq!(st.links[1].netem_override, None);
    assert_eq!(st.links[0].netem_override, None);
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_change_nothing() {
    let (fake, c, _l) = unix_setup("bad").await;
    let cases: [(SetRequest, u16, &str, &str); 5] = [
        (
            SetRequest {
                target: "nosuch:eth0".into(),
                admin: Some(Admin::Down),
                ..Default::default()
            },
            404,
            "unknown_target",
            "unknown target \"nosuch:eth0\": no link matches (known: lab-node-1/eth0",
        ),
        (
            SetRequest {
                target: "node".into(),
                netem: Some("delay fast".into()),
                ..Default::default()
            },
            400,
            "bad_request",
            "netem \"delay fast\"",
        ),
        (
            SetRequest {
                target: "node".into(),
                ..Default::default()
            },
            400,
            "bad_request",
            "nothing to change",
        ),
        (
            SetRequest {
                target: "node:0:eth0".into(),
                admin: Some(Admin::Down),
                ..Default::default()
            },
            400,
            "bad_request",
            "bad target",
        ),
        (
            SetRequest {
                target: "node".into(),
                admin: Some(Admin::Down),
                flap: Some(FlapRequest {
                    down_ms: 10,
                    up_ms: 10,
                    count: Some(1),
                }),
                ..Default::default()
            },
            400,
            "bad_request",
            "exclude each other",
        ),
    ];
    for (req, status, kind, text) in cases {
        match c.set(&req).await.unwrap_err() {
            conlink_control::Error::Remote {
                status: s,
                kind: k,
                message,
            } => {
                assert_eq!((s, k.as_str()), (status, kind), "{req:?}: {message}");
                assert!(message.contains(text), "{req:?}: {message}");
            }
            e => panic!("{req:?}: {e}"),
        }
    }
    let e = c.clear("ghost").await.unwrap_err();
    assert_eq!(e.kind(), "unknown_target");
    // A malformed body.
    let e = c
        .request(
            hyper::Method::POST,
            "/v1/links/set",
            Some(b"{\"target\": 5}".to_vec()),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("bad request JSON"), "{e}");
    assert!(fake.calls.lock().unwrap().is_empty(), "nothing changed");
    assert!(fake.hub.history(None).is_empty(), "no event");
    let e = c
        .request(hyper::Method::GET, "/v1/nope", None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "not_found");
}

#[tokio::test]
async fn flap_runs_in_the_server_and_counts() {
    let (fake, c, _l) = unix_setup("flap").await;
    c.set(&SetRequest {
        target: "lab-node-1".into(),
        flap: Some(FlapRequest {
            down_ms: 40,
            up_ms: 40,
            count: Some(3),
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let st = c.status().await.unwrap();
    let f = st.links[0].flap.expect("flap shown in status");
    assert_eq!((f.down_ms, f.up_ms, f.count), (40, 40, Some(3)));
    assert!(st.links[1].flap.is_none());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let st = c.status().await.unwrap();
        if st.links[0].flap.is_none() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "flap did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seq: Vec<Option<bool>> = fake.calls.lock().unwrap().iter().map(|c| c.1).collect();
    let want = [Some(true), Some(false)].repeat(3);
    assert_eq!(seq, want, "3 down/up cycles, ending up");
    let downs = fake
        .hub
        .history(None)
        .iter()
        .filter(|e| e.actor.attributes.get("admin").map(String::as_str) == Some("down"))
        .count();
    assert_eq!(downs, 3);

    // An endless flap is stopped by clear, which leaves the link up.
    c.set(&SetRequest {
        target: "lab-node-2".into(),
        flap: Some(FlapRequest {
            down_ms: 30,
            up_ms: 30,
            count: None,
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.clear("lab-node-2").await.unwrap();
    let n = fake.calls.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(fake.calls.lock().unwrap().len(), n, "flap stopped");
    let st = c.status().await.unwrap();
    assert!(st.links[1].flap.is_none() && !st.links[1].admin_down_override);
}

#[tokio::test]
async fn events_history_live_order_and_filters() {
    let (fake, c, _l) = unix_setup("events").await;
    fake.hub.emit(
        EventType::Container,
        "start",
        "lab-node-1",
        [("service", "node".into())],
    );
    fake.hub.emit(
        EventType::Link,
        "created",
        "lab-node-1/eth0",
        [("dev", "eth0".into())],
    );
    // History only (follow=0).
    let mut got = vec![];
    c.events("follow=0", |l| {
        got.push(serde_json::from_str::<serde_json::Value>(l).unwrap());
        true
    })
    .await
    .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["Type"], "container");
    assert_eq!(got[0]["Action"], "start");
    assert_eq!(got[1]["Actor"]["ID"], "lab-node-1/eth0");
    assert_eq!(got[1]["Actor"]["Attributes"]["dev"], "eth0");
    assert!(got[1]["timeNano"].as_i64().unwrap() >= got[0]["timeNano"].as_i64().unwrap());
    // Filtered history then live events, in order.
    let hub = Arc::clone(&fake);
    let emitter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for i in 0..5 {
            hub.hub
                .emit(EventType::Link, "changed", format!("x/eth{i}"), []);
            hub.hub.emit(EventType::Container, "die", "x", []);
        }
    });
    let mut ids = vec![];
    tokio::time::timeout(
        Duration::from_secs(5),
        c.events("since=0&filter=type%3Dlink", |l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            ids.push(v["Actor"]["ID"].as_str().unwrap().to_string());
            ids.len() < 6
        }),
    )
    .await
    .expect("live events within 5 s")
    .unwrap();
    emitter.await.unwrap();
    assert_eq!(
        ids,
        [
            "lab-node-1/eth0",
            "x/eth0",
            "x/eth1",
            "x/eth2",
            "x/eth3",
            "x/eth4"
        ]
    );
    // since in the future: nothing from history.
    let future = conlink_control::server::unix_secs(SystemTime::now()) + 3600.0;
    let mut n = 0;
    c.events(&format!("since={future}&follow=0"), |_| {
        n += 1;
        true
    })
    .await
    .unwrap();
    assert_eq!(n, 0);
    let e = c.events("since=yesterday", |_| true).await.unwrap_err();
    assert!(e.to_string().contains("since"), "{e}");
}

#[tokio::test]
async fn tcp_needs_the_bearer_token() {
    let fake = Fake::new();
    let ctl = Control::new(fake.clone());
    let e = serve_tcp("127.0.0.1:0", Role::Api { token: None }, ctl.clone())
        .await
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("refusing unauthenticated TCP"),
        "{e}"
    );
    let l = serve_tcp(
        "127.0.0.1:0",
        Role::Api {
            token: Some("s3cret".into()),
        },
        ctl,
    )
    .await
    .unwrap();
    let addr = l.local_addr.unwrap().to_string();
    for (token, want) in [
        (None, "missing bearer token"),
        (Some("nope"), "wrong bearer token"),
    ] {
        let c = Client::new(Endpoint::Tcp {
            addr: addr.clone(),
            token: token.map(Into::into),
        });
        let e = c.status().await.unwrap_err();
        assert_eq!(e.kind(), "unauthorized");
        assert!(e.to_string().contains(want), "{e}");
        let e = c
            .set(&SetRequest {
                target: "node".into(),
                admin: Some(Admin::Down),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), "unauthorized");
    }
    assert!(fake.calls.lock().unwrap().is_empty());
    let c = Client::new(Endpoint::Tcp {
        addr,
        token: Some("s3cret".into()),
    });
    assert_eq!(c.status().await.unwrap().links.len(), 3);
}

#[tokio::test]
async fn metrics_parse_with_prometheus_client() {
    let fake = Fake::new();
    fake.metrics.setup.observe(Duration::from_millis(3));
    fake.metrics.setup.observe(Duration::from_millis(70));
    fake.metrics.error("setup");
    fake.hub.emit(EventType::Link, "created", "a/eth0", []);
    let ctl = Control::new(fake.clone());
    let l = serve_tcp("127.0.0.1:0", Role::Metrics, ctl).await.unwrap();
    let c = Client::new(Endpoint::Tcp {
        addr: l.local_addr.unwrap().to_string(),
        token: None,
    });
    let resp = c
        .request(hyper::Method::GET, "/metrics", None)
        .await
        .unwrap();
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    use http_body_util::BodyExt;
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    let parsed = prom_parse(&text);
    let fam = |name: &str| -> &serde_json::Value {
        parsed
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no family {name} in {parsed}"))
    };
    // prometheus_client drops the _total suffix from counter family names.
    let rx = fam("conlink_link_receive_bytes");
    assert_eq!(rx["type"], "counter");
    let s = &rx["samples"].as_array().unwrap()[1];
    assert_eq!(s["labels"]["container"], "lab-node-2");
    assert_eq!(s["labels"]["service"], "node");
    assert_eq!(s["labels"]["replica"], "2");
    assert_eq!(s["labels"]["dev"], "eth0");
    assert_eq!(s["labels"]["bridge"], "s1");
    assert_eq!(s["value"], 2000.0);
    // The quote in a container name survives escaping.
    let s = &rx["samples"].as_array().unwrap()[2];
    assert_eq!(s["labels"]["container"], "lab-r \"x\"");
    for f in [
        "conlink_link_transmit_bytes",
        "conlink_link_receive_packets",
        "conlink_link_transmit_packets",
        "conlink_link_receive_drop",
        "conlink_link_transmit_drop",
        "conlink_link_receive_errs",
        "conlink_link_transmit_errs",
        "conlink_events",
        "conlink_errors",
    ] {
        assert_eq!(fam(f)["type"], "counter", "{f}");
    }
    assert_eq!(fam("conlink_link_up")["samples"][0]["value"], 1.0);
    let h = fam("conlink_setup_duration_seconds");
    assert_eq!(h["type"], "histogram");
    let count = h["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "conlink_setup_duration_seconds_count")
        .unwrap();
    assert_eq!(count["value"], 2.0);
    let ev = &fam("conlink_events")["samples"][0];
    assert_eq!(ev["labels"]["type"], "link");
    assert_eq!(ev["value"], 1.0);
    assert_eq!(
        fam("conlink_errors")["samples"][0]["labels"]["kind"],
        "setup"
    );
}

/// Parses the exposition with prometheus_client's own text parser (Debian
/// package python3-prometheus-client), returned as JSON families.
pub fn prom_parse(text: &[u8]) -> serde_json::Value {
    use std::io::Write;
    let py = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "samples": [
        {"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]})
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", py])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run /usr/bin/python3 (install python3-prometheus-client: scripts/install-deps)");
    child.stdin.take().unwrap().write_all(text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the exposition: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(text)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
