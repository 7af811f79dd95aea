//! Privileged end-to-end tests of link features through the daemon with the
//! netns runtime: 1:1 NAT with a real TCP connection, a VXLAN tunnel between
//! two conlink instances on two "hosts", macvlan off a host interface.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ip_json, link_names, ping, prefix, require_root, Conlink};

/// Test-owned named namespace, deleted by exact name on drop.
struct OwnNs(String);
impl OwnNs {
    fn new(name: String) -> Self {
        assert!(Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success());
        OwnNs(name)
    }
    fn ip(&self, args: &[&str]) {
        let st = Command::new("ip")
            .args(["-n", &self.0])
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "ip -n {} {args:?}", self.0);
    }
}
impl Drop for OwnNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A python TCP server in namespace `ns` bound to `addr:port` that answers
/// "hello from ADDR" once; killed by PID on drop.
struct Server(Child);
impl Server {
    fn start(ns: &str, addr: &str, port: u16) -> Server {
        let code = format!(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('{addr}',{port}))\ns.listen(1)\nc,a=s.accept()\nc.sendall(b'hello from {addr} to '+a[0].encode())\nc.close()\n"
        );
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", &code])
            .stdout(Stdio::null())
            .spawn()
            .expect("start python server");
        Server(child)
    }
}
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Connects from `ns` to `addr:port`, retrying until `timeout`; the reply.
fn connect(ns: &str, addr: &str, port: u16, timeout: Duration) -> Option<String> {
    let code = format!(
        "import socket\ns=socket.create_connection(('{addr}',{port}),timeout=2)\nprint(s.recv(100).decode())\n"
    );
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", &code])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        if out.status.success() {
            return Some(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn nat_dnats_arriving_traffic_and_snats_leaving_traffic() {
    require_root();
    let p = prefix();
    // The server's service listens only on the nat address (its second
    // link); clients talk to its eth0 address 10.211.0.2.
    let cfg = format!(
        r#"
links:
  - {{container: {p}cl, bridge: s1, ip: 10.211.0.1/24}}
  - {{container: {p}sv, bridge: s1, ip: 10.211.0.2/24, nat: 10.211.1.5}}
  - {{container: {p}sv, dev: eth1, bridge: s2, ip: 10.211.1.5/24}}
"#
    );
    let mut c = Conlink::start(&p, &cfg, &[]);
    c.wait_connected();
    let _srv = Server::start(&format!("{p}sv"), "10.211.1.5", 7001);
    let reply = connect(
        &format!("{p}cl"),
        "10.211.0.2",
        7001,
        Duration::from_secs(10),
    )
    .expect("no TCP connection through the DNAT");
    assert_eq!(reply, "hello from 10.211.1.5 to 10.211.0.1");
    // The rules live in the container's namespace, in conlink's table.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{p}sv"),
            "nft",
            "-j",
            "list",
            "table",
            "ip",
            "conlink",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dnat") && text.contains("snat"), "{text}");
    assert!(c.stop());
}

#[test]
fn vxlan_tunnel_joins_two_conlink_instances() {
    require_root();
    let p = prefix();
    // Two "hosts" joined by a veth underlay.
    let ha = OwnNs::new(format!("{p}ha"));
    let hb = OwnNs::new(format!("{p}hb"));
    ha.ip(&[
        "link", "add", "under0", "type", "veth", "peer", "name", "under0", "netns", &hb.0,
    ]);
    ha.ip(&["addr", "add", "192.168.77.1/24", "dev", "under0"]);
    hb.ip(&["addr", "add", "192.168.77.2/24", "dev", "under0"]);
    ha.ip(&["link", "set", "under0", "up"]);
    hb.ip(&["link", "set", "under0", "up"]);
    let cfg = |ip: &str, remote: &str, node: &str| {
        format!(
            "links:\n  - {{container: {node}, bridge: s1, ip: {ip}/24}}\n\
             tunnels:\n  - {{type: vxlan, bridge: s1, remote: {remote}, vni: 1001}}\n"
        )
    };
    let (na, nb) = (format!("{p}na"), format!("{p}nb"));
    // Each conlink runs on its own "host": started inside that namespace.
    let mut a = Conlink::start_in(
        &ha.0,
        &format!("{p}A"),
        &cfg("10.212.0.1", "192.168.77.2", &na),
        &[],
    );
    let mut b = Conlink::start_in(
        &hb.0,
        &format!("{p}B"),
        &cfg("10.212.0.2", "192.168.77.1", &nb),
        &[],
    );
    a.wait_connected();
    b.wait_connected();
    // The tunnel device sits on the bridge in conlink's namespace.
    let t = ip_json(&a.own_ns, &["-d", "link", "show", "dev", "vxlan-1001"]);
    assert_eq!(t[0]["master"], "s1", "{t}");
    // The original's default port (its users publish 8472/udp).
    assert_eq!(t[0]["linkinfo"]["info_data"]["port"], 8472, "{t}");
    assert!(ping(&na, "10.212.0.2"), "no traffic across the tunnel");
    assert!(a.stop() && b.stop());
    // The underlay namespace keeps only what the test made.
    let names = link_names(&ha.0);
    assert_eq!(names, vec!["lo", "under0"]);
}

#[test]
fn macvlan_child_of_a_host_interface_moves_into_the_container() {
    require_root();
    let p = prefix();
    // A "host" namespace with a parent interface and a peer to talk to.
    let host = OwnNs::new(format!("{p}h"));
    let peer = OwnNs::new(format!("{p}pe"));
    host.ip(&[
        "link", "add", "par0", "type", "veth", "peer", "name", "p0", "netns", &peer.0,
    ]);
    host.ip(&["link", "set", "par0", "up"]);
    peer.ip(&["addr", "add", "10.213.0.9/24", "dev", "p0"]);
    peer.ip(&["link", "set", "p0", "up"]);
    let node = format!("{p}n");
    let cfg = format!(
        "links:\n  - {{container: {node}, type: macvlan, outer-dev: par0, mode: bridge, \
         ip: 10.213.0.1/24, mac: c2:00:00:00:13:01}}\n"
    );
    let mut c = Conlink::start_in(&host.0, &p, &cfg, &[]);
    c.wait_connected();
    let l = ip_json(&node, &["-d", "link", "show", "dev", "eth0"]);
    assert_eq!(l[0]["linkinfo"]["info_kind"], "macvlan", "{l}");
    assert_eq!(l[0]["address"], "c2:00:00:00:13:01");
    assert!(ping(&node, "10.213.0.9"), "no traffic through the macvlan");
    assert!(c.stop());
}

#[test]
fn the_daemon_runs_no_program_for_networking() {
    require_root();
    let p = prefix();
    // Bridges, a patch, veths with MTU/MAC/routes/ethtool, NAT, a macvlan
    // and a tunnel: every operation this kernel supports, and no commands.
    let host = OwnNs::new(format!("{p}h"));
    host.ip(&[
        "link", "add", "par0", "type", "veth", "peer", "name", "par1",
    ]);
    host.ip(&["link", "set", "par0", "up"]);
    host.ip(&["addr", "add", "192.168.78.1/24", "dev", "par1"]);
    host.ip(&["link", "set", "par1", "up"]);
    let cfg = format!(
        r#"
links:
  - {{container: {p}a, bridge: s1, ip: 10.214.0.1/24, mtu: 1400, mac: c2:00:00:00:14:01,
      route: "10.215.0.0/16 via 10.214.0.254", ethtool: "--offload rx off", nat: 10.214.9.1}}
  - {{container: {p}b, bridge: s1, ip: 10.214.0.2/24}}
  - {{container: {p}a, dev: eth1, bridge: pp, ip: 10.214.1.1/24}}
  - {{container: {p}b, dev: eth1, bridge: pp, ip: 10.214.1.2/24}}
  - {{container: {p}b, dev: eth2, type: macvlan, outer-dev: par0, mode: bridge}}
bridges:
  - {{bridge: pp, mode: patch}}
tunnels:
  - {{type: vxlan, bridge: s1, remote: 192.168.78.2, vni: 77}}
"#
    );
    let dir = common::tempdir::Dir::new(&format!("{p}st"));
    let trace = dir.0.join("execve.trace");
    let tracer = format!("strace -f -qq -e trace=execve -o {}", trace.display());
    let mut c = Conlink::start_wrapped(&host.0, &tracer, &p, &cfg, &[]);
    c.wait_connected();
    assert!(
        ping(&format!("{p}a"), "10.214.1.2"),
        "patch carries no traffic"
    );
    assert!(c.stop());
    let log = std::fs::read_to_string(&trace).expect("strace output");
    let execs: Vec<&str> = log.lines().filter(|l| l.contains("execve(")).collect();
    // The one execve is strace starting conlink itself.
    assert_eq!(execs.len(), 1, "conlink ran programs: {execs:#?}");
    assert!(execs[0].contains("conlink"), "{execs:?}");
}
