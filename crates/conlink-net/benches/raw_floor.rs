//! The raw netlink floor (issue 13): the fewest requests this kernel needs
//! for what `bench/growth` asks of conlink, so the physical limit is printed
//! next to conlink and iproute2 in the same run.
//!
//! The topology: namespaces `PREFIX1..PREFIXN` (made beforehand by the
//! caller, as docker would), each with `eth0` on one shared bridge and
//! `eth1` on a point-to-point patch with its pair's `eth1` (namespaces 2k-1
//! and 2k: tc ingress + mirred redirect both ways, as conlink's `patch`
//! bridges). Each end gets MTU 9000, tx checksum off, an address; `eth0`
//! gets a route. Per namespace that is: one datagram to the switch
//! namespace (two veth creates, peers placed straight into the namespace
//! under their final names, outer ends created up and bridged, echoed for
//! the peers' indexes), two ethtool ioctls, and one datagram inside the
//! namespace (two ups, two addresses, one route); per pair one datagram for
//! the patch (two ingress qdiscs, two filters). No lookups, no renames, no
//! moves, no aliases (conlink's ownership marks are its own bookkeeping:
//! two follow-up messages per veth, sent in the same datagrams).
//!
//! Run as root:
//!   raw_floor wire PREFIX N THREADS   prints one `key=value` line
//!   (RAW_FLOOR_IPV6=0: also `addrgenmode none` on each container end;
//!   RAW_FLOOR_EXTRA=mark,lookup,up2,split: requests conlink sends besides,
//!   to price them, see `extra`)
//!   raw_floor settle                  waits until RTNL latency is quiet
//! (`cargo bench -p conlink-net --bench raw_floor -- wire bgx 100 1`).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use conlink_model::{Ipv4Net, Route};
use conlink_net::msg::{addr_msg, create_msg, ingress_msg, redirect_msg, route_msg};
use conlink_net::nl::{ifinfomsg, Msg, Socket, NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL};
use conlink_net::{LinkAttrs, LinkKind, Netns};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const IFLA_LINK: u16 = 5;
const IFLA_GROUP: u16 = 27;
const IFF_UP: u32 = 1;
const GROUP: u32 = 4243;

type Res<T> = Result<T, String>;

/// Namespaces per shared bridge (a Linux bridge takes at most 1024 ports).
const PORTS_PER_BRIDGE: usize = 1000;

fn nl_err(what: &str) -> impl Fn(conlink_net::nl::NlError) -> String + '_ {
    move |e| format!("{what}: errno {} {:?}", e.errno, e.msg)
}

/// Sends `msgs` in one datagram; the first refusal is the error.
fn batch(s: &mut Socket, msgs: &[Msg], what: &str) -> Res<Vec<Option<conlink_net::nl::Reply>>> {
    let refs: Vec<&Msg> = msgs.iter().collect();
    s.batch(&refs)
        .into_iter()
        .map(|r| r.map_err(nl_err(what)))
        .collect()
}

/// A netlink socket and an ioctl socket inside namespace `ns`.
fn sockets(ns: &Netns) -> Res<(Socket, OwnedFd)> {
    ns.run(|| -> Res<(Socket, OwnedFd)> {
        let s = Socket::open().map_err(|e| e.to_string())?;
        // SAFETY: plain socket(2); owned right after.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        // SAFETY: fresh descriptor owned by nobody else.
        Ok((s, unsafe { OwnedFd::from_raw_fd(fd) }))
    })
    .map_err(|e| e.to_string())?
}

/// `ethtool -K DEV tx off` (ETHTOOL_STXCSUM), one ioctl.
fn tx_off(fd: &OwnedFd, dev: &str) -> Res<()> {
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    #[repr(C)]
    struct Ifreq {
        name: [u8; 16],
        data: *mut EthtoolValue,
        _pad: [u8; 16],
    }
    let mut v = EthtoolValue { cmd: 0x17, data: 0 };
    let mut ifr = Ifreq {
        name: [0; 16],
        data: &mut v,
        _pad: [0; 16],
    };
    ifr.name[..dev.len()].copy_from_slice(dev.as_bytes());
    // SAFETY: valid fd; ifr and v live across the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), 0x8946, &mut ifr) } < 0 {
        return Err(format!(
            "ethtool {dev}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn peer_index(r: &Option<conlink_net::nl::Reply>) -> Res<u32> {
    let p = &r.as_ref().ok_or("no echo of the veth create")?.payload;
    conlink_net::nl::attrs(p.get(16..).unwrap_or(&[]))
        .find(|(t, _)| *t == IFLA_LINK)
        .map(|(_, d)| conlink_net::nl::attr_u32(d))
        .ok_or_else(|| "echo without IFLA_LINK".to_string())
}

fn own_index(r: &Option<conlink_net::nl::Reply>) -> u32 {
    r.as_ref()
        .and_then(|r| r.payload.get(4..8))
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

fn ip(base: [u8; 2], i: usize) -> Ipv4Net {
    let host = 10 + i as u32;
    Ipv4Net {
        addr: std::net::Ipv4Addr::from(u32::from_be_bytes([base[0], base[1], 0, 0]) + host),
        prefix: 16,
    }
}

/// `RAW_FLOOR_IPV6=0`: container ends without IPv6 link-local, as
/// `bench/growth` with `IPV6=0` asks of conlink and iproute2.
fn no_ipv6() -> bool {
    std::env::var("RAW_FLOOR_IPV6").is_ok_and(|v| v == "0")
}

/// `RAW_FLOOR_EXTRA=a,b`: requests conlink sends besides the floor's, added
/// one kind at a time to price them (docs/performance.md, "where the time
/// goes"): `mark` an alias on both ends of each veth once it is up and
/// configured (one request each, as a final ownership marker), `lookup` a
/// by-name lookup of the bridge before each create, `up2` a second up of
/// each outer end, `split` every message of the namespace datagram as its
/// own request.
fn extra(what: &str) -> bool {
    std::env::var("RAW_FLOOR_EXTRA").is_ok_and(|v| v.split(',').any(|w| w == what))
}

/// `ip link set dev IDX alias TEXT`.
fn alias_msg(idx: u32, text: &str) -> Msg {
    let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(0, idx as i32, 0, 0));
    m.attr_str(20, text);
    m
}

/// `ip link set dev IDX addrgenmode none`.
fn no_ll(idx: u32) -> Msg {
    const IFLA_AF_SPEC: u16 = 26;
    const IFLA_INET6_ADDR_GEN_MODE: u16 = 8;
    let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(0, idx as i32, 0, 0));
    m.nest(IFLA_AF_SPEC, |m| {
        m.nest(libc::AF_INET6 as u16, |m| {
            m.attr_u8(IFLA_INET6_ADDR_GEN_MODE, 1);
        });
    });
    m
}

/// Wires namespace `i` (1-based); returns the outer index of its patch end.
fn wire_one(sw: &mut Socket, br: u32, prefix: &str, i: usize, route: &Route) -> Res<u32> {
    let ns = Netns::named(&format!("{prefix}{i}")).map_err(|e| e.to_string())?;
    let (mut s, ioctl) = sockets(&ns)?;
    let fd = ns.as_raw_fd();
    let veth = |outer: String, dev: &str, master: Option<u32>| {
        let peer = LinkAttrs::new(dev).mtu(9000);
        let a = LinkAttrs::new(&outer).mtu(9000).group(GROUP).up();
        let mut m = create_msg(
            &a,
            &outer,
            &LinkKind::Veth { peer },
            Some(fd),
            None,
            None,
            master,
        );
        m.add_flags(NLM_F_ECHO);
        m
    };
    if extra("lookup") {
        let m = Msg::new(18, 0, &ifinfomsg(0, br as i32, 0, 0));
        sw.get(&m).map_err(nl_err("look up bridge"))?;
    }
    let r = batch(
        sw,
        &[
            veth(format!("b{i}"), "eth0", Some(br)),
            veth(format!("p{i}"), "eth1", None),
        ],
        "create veths",
    )?;
    let (e0, e1) = (peer_index(&r[0])?, peer_index(&r[1])?);
    tx_off(&ioctl, "eth0")?;
    tx_off(&ioctl, "eth1")?;
    let up = |idx: u32| Msg::new(RTM_NEWLINK, 0, &ifinfomsg(0, idx as i32, IFF_UP, IFF_UP));
    let add = NLM_F_CREATE | NLM_F_EXCL;
    let mut msgs = Vec::with_capacity(7);
    if no_ipv6() {
        // The same result as conlink's `ipv6: false`: `addrgenmode none`
        // on each container end before it comes up (the kernel takes no
        // IFLA_AF_SPEC for a veth peer at creation), in the same datagram.
        msgs.extend([no_ll(e0), no_ll(e1)]);
    }
    msgs.extend([
        up(e0),
        up(e1),
        addr_msg(RTM_NEWADDR, add, e0, ip([10, 90], i).into()),
        addr_msg(RTM_NEWADDR, add, e1, ip([10, 92], i).into()),
        route_msg(RTM_NEWROUTE, add, Some(e0), route),
    ]);
    if extra("split") {
        for m in msgs {
            batch(&mut s, &[m], "configure namespace")?;
        }
    } else {
        batch(&mut s, &msgs, "configure namespace")?;
    }
    let (o0, o1) = (own_index(&r[0]), own_index(&r[1]));
    if extra("up2") {
        batch(sw, &[up(o0)], "up again")?;
        batch(sw, &[up(o1)], "up again")?;
    }
    if extra("mark") {
        let text = format!("conlink:conlink link {prefix}{i} ethX 0123456789ab 0123456789abcdef");
        for (outer, inner) in [(o0, e0), (o1, e1)] {
            batch(sw, &[alias_msg(outer, &text)], "final mark")?;
            batch(&mut s, &[alias_msg(inner, &text)], "final mark")?;
        }
    }
    Ok(o1)
}

fn wire(prefix: &str, n: usize, threads: usize) -> Res<()> {
    let sw_name = format!("{prefix}-rawsw");
    let sw_ns = Netns::create_named(&sw_name).map_err(|e| e.to_string())?;
    let route: Route = "10.91.0.0/16 via 10.90.0.1"
        .parse()
        .map_err(|e| format!("{e}"))?;
    let t0 = Instant::now();
    // The outer ends never carry IPv6: disabled by the namespace default,
    // as conlink sets it in its own namespace (no link-local address, DAD,
    // router solicitation or `ff00::/8` route for them).
    sw_ns
        .run(|| std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1"))
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("disable_ipv6: {e}"))?;
    let (mut s0, _) = sockets(&sw_ns)?;
    // A Linux bridge takes at most 1024 ports (BR_MAX_PORTS): one shared
    // bridge per PORTS_PER_BRIDGE namespaces, as bench/growth configures.
    let mut brs = Vec::new();
    for k in 0..n.div_ceil(PORTS_PER_BRIDGE) {
        let mut br = Msg::new(
            RTM_NEWLINK,
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
            &ifinfomsg(0, 0, IFF_UP, IFF_UP),
        );
        br.attr_str(3, &format!("br{k}"));
        br.nest(18, |m| {
            m.attr(1, b"bridge");
        });
        let r = batch(&mut s0, &[br], "create bridge")?;
        brs.push(own_index(&r[0]));
    }
    let br_of = |i: usize| brs[(i - 1) / PORTS_PER_BRIDGE];
    let pairs: Vec<usize> = (1..=n).step_by(2).collect();
    let per: Vec<Duration> = std::thread::scope(|sc| -> Res<Vec<Duration>> {
        let hs: Vec<_> = (0..threads)
            .map(|w| {
                let (pairs, route, sw_ns, br_of) = (&pairs, &route, &sw_ns, &br_of);
                sc.spawn(move || -> Res<Vec<Duration>> {
                    let (mut sw, _) = sockets(sw_ns)?;
                    let mut out = Vec::new();
                    for &a in pairs.iter().skip(w).step_by(threads) {
                        let t = Instant::now();
                        let pa = wire_one(&mut sw, br_of(a), prefix, a, route)?;
                        out.push(t.elapsed());
                        if a + 1 > n {
                            continue;
                        }
                        let t = Instant::now();
                        let pb = wire_one(&mut sw, br_of(a + 1), prefix, a + 1, route)?;
                        batch(
                            &mut sw,
                            &[
                                ingress_msg(pa),
                                ingress_msg(pb),
                                redirect_msg(pa, pb),
                                redirect_msg(pb, pa),
                            ],
                            "patch",
                        )?;
                        out.push(t.elapsed());
                    }
                    Ok(out)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in hs {
            all.extend(h.join().map_err(|_| "worker panicked".to_string())??);
        }
        Ok(all)
    })?;
    let setup = t0.elapsed();
    if std::env::var_os("RAW_FLOOR_KEEP").is_some() {
        // For looking at the result (`ip -n PREFIX1 addr`); the caller
        // deletes PREFIX-rawsw.
        println!("raw_floor setup_ms={:.1} (kept)", setup.as_secs_f64() * 1e3);
        return Ok(());
    }
    let t1 = Instant::now();
    let mut del = Msg::new(RTM_DELLINK, 0, &ifinfomsg(0, 0, 0, 0));
    del.attr_u32(IFLA_GROUP, GROUP);
    batch(&mut s0, &[del], "delete group")?;
    drop(s0);
    drop(sw_ns);
    Netns::delete_named(&sw_name).map_err(|e| e.to_string())?;
    let teardown = t1.elapsed();
    let mut per = per;
    per.sort();
    let pick = |q: f64| per[((per.len() as f64 * q).ceil() as usize).clamp(1, per.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "raw_floor threads={threads} n={n} links={} setup_ms={:.1} per_link_ms={:.3} p50_ms={:.3} p99_ms={:.3} teardown_ms={:.1}",
        2 * n,
        ms(setup),
        ms(setup) / (2 * n) as f64,
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(teardown)
    );
    Ok(())
}

/// Waits until a request that takes RTNL (setting `lo` up, a no-op) answers
/// fast 20 times in a row: deleted namespaces are dismantled by the kernel
/// later (cleanup_net), holding RTNL for seconds, and would slow whatever
/// runs next. Gives up after 120 s. Prints how long it waited.
fn settle() -> Res<()> {
    let mut s = Socket::open().map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let (mut quiet, mut worst) = (0, Duration::ZERO);
    while quiet < 20 && t0.elapsed() < Duration::from_secs(120) {
        let m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(0, 1, IFF_UP, IFF_UP));
        let t = Instant::now();
        s.request(&m).map_err(nl_err("set lo up"))?;
        let d = t.elapsed();
        worst = worst.max(d);
        if d < Duration::from_millis(1) {
            quiet += 1;
        } else {
            quiet = 0;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    println!(
        "settle_ms={:.0} quiet={}",
        t0.elapsed().as_secs_f64() * 1e3,
        quiet >= 20
    );
    Ok(())
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("raw_floor needs root");
        std::process::exit(2);
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let r = match args.first().map(String::as_str) {
        Some("settle") => settle(),
        Some("wire") if args.len() == 4 => match (args[2].parse(), args[3].parse::<usize>()) {
            (Ok(n), Ok(t)) => wire(&args[1], n, t.max(1)),
            _ => Err("N and THREADS are numbers".into()),
        },
        _ => Err("usage: raw_floor wire PREFIX N THREADS | raw_floor settle".into()),
    };
    if let Err(e) = r {
        eprintln!("raw_floor: {e}");
        std::process::exit(1);
    }
}
