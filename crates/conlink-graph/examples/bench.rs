//! Render-time benchmark: a generated 50-container configuration drawn in
//! every format, against the time serde_json takes to parse the same config
//! (the baseline: `conlink graph` must read the JSON anyway).
//!
//! `cargo run --release -p conlink-graph --example bench` prints the figures;
//! `... --example bench -- --emit N` prints the generated N-group config as
//! `--show-config` JSON instead (tests/fixtures/large50.json is `--emit 50`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use conlink_graph::{render, Format};
use conlink_model::NetworkConfig;
use serde_json::{json, Value};

/// A config with `n` services+containers (one in five is a service) on eight
/// switched bridges, two patch bridges, three tunnels, and some
/// macvlan/vlan/dummy links. Deterministic.
fn generate(n: usize) -> Value {
    let nb = 8;
    let mut bridges = serde_json::Map::new();
    for b in 0..nb {
        let mode = if b % 3 == 2 { "ovs" } else { "linux" };
        bridges.insert(
            format!("net{b}"),
            json!({"bridge": format!("net{b}"), "mode": mode}),
        );
    }
    for w in 0..2 {
        bridges.insert(
            format!("wire{w}"),
            json!({"bridge": format!("wire{w}"), "mode": "patch"}),
        );
    }
    let tunnels = json!([
        {"type": "vxlan", "bridge": "net0", "remote": "192.168.200.2", "vni": 100},
        {"type": "geneve", "bridge": "net3", "remote": "192.168.200.3", "vni": 103},
        {"type": "vxlan", "bridge": "net5", "remote": "192.168.200.2", "vni": 105}
    ]);
    let mut services = serde_json::Map::new();
    let mut containers = serde_json::Map::new();
    for i in 0..n {
        let is_service = i % 5 == 0;
        let name = if is_service {
            format!("svc{i:02}")
        } else {
            format!("node{i:02}")
        };
        let key = if is_service { "service" } else { "container" };
        let mut links = Vec::new();
        let nveth = 1 + i % 3;
        for k in 0..nveth {
            let b = (i + k * 3) % nb;
            links.push(json!({
                "type": "veth", key: name, "dev": format!("eth{k}"), "bridge": format!("net{b}"),
                "ip": format!("10.{b}.{}.{}/16", i / 200, i % 200 + 1),
                "mac": format!("c2:00:00:{b:02x}:{:02x}:{k:02x}", i), "mtu": 1500,
                "ethtool": ["--offload tx off"], "base": "conlink"
            }));
        }
        // Patch bridges take exactly two links each: groups 1&2 and 3&4.
        if (1..=4).contains(&i) {
            let w = (i - 1) / 2;
            links.push(
                json!({"type": "veth", key: name, "dev": "p0", "bridge": format!("wire{w}"),
                              "mtu": 1500, "base": "conlink"}),
            );
        }
        if i % 7 == 3 {
            links.push(json!({"type": "macvlan", key: name, "dev": "mv0", "outer-dev": "eth0",
                              "mode": "bridge", "mac": format!("c2:10:00:00:00:{i:02x}"), "base": "host"}));
        }
        if i % 11 == 5 {
            links.push(json!({"type": "vlan", key: name, "dev": "v300", "outer-dev": "eth1",
                              "vlanid": 300, "mac": format!("c2:20:00:00:00:{i:02x}"), "base": "host"}));
        }
        if i % 13 == 6 {
            links.push(json!({"type": "dummy", key: name, "dev": "lo1",
                              "ip": format!("10.250.0.{}/32", i + 1), "mtu": 65535, "base": "local"}));
        }
        if i % 9 == 4 {
            links[0]["netem"] = json!("delay 20ms");
        }
        let group = json!({"links": links, "commands": []});
        if is_service {
            services.insert(name, group);
        } else {
            containers.insert(name, group);
        }
    }
    json!({"bridges": bridges, "tunnels": tunnels, "services": services, "containers": containers})
}

/// Median wall time of `runs` calls of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--emit") {
        let n = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(50);
        match serde_json::to_string_pretty(&generate(n)) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("bench: {e}"),
        }
        return;
    }
    let n = 50;
    let text = generate(n).to_string();
    let runs = 51;
    let parse = median(runs, || {
        let c: Result<NetworkConfig, _> = serde_json::from_str(black_box(&text));
        let _ = black_box(c);
    });
    let cfg: NetworkConfig = match serde_json::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench: generated config does not parse: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "conlink graph benchmark: {n} services/containers, {} bytes of JSON, median of {runs} runs",
        text.len()
    );
    println!(
        "{:<28} {:>10.3} ms",
        "baseline: serde_json parse",
        parse.as_secs_f64() * 1e3
    );
    let mut worst = Duration::ZERO;
    for f in Format::ALL {
        let mut len = 0;
        let d = median(runs, || len = black_box(render(black_box(&cfg), f)).len());
        worst = worst.max(d);
        println!(
            "{:<28} {:>10.3} ms  ({:.1}x parse, {len} bytes)",
            format!("render {f}"),
            d.as_secs_f64() * 1e3,
            d.as_secs_f64() / parse.as_secs_f64()
        );
    }
    let ok = worst < Duration::from_millis(100);
    println!(
        "slowest render {:.3} ms: {} the 100 ms target",
        worst.as_secs_f64() * 1e3,
        if ok { "within" } else { "OVER" }
    );
    if !ok {
        std::process::exit(1);
    }
}
