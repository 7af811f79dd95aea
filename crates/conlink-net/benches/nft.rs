//! Benchmark: publish forwards for N = 200 containers, one `apply_forwards`
//! batch each, then remove them one by one, against the same rules loaded
//! with one `nft -f` process per container (what a tool shelling out would
//! do) and with a single `nft -f` for all of them (the floor of nft itself),
//! measured in the same run. Prints the figures:
//! `sudo cargo bench -p conlink-net --bench nft`

#[path = "../tests/nft_util/mod.rs"]
mod nft_util;

use conlink_net::nft::{ForwardRules, Nft, DOCKER_IF};
use nft_util::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const N: usize = 200;

fn rules(i: usize) -> ForwardRules {
    ForwardRules {
        key: format!("svc_{i}-eth0"),
        docker_if: DOCKER_IF.into(),
        bridge: "br0".into(),
        ip: format!("10.50.{}.{}", i / 250, i % 250 + 1)
            .parse()
            .unwrap(),
        forwards: vec![format!("{}:80/tcp", 10000 + i).parse().unwrap()],
    }
}

fn text(i: usize) -> String {
    let r = rules(i);
    let (k, ip, p) = (&r.key, r.ip, 10000 + i);
    format!(
        "table ip conlink {{\n\
         chain fwd-{k}-pre {{ type nat hook prerouting priority dstnat; iifname \"{DOCKER_IF}\" tcp dport {p} dnat to {ip}:80; }}\n\
         chain fwd-{k}-post {{ type nat hook postrouting priority srcnat; oifname \"br0\" ip daddr {ip} tcp dport 80 masquerade; }}\n\
         }}\n"
    )
}

fn nft_f(ns: &Netns, script: &str) {
    let mut c = Command::new("ip")
        .args(["netns", "exec", &ns.name, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn nft");
    c.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(c.wait().unwrap().success());
}

fn p50(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rule_count(ns: &Netns) -> usize {
    let t = ns.nft_table().expect("table");
    t["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o.get("rule").is_some())
        .count()
}

fn main() {
    let ns = Netns::new("nftbench");

    // conlink: one batch per container.
    let mut nft = Nft::open(Some(&ns.path())).unwrap();
    let mut per = Vec::with_capacity(N);
    let t0 = Instant::now();
    for i in 0..N {
        let t = Instant::now();
        nft.apply_forwards(&rules(i)).unwrap();
        per.push(t.elapsed());
    }
    let ours_add = t0.elapsed();
    assert_eq!(rule_count(&ns), 2 * N);
    let t0 = Instant::now();
    for i in 0..N {
        nft.remove_forwards(&rules(i).key).unwrap();
    }
    let ours_del = t0.elapsed();
    let t0 = Instant::now();
    nft.delete_table().unwrap();
    let ours_table = t0.elapsed();
    assert!(ns.nft_table().is_none());
    let ours_p50 = p50(&mut per);

    // Baseline 1: one nft process per container.
    let t0 = Instant::now();
    for i in 0..N {
        nft_f(&ns, &text(i));
    }
    let nft_each = t0.elapsed();
    assert_eq!(rule_count(&ns), 2 * N);
    nft_f(&ns, "delete table ip conlink\n");

    // Baseline 2: everything in one nft run.
    let all: String = (0..N).map(text).collect();
    let t0 = Instant::now();
    nft_f(&ns, &all);
    let nft_once = t0.elapsed();
    assert_eq!(rule_count(&ns), 2 * N);
    nft_f(&ns, "delete table ip conlink\n");

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("nft bench, N = {N} containers, 1 forward each (2 rules, 2 base chains):");
    println!(
        "  conlink apply_forwards : {:8.1} ms total, {:.3} ms per container (p50 {:.3} ms)",
        ms(ours_add),
        ms(ours_add) / N as f64,
        ms(ours_p50)
    );
    println!("  conlink remove_forwards: {:8.1} ms total", ms(ours_del));
    println!("  conlink delete_table   : {:8.3} ms", ms(ours_table));
    println!(
        "  baseline nft -f per container: {:8.1} ms total, {:.3} ms per container",
        ms(nft_each),
        ms(nft_each) / N as f64
    );
    println!("  floor: one nft -f for all    : {:8.1} ms", ms(nft_once));
    println!(
        "  speed-up vs nft per container: {:.1}x",
        nft_each.as_secs_f64() / ours_add.as_secs_f64()
    );
    if ours_add >= nft_each {
        eprintln!("conlink slower than spawning nft per container");
        std::process::exit(1);
    }
}
