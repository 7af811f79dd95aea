//! The cost of the multi-host mesh per peer: one FDB-driven VXLAN device
//! (created in a "host" namespace and moved into conlink's, as conlink does)
//! and N flood entries (`bridge fdb append 00:00:00:00:00:00 dev D dst
//! PEER`), then removing them one by one (peers leaving), for N in
//! 1, 8, 64, 256. No traffic: this is the control-plane cost conlink pays
//! when peers come and go. Prints medians over ROUNDS.
//!
//! Then the per-peer mesh (`--mesh-tunnel vxlan-p2p`, and `geneve`, whose
//! requests are the same but which this kernel cannot make): N devices
//! with a fixed remote each (own VNI), made as conlink makes them
//! (created in the host namespace, moved in, attached, addrgenmode none,
//! then `type bridge_slave isolated on`, then up), and deleted one by
//! one.
//!
//! Run as root: `cargo bench -p conlink-net --bench mesh -- [ROUNDS]`
//! (default 20). Quiet machine first (`uptime` load < 1).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use conlink_net::{Handle, LinkAttrs, LinkKind, Netns};

/// Removes the namespaces of a run by exact name, whatever happened.
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

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn peer(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 200, 0, 0)) + 1 + i as u32)
}

fn main() -> Result<(), conlink_net::Error> {
    let rounds: usize = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let pid = std::process::id();
    let host_n = format!("clb-mesh-h-{pid}");
    let cl_n = format!("clb-mesh-c-{pid}");
    let _clean = Cleanup(vec![host_n.clone(), cl_n.clone()]);
    let host = Handle::open(&Netns::create_named(&host_n)?)?;
    let cl = Handle::open(&Netns::create_named(&cl_n)?)?;
    host.set_up("lo", true)?;
    cl.create_bridge(&LinkAttrs::new("s1").up())?;
    println!("peers  create+join  append/peer  delete/peer  device delete");
    for n in [1usize, 8, 64, 256] {
        let (mut create, mut add, mut del, mut gone) = (vec![], vec![], vec![], vec![]);
        for _ in 0..rounds {
            let t0 = Instant::now();
            host.create_link(
                &LinkAttrs::new("vxlan-77")
                    .mtu(1450)
                    .master("s1")
                    .owner("bench")
                    .up(),
                &LinkKind::VxlanFdb {
                    vni: 77,
                    dstport: 8472,
                },
                Some(&cl),
            )?;
            create.push(t0.elapsed());
            let t0 = Instant::now();
            for i in 0..n {
                cl.fdb_append("vxlan-77", peer(i))?;
            }
            add.push(t0.elapsed() / n as u32);
            assert_eq!(cl.fdb_flood("vxlan-77")?.len(), n);
            let t0 = Instant::now();
            for i in 0..n {
                cl.fdb_del("vxlan-77", peer(i))?;
            }
            del.push(t0.elapsed() / n as u32);
            let t0 = Instant::now();
            cl.delete_link("vxlan-77")?;
            gone.push(t0.elapsed());
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{n:5}  {:9.1} us  {:9.1} us  {:9.1} us  {:10.1} us",
            us(median(create)),
            us(median(add)),
            us(median(del)),
            us(median(gone))
        );
    }
    println!("per-peer (vxlan-p2p): peers  create+isolate+up/peer  delete/peer");
    for n in [1usize, 8, 64, 256] {
        let (mut make, mut gone) = (vec![], vec![]);
        for _ in 0..rounds {
            let names: Vec<String> = (0..n)
                .map(|i| format!("v{:06x}{:08x}", 77, u32::from(peer(i))))
                .collect();
            let t0 = Instant::now();
            for (i, name) in names.iter().enumerate() {
                host.create_link(
                    &LinkAttrs::new(name)
                        .mtu(1450)
                        .master("s1")
                        .owner("bench")
                        .no_ipv6_ll(),
                    &LinkKind::Vxlan(conlink_net::TunnelSpec {
                        vni: 1000 + i as u32,
                        remote: peer(i),
                        dstport: 8472,
                        underlay: None,
                    }),
                    Some(&cl),
                )?;
                cl.set_port_isolated(name, true)?;
                cl.set_up(name, true)?;
            }
            make.push(t0.elapsed() / n as u32);
            let t0 = Instant::now();
            for name in &names {
                cl.delete_link(name)?;
            }
            gone.push(t0.elapsed() / n as u32);
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{n:5}  {:9.1} us  {:9.1} us",
            us(median(make)),
            us(median(gone))
        );
    }
    Ok(())
}
