//! Privileged end-to-end tests of the control surface against a running
//! conlink (netns runtime): `conlink status` matches `ip -j` reality,
//! events arrive in order for a scripted scenario, metrics parse with the
//! Prometheus text parser and follow the kernel, bad requests get clear
//! errors and change nothing, and the socket is root only.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{ip_json, ping, prefix, require_root, Conlink};
use serde_json::Value;

fn conlink(sock: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_conlink"))
        .args(["--socket", sock])
        .args(args)
        .output()
        .expect("run conlink client")
}

fn ok_stdout(sock: &str, args: &[&str]) -> String {
    let o = conlink(sock, args);
    assert!(
        o.status.success(),
        "conlink {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// `ip -s -j link show dev DEV` in `ns`.
fn ip_link(ns: &str, dev: &str) -> Value {
    ip_json(ns, &["-s", "link", "show", "dev", dev])[0].clone()
}

/// The address a listener logged (`… on http://ADDR`), waiting for it.
fn logged_addr(c: &mut Conlink, what: &str) -> String {
    c.wait_for(&format!("{what} on http://"), 1, Duration::from_secs(10));
    let line = c
        .log()
        .into_iter()
        .find(|l| l.contains(&format!("{what} on http://")))
        .unwrap();
    line.rsplit("http://").next().unwrap().trim().to_string()
}

fn http_get(addr: &str, path: &str) -> String {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10", &format!("http://{addr}{path}")])
        .output()
        .expect("run curl");
    assert!(
        o.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Families parsed by prometheus_client (python3-prometheus-client).
fn prom_parse(text: &str) -> Value {
    use std::io::Write;
    let py = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
print(json.dumps([{"name": f.name, "type": f.type, "samples": [
    {"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]}
    for f in text_string_to_metric_families(sys.stdin.read())]))
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", py])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 with prometheus_client (scripts/install-deps)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the exposition: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sample<'a>(fams: &'a Value, family: &str, container: &str) -> &'a Value {
    fams.as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == family)
        .unwrap_or_else(|| panic!("no {family}"))["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["labels"]["container"] == container)
        .unwrap_or_else(|| panic!("no {family} sample for {container}"))
}

fn config(p: &str) -> String {
    format!(
        r#"
links:
  - {{service: {p}n, bridge: s1, ip: 10.209.0.1/24, mtu: 1400}}
  - {{container: {p}r, dev: eth0, bridge: s1, ip: 10.209.0.100/24, mac: "c2:00:00:00:09:64"}}
  - {{container: {p}r, dev: eth1, bridge: s2, ip: 10.209.1.1/24}}
bridges:
  - {{bridge: s1, mode: linux}}
  - {{bridge: s2, mode: linux}}
"#
    )
}

#[test]
fn status_events_and_metrics_match_the_kernel() {
    require_root();
    let p = prefix();
    let mut c = Conlink::start(
        &p,
        &config(&p),
        &[
            "--scale",
            &format!("{p}n=2"),
            "--metrics-addr",
            "127.0.0.1:0",
        ],
    );
    c.wait_connected();
    let sock = format!("/run/conlink/{}.sock", c.own_ns);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{sock} must be root only");
    let maddr = logged_addr(&mut c, "metrics");
    assert!(ping(&format!("{p}n_1"), "10.209.0.100"));
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{p}n_1"),
            "ping",
            "-q",
            "-c",
            "20",
            "-i",
            "0.01",
            "10.209.0.100",
        ])
        .output()
        .unwrap();

    // status --json against ip -j, link by link.
    let st: Value = serde_json::from_str(&ok_stdout(&sock, &["status", "--json"])).unwrap();
    assert_eq!(st["converged"], true, "{st}");
    assert_eq!(st["name"], c.own_ns.as_str());
    let links = st["links"].as_array().unwrap();
    assert_eq!(links.len(), 4, "{st}");
    for l in links {
        let (ctr, dev) = (l["container"].as_str().unwrap(), l["dev"].as_str().unwrap());
        let k = ip_link(ctr, dev);
        assert_eq!(l["state"], "up", "{l}");
        assert_eq!(l["mtu"], k["mtu"], "{ctr}/{dev}");
        assert_eq!(l["mac"], k["address"], "{ctr}/{dev}");
        assert_eq!(l["oper_state"], k["operstate"], "{ctr}/{dev}");
        let rx = l["counters"]["rx_packets"].as_u64().unwrap();
        let krx = k["stats64"]["rx"]["packets"].as_u64().unwrap();
        assert!(
            krx >= rx && krx - rx <= 4,
            "{ctr}/{dev}: rx {rx} vs ip {krx}"
        );
        assert_eq!(l["counters"]["tx_errors"], k["stats64"]["tx"]["errors"]);
        let outer = l["outer"].as_str().unwrap();
        let ko = ip_link(&c.own_ns, outer);
        assert_eq!(ko["master"], l["bridge"], "{outer}");
        assert_eq!(l["outer_oper_state"], ko["operstate"], "{outer}");
        let addrs = &ip_json(ctr, &["addr", "show", "dev", dev])[0]["addr_info"];
        let a = addrs
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["family"] == "inet")
            .unwrap();
        assert_eq!(
            l["addresses"][0],
            format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"])
        );
    }
    let n1 = links
        .iter()
        .find(|l| l["container"] == format!("{p}n_1"))
        .unwrap();
    assert_eq!(n1["service"], format!("{p}n"));
    assert_eq!(n1["replica"], 1);
    assert!(n1["counters"]["tx_packets"].as_u64().unwrap() >= 20);
    // Bridges and their ports, as the kernel has them.
    for b in st["bridges"].as_array().unwrap() {
        let name = b["name"].as_str().unwrap();
        let mut ports: Vec<String> = ip_json(&c.own_ns, &["link", "show", "master", name])
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .collect();
        ports.sort();
        let got: Vec<String> = serde_json::from_value(b["ports"].clone()).unwrap();
        assert_eq!(got, ports, "bridge {name}");
        assert_eq!(b["mode"], "linux");
    }
    // The table shows every link and the summary.
    let table = ok_stdout(&sock, &["status"]);
    assert!(table.starts_with("CONTAINER"), "{table}");
    for l in links {
        assert!(table.contains(l["container"].as_str().unwrap()), "{table}");
    }
    assert!(
        table.contains("2 container(s)") || table.contains("3 container(s)"),
        "{table}"
    );
    assert!(table.contains("4 link(s), converged"), "{table}");

    // Metrics follow the kernel too, and parse.
    let fams = prom_parse(&http_get(&maddr, "/metrics"));
    let s = sample(&fams, "conlink_link_transmit_packets", &format!("{p}n_1"));
    assert_eq!(s["labels"]["dev"], "eth0");
    assert_eq!(s["labels"]["replica"], "1");
    assert_eq!(s["labels"]["bridge"], "s1");
    assert!(s["value"].as_f64().unwrap() >= 20.0, "{s}");
    assert_eq!(
        sample(&fams, "conlink_link_up", &format!("{p}r"))["value"],
        1.0
    );
    // One setup sample per container whose links were made (n_1, n_2, r),
    // each under the 10 s bucket.
    let setup = fams
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "conlink_setup_duration_seconds")
        .expect("no setup histogram");
    let count = |name: &str| {
        setup["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"] == name)
            .map(|s| s["value"].as_f64().unwrap())
            .fold(0.0f64, f64::max)
    };
    assert_eq!(
        count("conlink_setup_duration_seconds_count"),
        3.0,
        "{setup}"
    );
    assert!(count("conlink_setup_duration_seconds_sum") > 0.0, "{setup}");

    // A link taken down in the kernel (outside conlink) shows as down in
    // status and metrics: both are read from the kernel, not remembered.
    let rns = format!("{p}r");
    assert!(Command::new("ip")
        .args(["-n", &rns, "link", "set", "eth1", "down"])
        .status()
        .unwrap()
        .success());
    let st: Value = serde_json::from_str(&ok_stdout(&sock, &["status", "--json"])).unwrap();
    let r1 = st["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["container"] == rns.as_str() && l["dev"] == "eth1")
        .unwrap();
    assert_eq!(r1["state"], "down", "{r1}");
    assert_eq!(r1["admin_up"], false);
    let fams = prom_parse(&http_get(&maddr, "/metrics"));
    let downs: Vec<&Value> = fams
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "conlink_link_up")
        .unwrap()["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["value"] == 0.0)
        .collect();
    assert_eq!(downs.len(), 1, "{downs:?}");
    assert_eq!(downs[0]["labels"]["dev"], "eth1");

    // Events so far: every container start before its links' created, and
    // converged last; numbered in order.
    let evs: Vec<Value> = ok_stdout(&sock, &["events", "--no-follow"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<u64> = evs.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let pos = |ty: &str, action: &str, id: &str| {
        evs.iter()
            .position(|e| e["Type"] == ty && e["Action"] == action && e["Actor"]["ID"] == id)
            .unwrap_or_else(|| panic!("no {ty} {action} {id} in {evs:?}"))
    };
    for (ctr, devs) in [
        (format!("{p}n_1"), vec!["eth0"]),
        (format!("{p}n_2"), vec!["eth0"]),
        (format!("{p}r"), vec!["eth0", "eth1"]),
    ] {
        let start = pos("container", "start", &ctr);
        for d in devs {
            assert!(start < pos("link", "created", &format!("{ctr}/{d}")));
        }
    }
    assert_eq!(evs.last().unwrap()["Type"], "conlink");
    assert_eq!(evs.last().unwrap()["Action"], "converged");
    // Filters.
    let only: Vec<Value> = ok_stdout(
        &sock,
        &[
            "events",
            "--no-follow",
            "-f",
            "type=link",
            "-f",
            &format!("container={p}r"),
        ],
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(only.len(), 2, "{only:?}");

    // A scripted scenario, followed live: a container goes away and comes
    // back; its events arrive in order.
    let mut follow = Command::new(env!("CARGO_BIN_EXE_conlink"))
        .args([
            "--socket",
            &sock,
            "events",
            "-f",
            &format!("id={p}n_2"),
            "-f",
            &format!("id={p}n_2/eth0"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = follow.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let n2 = format!("{p}n_2");
    let ready = format!("{n2}: 1 link(s) ready");
    let seen = c.log().iter().filter(|l| l.contains(&ready)).count();
    assert!(Command::new("ip")
        .args(["netns", "del", &n2])
        .status()
        .unwrap()
        .success());
    c.wait_for(&format!("{n2}: links removed"), 1, Duration::from_secs(10));
    assert!(Command::new("ip")
        .args(["netns", "add", &n2])
        .status()
        .unwrap()
        .success());
    struct DelOnDrop(String);
    impl Drop for DelOnDrop {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _readded = DelOnDrop(n2.clone());
    c.wait_for(&ready, seen + 1, Duration::from_secs(10));
    let mut got = vec![];
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 4 && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            let e: Value = serde_json::from_str(&l).unwrap();
            got.push(format!(
                "{} {} {}",
                e["Type"].as_str().unwrap(),
                e["Action"].as_str().unwrap(),
                e["Actor"]["ID"].as_str().unwrap()
            ));
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(
        got,
        [
            format!("container die {n2}"),
            format!("link removed {n2}/eth0"),
            format!("container start {n2}"),
            format!("link created {n2}/eth0"),
        ]
    );
    assert!(c.stop());
    assert!(!std::path::Path::new(&sock).exists(), "socket left behind");
}

#[test]
fn bad_requests_get_clear_errors_and_change_nothing() {
    require_root();
    let p = prefix();
    let cfg = format!("links:\n  - {{container: {p}a, bridge: s1, ip: 10.210.0.1/24}}\n  - {{container: {p}b, bridge: s1, ip: 10.210.0.2/24}}\n");
    let mut c = Conlink::start(&p, &cfg, &[]);
    c.wait_connected();
    let sock = format!("/run/conlink/{}.sock", c.own_ns);
    let before_a = ip_link(&format!("{p}a"), "eth0");
    let before_outer = ip_link(&c.own_ns, &format!("{p}a-eth0"));
    let cases: [(&[&str], &str); 5] = [
        (
            &["link", "set", "nosuch:eth0", "down"],
            "unknown target \"nosuch:eth0\": no link matches (known: ",
        ),
        (
            &["link", "set", &format!("{p}a"), "--netem", "delay fast"],
            "netem \"delay fast\"",
        ),
        (
            &["link", "set", &format!("{p}a:0:eth0"), "down"],
            "bad target",
        ),
        (&["link", "set", &format!("{p}a")], "nothing to change"),
        (&["link", "clear", "ghost"], "unknown target \"ghost\""),
    ];
    for (args, want) in cases {
        let o = conlink(&sock, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(err.starts_with("conlink: "), "{args:?}: {err}");
    }
    // Nothing changed: same ifindex, flags and state on both ends.
    let after_a = ip_link(&format!("{p}a"), "eth0");
    let after_outer = ip_link(&c.own_ns, &format!("{p}a-eth0"));
    for k in ["ifindex", "flags", "operstate", "mtu", "address"] {
        assert_eq!(before_a[k], after_a[k], "{k}");
        assert_eq!(before_outer[k], after_outer[k], "outer {k}");
    }
    assert!(ping(&format!("{p}a"), "10.210.0.2"));
    let st: Value = serde_json::from_str(&ok_stdout(&sock, &["status", "--json"])).unwrap();
    assert!(st["links"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["admin_down_override"] == false));

    // Wrong socket permissions: a non-root user is refused by the kernel,
    // and the client says why.
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_conlink"),
            "--socket",
            &sock,
            "status",
        ])
        .output()
        .expect("run setpriv");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("permission denied") && err.contains("root only"),
        "{err}"
    );
    // No socket at the path given.
    let o = conlink("/run/conlink/does-not-exist.sock", &["status"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such socket"));
    assert!(c.stop());
}

#[test]
fn tcp_api_needs_a_token() {
    require_root();
    let p = prefix();
    let cfg = format!("links:\n  - {{container: {p}t, bridge: s1, ip: 10.211.0.1/24}}\n");
    let dir = std::env::temp_dir().join(format!("conlink-token-{p}"));
    std::fs::create_dir_all(&dir).unwrap();
    let net = dir.join("net.yaml");
    std::fs::write(&net, &cfg).unwrap();
    // Refused at start, before anything is made.
    let o = Command::new(env!("CARGO_BIN_EXE_conlink"))
        .args([
            "--runtime",
            "netns",
            "--netns-name",
            &format!("{p}own"),
            "--api-addr",
            "127.0.0.1:0",
            "--network-file",
        ])
        .arg(&net)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("needs --api-token-file"), "{err}");
    assert!(!std::path::Path::new(&format!("/run/netns/{p}own")).exists());
    assert!(!std::path::Path::new(&format!("/run/netns/{p}t")).exists());

    let tok = dir.join("token");
    std::fs::write(&tok, "t0ps3cret\n").unwrap();
    let tok_s = tok.to_str().unwrap().to_string();
    let mut c = Conlink::start(
        &p,
        &cfg,
        &["--api-addr", "127.0.0.1:0", "--api-token-file", &tok_s],
    );
    c.wait_connected();
    let addr = logged_addr(&mut c, "control API (bearer token)");
    let client = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_conlink"))
            .args(["--api-addr", &addr])
            .args(extra)
            .args(["status", "--json"])
            .output()
            .unwrap()
    };
    let o = client(&[]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("missing bearer token"),
        "{o:?}"
    );
    let bad = dir.join("bad");
    std::fs::write(&bad, "nope").unwrap();
    let o = client(&["--api-token-file", bad.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("wrong bearer token"),
        "{o:?}"
    );
    let o = client(&["--api-token-file", &tok_s]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["links"][0]["container"], format!("{p}t"));
    assert!(c.stop());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `admin_up` of `dev` in `ns` (IFF_UP in `ip -j link`'s flags).
fn admin_up(ns: &str, dev: &str) -> bool {
    ip_link(ns, dev)["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "UP")
}

#[test]
fn link_set_down_and_up_reach_the_kernel_and_netem_needs_the_module() {
    require_root();
    let p = prefix();
    let cfg = format!("links:\n  - {{container: {p}a, bridge: s1, ip: 10.211.0.1/24}}\n  - {{container: {p}b, bridge: s1, ip: 10.211.0.2/24}}\n");
    let mut c = Conlink::start(&p, &cfg, &[]);
    c.wait_connected();
    let sock = format!("/run/conlink/{}.sock", c.own_ns);
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    let outer = format!("{p}a-eth0");
    assert!(ping(&a, "10.211.0.2") && ping(&b, "10.211.0.1"));

    let out = ok_stdout(&sock, &["link", "set", &a, "down"]);
    assert!(out.contains(&format!("{a}/eth0")), "{out}");
    // Both ends held down: no traffic either way.
    assert!(!admin_up(&a, "eth0"), "container end still up");
    assert!(!admin_up(&c.own_ns, &outer), "outer end still up");
    assert!(!ping(&a, "10.211.0.2"), "a reaches b while down");
    assert!(!ping(&b, "10.211.0.1"), "b reaches a while down");
    let st: Value = serde_json::from_str(&ok_stdout(&sock, &["status", "--json"])).unwrap();
    let la = st["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["container"] == a.as_str())
        .unwrap();
    assert_eq!(la["admin_down_override"], true, "{la}");
    assert_eq!(la["state"], "down", "{la}");

    ok_stdout(&sock, &["link", "set", &a, "up"]);
    assert!(admin_up(&a, "eth0") && admin_up(&c.own_ns, &outer));
    assert!(ping(&a, "10.211.0.2"), "a cannot reach b after up");
    assert!(ping(&b, "10.211.0.1"), "b cannot reach a after up");

    // This kernel has no sch_netem: a clear error, nothing else changes.
    let before_a = ip_link(&a, "eth0");
    let before_outer = ip_link(&c.own_ns, &outer);
    let o = conlink(&sock, &["link", "set", &a, "--netem", "delay 50ms"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "netem override succeeded without sch_netem"
    );
    assert!(err.starts_with("conlink: "), "{err}");
    assert!(err.contains("sch_netem"), "{err}");
    let after_a = ip_link(&a, "eth0");
    let after_outer = ip_link(&c.own_ns, &outer);
    for k in ["ifindex", "flags", "operstate", "mtu", "address"] {
        assert_eq!(before_a[k], after_a[k], "{k}");
        assert_eq!(before_outer[k], after_outer[k], "outer {k}");
    }
    assert!(ping(&a, "10.211.0.2"), "traffic broken after refused netem");
    let st: Value = serde_json::from_str(&ok_stdout(&sock, &["status", "--json"])).unwrap();
    for l in st["links"].as_array().unwrap() {
        assert_eq!(l["netem_override"], Value::Null, "{l}");
        assert_eq!(l["admin_down_override"], false, "{l}");
        assert_eq!(l["state"], "up", "{l}");
    }

    // A flap of 3 cycles: the kernel sees exactly 3 carrier losses on the
    // container end (its carrier_down_count), then the link stays up.
    let downs = || -> u64 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &a,
                "cat",
                "/sys/class/net/eth0/carrier_down_count",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let d0 = downs();
    ok_stdout(
        &sock,
        &["link", "set", &a, "--flap", "150ms/150ms", "--count", "3"],
    );
    let t0 = Instant::now();
    loop {
        let st: Value = serde_json::from_str(&ok_stdout(&sock, &["status", "--json"])).unwrap();
        let la = st["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["container"] == a.as_str())
            .cloned()
            .unwrap();
        if la["flap"].is_null() {
            assert_eq!(la["state"], "up", "{la}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "flap never ended: {la}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(downs() - d0, 3, "carrier losses during a 3-cycle flap");
    assert!(admin_up(&a, "eth0") && admin_up(&c.own_ns, &outer));
    assert!(ping(&a, "10.211.0.2"), "a cannot reach b after the flap");
    assert!(c.stop());
}
