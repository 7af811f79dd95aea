//! Wires N namespaces (default 200), each with one veth (IP, MTU, route,
//! tx checksum off) whose outer end joins one bridge, first with
//! conlink-net, then with iproute2 batches (one `ip -batch` for the switch
//! side, one `ip -n NS -batch` per namespace: the iproute2 floor), and
//! prints both. Teardown is timed too (group delete + namespace delete).
//!
//! Run as root: `cargo bench -p conlink-net --bench links -- [N [ROUNDS [THREADS]]]`
//! (THREADS: conlink-net workers wiring namespaces concurrently, default 1).
//! (`BENCH_DETAIL=1` adds conlink-net's per-step averages on stderr).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conlink_model::{Ipv4Net, Route};
use conlink_net::{Handle, LinkAttrs, Netns};

const GROUP: u32 = 4242;

fn names(tag: &str, n: usize) -> (String, Vec<String>) {
    let pid = std::process::id();
    (
        format!("clb-{tag}-sw-{pid}"),
        (0..n).map(|i| format!("clb-{tag}-{pid}-{i}")).collect(),
    )
}

fn ip_of(i: usize) -> Ipv4Net {
    let host = 10 + i as u32;
    Ipv4Net {
        addr: std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 90, 0, 0)) + host),
        prefix: 16,
    }
}

/// Removes every namespace of a run (by exact name), whatever happened.
struct Cleanup(Vec<String>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for n in &self.0 {
            if Netns::exists_named(n) {
                let _ = Netns::delete_named(n);
            }
        }
    }
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Wires namespace `i`: create it, veth into it on the bridge, tx checksum
/// off, address, route. Returns the cumulative time after each step.
fn wire_one(
    sw: &Handle,
    i: usize,
    name: &str,
    route: &Route,
) -> Result<[Duration; 5], conlink_net::Error> {
    let t = Instant::now();
    let mut step = [Duration::ZERO; 5];
    let c = Handle::create_netns(name)?;
    step[0] = t.elapsed();
    sw.create_veth(
        &LinkAttrs::new(format!("v{i}"))
            .master("br0")
            .group(GROUP)
            .owner("bench")
            .up(),
        &LinkAttrs::new("eth0")
            .mtu(1400)
            .group(GROUP)
            .owner("bench")
            .up(),
        &c,
    )?;
    step[1] = t.elapsed();
    c.set_tx_checksum("eth0", false)?;
    step[2] = t.elapsed();
    c.add_addr("eth0", ip_of(i))?;
    step[3] = t.elapsed();
    c.add_route("eth0", route)?;
    step[4] = t.elapsed();
    Ok(step)
}

/// conlink-net run with `threads` workers (1: strictly sequential).
fn conlink(
    n: usize,
    threads: usize,
) -> Result<(Duration, Duration, Duration, Duration), conlink_net::Error> {
    let (sw_name, ns_names) = names("c", n);
    let mut guard = Cleanup(vec![sw_name.clone()]);
    guard.0.extend(ns_names.iter().cloned());
    let route: Route = "10.91.0.0/16 via 10.90.0.1".parse().expect("static route");
    let t0 = Instant::now();
    let sw = Handle::create_netns(&sw_name)?;
    sw.create_bridge(&LinkAttrs::new("br0").owner("bench").up())?;
    let steps: Vec<[Duration; 5]> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                let (sw, route, ns_names) = (&sw, &route, &ns_names);
                s.spawn(move || -> Result<Vec<[Duration; 5]>, conlink_net::Error> {
                    let mut out = Vec::new();
                    for (i, name) in ns_names.iter().enumerate().skip(w).step_by(threads) {
                        out.push(wire_one(sw, i, name, route)?);
                    }
                    Ok(out)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in workers {
            match h.join() {
                Ok(r) => all.extend(r?),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        Ok::<_, conlink_net::Error>(all)
    })?;
    let setup = t0.elapsed();
    if std::env::var_os("BENCH_DETAIL").is_some() {
        let mut prev = 0.0;
        for (k, name) in ["netns+handle", "veth", "ethtool", "addr", "route"]
            .iter()
            .enumerate()
        {
            let cum: f64 = steps.iter().map(|s| s[k].as_secs_f64()).sum::<f64>() / n as f64;
            eprintln!("  {name:12} {:.3} ms avg", (cum - prev) * 1e3);
            prev = cum;
        }
    }
    let mut per: Vec<Duration> = steps.iter().map(|s| s[4]).collect();
    let t1 = Instant::now();
    sw.delete_group(GROUP)?;
    if std::env::var_os("BENCH_DETAIL").is_some() {
        eprintln!("  group delete {:.1} ms", t1.elapsed().as_secs_f64() * 1e3);
    }
    for name in &ns_names {
        Netns::delete_named(name)?;
    }
    Netns::delete_named(&sw_name)?;
    let teardown = t1.elapsed();
    Ok((setup, pct(&mut per, 0.5), pct(&mut per, 0.99), teardown))
}

fn batch(args: &[&str], script: &str) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(args)
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ip: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(script.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "ip -batch: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn iproute2(n: usize) -> Result<(Duration, Duration), String> {
    let (sw_name, ns_names) = names("i", n);
    let mut guard = Cleanup(vec![sw_name.clone()]);
    guard.0.extend(ns_names.iter().cloned());
    let t0 = Instant::now();
    // Root side: the namespaces themselves.
    let mut root = format!("netns add {sw_name}\n");
    for name in &ns_names {
        root += &format!("netns add {name}\n");
    }
    batch(&[], &root)?;
    // Switch side: bridge and every veth, peers straight into the namespaces.
    let mut sw = String::from("link add br0 type bridge\nlink set br0 up\n");
    for (i, name) in ns_names.iter().enumerate() {
        sw += &format!(
            "link add v{i} group {GROUP} type veth peer name eth0 mtu 1400 group {GROUP} netns {name}\n\
             link set v{i} master br0 up\n"
        );
    }
    batch(&["-n", &sw_name], &sw)?;
    // One batch per namespace (ethtool has no iproute2 batch: not counted).
    for (i, name) in ns_names.iter().enumerate() {
        let s = format!(
            "link set eth0 up\naddr add {} brd + dev eth0\nroute add 10.91.0.0/16 via 10.90.0.1 dev eth0\n",
            ip_of(i)
        );
        batch(&["-n", name], &s)?;
    }
    let setup = t0.elapsed();
    let t1 = Instant::now();
    batch(&["-n", &sw_name], &format!("link delete group {GROUP}\n"))?;
    if std::env::var_os("BENCH_DETAIL").is_some() {
        eprintln!(
            "  ip group delete {:.1} ms",
            t1.elapsed().as_secs_f64() * 1e3
        );
    }
    let mut td = String::new();
    for name in &ns_names {
        td += &format!("netns del {name}\n");
    }
    td += &format!("netns del {sw_name}\n");
    batch(&[], &td)?;
    Ok((setup, t1.elapsed()))
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bench_links needs root");
        std::process::exit(2);
    }
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let rounds: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let threads: usize = std::env::args()
        .nth(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1)
        .max(1);
    // The kernel frees deleted namespaces asynchronously (cleanup_net), so
    // one phase's teardown can slow the next phase down: let it settle
    // before each phase, alternate the two tools, and report medians.
    let settle = || std::thread::sleep(Duration::from_secs(3));
    let (mut ci, mut ii) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for tool in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            settle();
            if tool == 0 {
                match iproute2(n) {
                    Ok(v) => ii.push(v),
                    Err(e) => {
                        eprintln!("iproute2 run failed: {e}");
                        std::process::exit(1);
                    }
                }
            } else {
                match conlink(n, threads) {
                    Ok(v) => ci.push(v),
                    Err(e) => {
                        eprintln!("conlink-net run failed: {e}");
                        std::process::exit(1);
                    }
                }
            }
        }
    }
    let med = |mut v: Vec<Duration>| pct(&mut v, 0.5);
    let c_setup = med(ci.iter().map(|v| v.0).collect());
    let c_p50 = med(ci.iter().map(|v| v.1).collect());
    let c_p99 = med(ci.iter().map(|v| v.2).collect());
    let c_td = med(ci.iter().map(|v| v.3).collect());
    let i_setup = med(ii.iter().map(|v| v.0).collect());
    let i_td = med(ii.iter().map(|v| v.1).collect());
    println!(
        "rounds: {rounds} (medians; tools alternate, 3 s settle before each phase); conlink-net threads: {threads}"
    );
    println!("namespaces wired: {n} (netns + veth into it on one bridge + MTU + IP + route)");
    println!(
        "conlink-net : setup {:8.1} ms  ({:.2} ms/link, {:.0} links/s)  per-namespace p50 {:.2} ms p99 {:.2} ms  teardown {:7.1} ms",
        ms(c_setup),
        ms(c_setup) / n as f64,
        n as f64 / c_setup.as_secs_f64(),
        ms(c_p50),
        ms(c_p99),
        ms(c_td)
    );
    println!(
        "ip -batch   : setup {:8.1} ms  ({:.2} ms/link, {:.0} links/s)  teardown {:7.1} ms",
        ms(i_setup),
        ms(i_setup) / n as f64,
        n as f64 / i_setup.as_secs_f64(),
        ms(i_td)
    );
    println!(
        "speed-up    : setup {:.2}x  teardown {:.2}x",
        i_setup.as_secs_f64() / c_setup.as_secs_f64(),
        i_td.as_secs_f64() / c_td.as_secs_f64()
    );
}
