//! Soak, netns runtime (issue 12): replicas of a service die and start
//! again (`ip netns del` / `ip netns add`, which the runtime watches) for
//! many cycles while conlink runs; its RSS, open fds and threads at the end
//! must stay within 10% of the start (after a warm-up), every cycle must
//! rewire the replica, and a clean stop must leave nothing behind.
//!
//! In the suite this runs 60 cycles; `bench/soak` runs it with
//! `CONLINK_SOAK_CYCLES=2000` (release build) and prints the figures.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{ip_json, link_names, netns_list, prefix, require_root, Conlink};

/// Removes namespaces by exact name at the end (re-added ones are the
/// test's: conlink leaves them).
struct DelOnDrop(Vec<String>);

impl Drop for DelOnDrop {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// (RSS KiB, open fds, threads) of `pid`.
fn figures(pid: u32) -> (u64, usize, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k} missing in /proc/{pid}/status"))
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (field("VmRSS:"), fds, field("Threads:"))
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < timeout,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn ip_netns(args: &[&str]) {
    let st = Command::new("ip").arg("netns").args(args).status().unwrap();
    assert!(st.success(), "ip netns {args:?}");
}

#[test]
fn replicas_dying_and_starting_for_many_cycles_do_not_grow_conlink() {
    require_root();
    let cycles: usize = std::env::var("CONLINK_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    // A long run warms up until conlink's bounded event histories are full
    // (the API and the core keep the last 4096 events each; a cycle makes
    // 5: die, link removed, start, link created, converged), so that growth
    // after it means a leak, not a history filling up.
    let warmup = if cycles >= 1000 {
        1000
    } else {
        (cycles / 10).clamp(10, 100)
    };
    let k = 5u32;
    let p = prefix();
    let before = netns_list(&p);
    let cfg = format!(
        "links:\n  - {{service: {p}s, bridge: s1, ip: 10.212.0.1/24}}\n\
         bridges:\n  - {{bridge: s1, mode: linux}}\n"
    );
    let mut names: Vec<String> = (1..=k).map(|i| format!("{p}s_{i}")).collect();
    names.push(format!("{p}own"));
    let _cleanup = DelOnDrop(names);
    let mut c = Conlink::start(&p, &cfg, &["--scale", &format!("{p}s={k}")]);
    c.wait_connected();
    let own = c.own_ns.clone();
    let pid = c.pid().expect("conlink runs");
    let wired = |i: u32| {
        let ns = format!("{p}s_{i}");
        std::path::Path::new(&format!("/run/netns/{ns}")).exists()
            && link_names(&ns).iter().any(|l| l == "eth0")
            && link_names(&own).contains(&format!("{p}s_{i}-eth0"))
    };
    let t0 = Instant::now();
    let mut start = None;
    let mut series = Vec::new();
    for cycle in 0..warmup + cycles {
        if cycle == warmup {
            start = Some((figures(pid), Instant::now()));
        }
        if cycle >= warmup && (cycle - warmup) % (cycles / 10).max(1) == 0 {
            series.push(figures(pid).0);
        }
        let i = (cycle as u32) % k + 1;
        let ns = format!("{p}s_{i}");
        let end = format!("{p}s_{i}-eth0");
        ip_netns(&["del", &ns]);
        wait_until(
            &format!("cycle {cycle}: {end} gone"),
            Duration::from_secs(10),
            || !link_names(&own).contains(&end),
        );
        ip_netns(&["add", &ns]);
        wait_until(
            &format!("cycle {cycle}: {ns} rewired"),
            Duration::from_secs(10),
            || wired(i),
        );
    }
    let ((rss0, fd0, th0), t_start) = start.expect("warm-up done");
    let (rss1, fd1, th1) = figures(pid);
    let secs = t_start.elapsed().as_secs_f64();
    println!(
        "soak netns: {cycles} die/start cycles over {k} replicas in {secs:.1} s \
         ({:.1} ms/cycle; {warmup} warm-up cycles, {:.1} s in all)",
        secs * 1000.0 / cycles as f64,
        t0.elapsed().as_secs_f64()
    );
    println!("soak netns: RSS {rss0} -> {rss1} KiB, fds {fd0} -> {fd1}, threads {th0} -> {th1}");
    println!(
        "soak netns: RSS every {} cycles (KiB): {series:?}",
        (cycles / 10).max(1)
    );
    // Every replica is wired at the end, with its address.
    for i in 1..=k {
        let l = &ip_json(&format!("{p}s_{i}"), &["addr", "show", "dev", "eth0"])[0];
        assert_eq!(l["addr_info"][0]["local"], format!("10.212.0.{i}"), "{l}");
    }
    let within = |a: u64, b: u64, slack: u64| b <= a + a / 10 + slack;
    // RSS gets 1 MiB of slack: the allocator's arenas move in steps.
    assert!(within(rss0, rss1, 1024), "RSS grew {rss0} -> {rss1} KiB");
    assert!(within(fd0 as u64, fd1 as u64, 0), "fds grew {fd0} -> {fd1}");
    assert!(within(th0, th1, 0), "threads grew {th0} -> {th1}");
    assert!(c.stop(), "conlink exited with an error");
    // conlink made its own namespace: a clean stop removes it.
    assert!(
        !std::path::Path::new(&format!("/run/netns/{own}")).exists(),
        "conlink's namespace {own} left behind"
    );
    for i in 1..=k {
        assert_eq!(link_names(&format!("{p}s_{i}")), ["lo"]);
    }
    let mut after = netns_list(&p);
    after.retain(|x| !x.starts_with(&format!("{p}s_")) && *x != own);
    let mut b = before;
    b.retain(|x| !x.starts_with(&format!("{p}s_")) && *x != own);
    assert_eq!(after, b);
}
