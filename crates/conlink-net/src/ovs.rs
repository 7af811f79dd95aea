//! Open vSwitch bridges through `ovs-vsctl` (argument vector, never a
//! shell). The only child process conlink-net ever spawns.

use std::process::Command;

use crate::error::{Error, Result};

/// The `ovs-vsctl` program to run (overridable for tests and odd installs).
fn program() -> String {
    std::env::var("CONLINK_OVS_VSCTL").unwrap_or_else(|_| "ovs-vsctl".into())
}

/// Runs `ovs-vsctl --timeout=5 ARGS…`; its absence or a database that does
/// not answer gives [`Error::OvsUnavailable`].
fn vsctl(args: &[&str]) -> Result<String> {
    let prog = program();
    let out = Command::new(&prog)
        .arg("--timeout=5")
        .args(args)
        .output()
        .map_err(|e| {
            Error::OvsUnavailable(format!(
                "cannot run {prog}: {e} (install openvswitch-switch and start ovsdb-server/ovs-vswitchd)"
            ))
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success() {
        if stderr.contains("database connection failed") || stderr.contains("db.sock") {
            return Err(Error::OvsUnavailable(format!(
                "ovsdb-server is not running ({stderr})"
            )));
        }
        return Err(Error::Ovs {
            args: args.join(" "),
            stderr,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether OVS answers (`ovs-vsctl show` succeeds).
pub fn available() -> bool {
    vsctl(&["show"]).is_ok()
}

/// Creates an OVS bridge (`ovs-vsctl --may-exist add-br NAME`).
pub fn add_bridge(name: &str) -> Result<()> {
    vsctl(&["--may-exist", "add-br", name]).map(|_| ())
}

/// Creates an OVS bridge on the userspace datapath (`ovs-vsctl
/// --may-exist add-br NAME -- set bridge NAME datapath_type=netdev`), which
/// works without the openvswitch kernel module (slower, but it works).
pub fn add_bridge_userspace(name: &str) -> Result<()> {
    vsctl(&[
        "--may-exist",
        "add-br",
        name,
        "--",
        "set",
        "bridge",
        name,
        "datapath_type=netdev",
    ])
    .map(|_| ())
}

/// Whether the openvswitch kernel datapath module is loaded (what `auto`
/// bridge mode checks).
pub fn kernel_module_loaded() -> bool {
    std::path::Path::new("/sys/module/openvswitch").exists()
}

/// Whether OVS knows bridge NAME (`ovs-vsctl br-exists NAME`: exit 2 = no).
pub fn bridge_exists(name: &str) -> Result<bool> {
    let prog = program();
    let out = Command::new(&prog)
        .args(["--timeout=5", "br-exists", name])
        .output()
        .map_err(|e| Error::OvsUnavailable(format!("cannot run {prog}: {e}")))?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(2) => Ok(false),
        _ => Err(Error::Ovs {
            args: format!("br-exists {name}"),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
    }
}

/// Deletes an OVS bridge (`ovs-vsctl --if-exists del-br NAME`).
pub fn del_bridge(name: &str) -> Result<()> {
    vsctl(&["--if-exists", "del-br", name]).map(|_| ())
}

/// Adds a port (`ovs-vsctl --may-exist add-port BRIDGE PORT`).
pub fn add_port(bridge: &str, port: &str) -> Result<()> {
    vsctl(&["--may-exist", "add-port", bridge, port]).map(|_| ())
}

/// Removes a port (`ovs-vsctl --if-exists del-port BRIDGE PORT`).
pub fn del_port(bridge: &str, port: &str) -> Result<()> {
    vsctl(&["--if-exists", "del-port", bridge, port]).map(|_| ())
}
