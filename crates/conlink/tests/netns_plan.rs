//! `conlink plan` against the real kernel (netns runtime): from nothing,
//! against a running conlink (its control API: exactly the reload it
//! would do, and then does), after a SIGKILL (the kernel's markers: what a
//! restarted conlink would do), and a bad config. Every plan is checked
//! to change nothing: `ip -j` state of every namespace (links, IPv4
//! addresses, routes) and the namespace list are compared before and after.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{ip_json, netns_list, prefix, require_root, Conlink};

fn config(p: &str, a_extra: &str, more: &str) -> String {
    format!(
        "links:\n\
         \x20 - {{container: {p}a, bridge: s1, ip: 10.213.0.1/24{a_extra}}}\n\
         \x20 - {{container: {p}b, bridge: s1, ip: 10.213.0.2/24}}\n\
         {more}\
         bridges:\n  - {{bridge: s1, mode: linux}}\n"
    )
}

fn edited(p: &str) -> String {
    config(
        p,
        ", mtu: 9000",
        &format!("  - {{container: {p}b, dev: eth1, bridge: s2, ip: 10.214.0.2/24}}\n"),
    )
    .replace(
        "bridges:\n  - {bridge: s1, mode: linux}\n",
        "bridges:\n  - {bridge: s1, mode: linux}\n  - {bridge: s2, mode: linux}\n",
    )
}

/// `conlink plan` with `file`: (exit code, stdout, stderr).
fn plan(p: &str, file: &Path, json: bool) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conlink"));
    cmd.args(["--runtime", "netns", "--netns-name", &format!("{p}own")])
        .arg("--network-file")
        .arg(file)
        .arg("plan");
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("run conlink plan");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Everything `ip -j` shows of the lab's namespaces, and which exist
/// (one entry per namespace and view, so a difference names its place).
fn state(p: &str) -> Vec<(String, serde_json::Value)> {
    let mut v = vec![("namespaces".to_string(), serde_json::json!(netns_list(p)))];
    for ns in netns_list(p) {
        // IPv4 addresses: IPv6 link-local ones change on their own (DAD
        // finishing, lifetimes counting down).
        for what in [
            &["link", "show"][..],
            &["-4", "addr", "show"],
            &["route", "show"],
        ] {
            let mut j = ip_json(&ns, what);
            // A bridge's operstate follows its ports' carrier on its own
            // (UNKNOWN -> UP a moment after a port comes up): the kernel's
            // doing, not a change anyone made.
            if let Some(links) = j.as_array_mut() {
                for l in links {
                    if let Some(o) = l.as_object_mut() {
                        o.remove("operstate");
                    }
                }
            }
            v.push((format!("{ns}: ip {}", what.join(" ")), j));
        }
    }
    v
}

fn assert_same(a: &[(String, serde_json::Value)], b: &[(String, serde_json::Value)]) {
    assert_eq!(a.len(), b.len(), "namespaces changed");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x, y, "plan changed the system: {}", x.0);
    }
}

/// Removes named namespaces on drop (a killed conlink leaves them).
struct DelOnDrop(Vec<String>);

impl Drop for DelOnDrop {
    fn drop(&mut self) {
        for n in &self.0 {
            if Path::new("/run/netns").join(n).exists() {
                let _ = Command::new("ip").args(["netns", "del", n]).status();
            }
        }
    }
}

struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(p: &str, name: &str, text: &str) -> TempFile {
        let f = std::env::temp_dir().join(format!("conlink-plan-{p}-{name}.yaml"));
        std::fs::write(&f, text).expect("write config");
        TempFile(f)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn plan_from_nothing_creates_nothing() {
    require_root();
    let p = prefix();
    let f = TempFile::new(&p, "base", &config(&p, "", ""));
    let (code, out, err) = plan(&p, &f.0, false);
    assert_eq!(code, 2, "{out}{err}");
    let a = format!("{p}a");
    let want = format!(
        "+ namespace {p}own: created\n\
         + namespace {a}: created\n\
         + namespace {p}b: created\n\
         + bridge s1: created (linux)\n\
         + {a}/eth0: created (veth, {a}-eth0 on bridge s1)\n\
         + {a}/eth0: ethtool none -> --offload tx off\n\
         + {a}/eth0: up\n\
         + {a}/eth0: address 10.213.0.1/24 added\n\
         + {p}b/eth0: created (veth, {p}b-eth0 on bridge s1)\n\
         + {p}b/eth0: ethtool none -> --offload tx off\n\
         + {p}b/eth0: up\n\
         + {p}b/eth0: address 10.213.0.2/24 added\n\
         Plan: 6 to add, 0 to change, 0 to replace, 0 to remove.\n"
    );
    assert_eq!(out, want);
    assert!(netns_list(&p).is_empty(), "plan created namespaces");
}

#[test]
fn a_bad_config_is_exit_1_naming_the_file_and_the_path() {
    let p = prefix();
    let f = TempFile::new(
        &p,
        "bad",
        &config(&p, "", "").replace("10.213.0.2/24", "10.213.0.300/24"),
    );
    let (code, out, err) = plan(&p, &f.0, false);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(&format!("{}: /links/1/ip:", f.0.display())),
        "{err}"
    );
}

#[test]
fn plan_against_a_running_conlink_is_the_reload_and_after_sigkill_the_adoption() {
    require_root();
    let p = prefix();
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    let _left = DelOnDrop(vec![a.clone(), b.clone(), format!("{p}own")]);
    let base = config(&p, "", "");
    let mut c = Conlink::start(&p, &base, &[]);
    c.wait_connected();
    let before = state(&p);

    // The running config: nothing to do.
    let (code, out, err) = plan(&p, &c.config_path(), false);
    assert_eq!(
        (code, out.as_str()),
        (0, "No changes: the system matches the configuration.\n"),
        "{err}"
    );
    assert!(
        err.contains("planning against the running conlink"),
        "{err}"
    );

    // An edit, planned before it is put in place: in place where the
    // kernel allows, exactly the lines the daemon logs when it applies it.
    let next = TempFile::new(&p, "edit", &edited(&p));
    let (code, out, err) = plan(&p, &next.0, false);
    assert_eq!(code, 2, "{out}{err}");
    let want = format!(
        "+ bridge s2: created (linux)\n\
         ~ {a}/eth0: mtu 65535 -> 9000\n\
         + {b}/eth1: created (veth, {b}-eth1 on bridge s2)\n\
         + {b}/eth1: ethtool none -> --offload tx off\n\
         + {b}/eth1: up\n\
         + {b}/eth1: address 10.214.0.2/24 added\n\
         Plan: 2 to add, 1 to change, 0 to replace, 0 to remove.\n"
    );
    assert_eq!(out, want);
    let (code, json, _) = plan(&p, &next.0, true);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&json).expect("plan --json is JSON");
    assert_eq!(
        v["summary"],
        serde_json::json!({"add": 2, "change": 1, "replace": 0, "remove": 0})
    );
    assert_eq!(v["changes"][1]["op"]["op"], "set_mtu", "{v}");
    assert_eq!(v["changes"][1]["op"]["to"], 9000, "{v}");
    assert_same(&state(&p), &before);

    // Applied by the daemon: it logs the lines the plan printed.
    let a_eth0 = ip_json(&a, &["link", "show", "dev", "eth0"])[0]["ifindex"].clone();
    c.edit_config(&edited(&p));
    c.wait_for("All links connected", 2, Duration::from_secs(15));
    let log = c.log();
    for line in want.lines().filter(|l| !l.starts_with("Plan:")) {
        let text = &line[2..];
        assert!(
            log.iter().any(|l| l.ends_with(text)),
            "the daemon did not log {text:?}: {log:#?}"
        );
    }
    assert_eq!(
        ip_json(&a, &["link", "show", "dev", "eth0"])[0]["ifindex"],
        a_eth0,
        "changed in place, not remade"
    );
    let (code, out, _) = plan(&p, &next.0, false);
    assert_eq!(
        (code, out.as_str()),
        (0, "No changes: the system matches the configuration.\n")
    );

    // SIGKILL: no daemon to ask, so the plan reads the kernel's markers,
    // which is what a conlink started now would do. Everything matches the
    // edited config (adopted as is) ...
    c.kill9();
    let killed = state(&p);
    let (code, out, err) = plan(&p, &next.0, false);
    assert_eq!(
        (code, out.as_str()),
        (0, "No changes: the system matches the configuration.\n"),
        "{err}"
    );
    assert!(
        err.contains("planning against what the kernel holds"),
        "{err}"
    );
    // ... and going back to the first config after a restart remakes the
    // link whose spec changed (markers do not say what it had) and removes
    // what is gone.
    let first = TempFile::new(&p, "first", &base);
    let (code, out, _) = plan(&p, &first.0, false);
    assert_eq!(code, 2, "{out}");
    let want = format!(
        "- {a}/eth0: removed\n\
         + {a}/eth0: created (veth, {a}-eth0 on bridge s1)\n\
         + {a}/eth0: ethtool none -> --offload tx off\n\
         + {a}/eth0: up\n\
         + {a}/eth0: address 10.213.0.1/24 added\n\
         - {b}/eth1: removed\n\
         - bridge s2: removed\n\
         Plan: 0 to add, 0 to change, 1 to replace, 2 to remove.\n"
    );
    assert_eq!(out, want);
    assert_same(&state(&p), &killed);

    // A conlink started again on it does just that, then cleans up.
    let mut again = Conlink::start(&p, &base, &[]);
    again.wait_connected();
    let log = again.log();
    for line in want.lines().filter(|l| !l.starts_with("Plan:")) {
        let text = &line[2..];
        assert!(
            log.iter().any(|l| l.ends_with(text)),
            "the restarted daemon did not log {text:?}: {log:#?}"
        );
    }
    assert!(again.stop());
}
