//! The live page (`--web-addr`) in real headless Chromium against a running
//! conlink (netns runtime): nodes coloured by link state, a failed
//! container highlighted, counters on hover, and the page changing by
//! itself (server-sent events) when a link goes down. The page is driven
//! over the DevTools protocol by tests/cdp.py (Debian packages chromium and
//! python3-websocket). A screenshot lands in target/control-artifacts/.
//!
//! The link is taken down in the kernel here (`ip link set … down`), not
//! with `conlink link set … down`: runtime overrides need the reconciling
//! core, which this daemon does not have yet (see docs/control.md).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{prefix, require_root, Conlink};
use serde_json::{json, Value};

struct Page {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Page {
    fn open(url: &str, profile: &std::path::Path) -> Page {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cdp.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(url)
            .arg(profile)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect(
                "run tests/cdp.py (needs chromium and python3-websocket: scripts/install-deps)",
            );
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut p = Page { child, out };
        let ready = p.read();
        assert_eq!(ready["value"], "ready", "{ready}");
        p
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.out.read_line(&mut line).expect("read cdp.py");
        assert!(!line.is_empty(), "cdp.py ended (chromium failed?)");
        serde_json::from_str(&line).unwrap()
    }

    fn cmd(&mut self, c: Value) -> Value {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{c}").unwrap();
        stdin.flush().unwrap();
        let v = self.read();
        assert!(v.get("error").is_none(), "{c}: {v}");
        v["value"].clone()
    }

    fn wait(&mut self, js: &str, secs: u64) -> Value {
        self.cmd(json!({"wait": js, "timeout": secs}))
    }

    fn eval(&mut self, js: &str) -> Value {
        self.cmd(json!({ "eval": js }))
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn node(key: &str, what: &str) -> String {
    format!("(function(){{var g=document.querySelector('.conlink-graph .node[data-key=\"{key}\"]'); return g && {what};}})()")
}

#[test]
fn live_page_follows_link_state() {
    require_root();
    let p = prefix();
    let cfg = format!(
        r#"
links:
  - {{service: {p}n, bridge: s1, ip: 10.214.0.1/24}}
  - {{container: {p}r, dev: eth0, bridge: s1, ip: 10.214.0.100/24}}
  - {{container: {p}r, dev: eth1, bridge: s2, ip: 10.214.1.1/24}}
  - {{container: {p}bad, dev: eth0, bridge: s2, ip: 10.214.1.2/24}}
  - {{container: {p}bad, dev: eth1, type: macvlan, outer-dev: {p}nope, mode: bridge}}
bridges:
  - {{bridge: s1, mode: linux}}
  - {{bridge: s2, mode: linux}}
"#
    );
    let mut c = Conlink::start(
        &p,
        &cfg,
        &["--scale", &format!("{p}n=2"), "--web-addr", "127.0.0.1:0"],
    );
    c.wait_for("link setup failed", 1, Duration::from_secs(30));
    c.wait_for(
        &format!("{p}r: 2 link(s) ready"),
        1,
        Duration::from_secs(30),
    );
    c.wait_for("live page on http://", 1, Duration::from_secs(10));
    let addr = c
        .log()
        .into_iter()
        .find(|l| l.contains("live page on http://"))
        .unwrap()
        .rsplit("http://")
        .next()
        .unwrap()
        .trim()
        .to_string();
    // Some traffic for the counters.
    assert!(common::ping(&format!("{p}n_1"), "10.214.0.100"));

    let art =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/control-artifacts");
    std::fs::create_dir_all(&art).unwrap();
    let profile = art.join(format!("profile-{p}"));
    let _ = std::fs::remove_dir_all(&profile);
    let mut page = Page::open(&format!("http://{addr}/"), &profile);

    // First status applied: links up, the failed container highlighted.
    page.wait("document.body.getAttribute('data-live-seq')", 20);
    let svc = format!("service:{p}n/eth0");
    let r1 = format!("container:{p}r/eth1");
    let bad = format!("container:{p}bad/eth1");
    for key in [&svc, &format!("container:{p}r/eth0"), &r1] {
        assert_eq!(
            page.eval(&node(key, "g.getAttribute('data-state')")),
            "up",
            "{key}"
        );
    }
    assert_eq!(
        page.eval(&node(&bad, "g.getAttribute('data-state')")),
        "failed"
    );
    assert_eq!(
        page.eval(&node(
            &format!("container:{p}bad/eth0"),
            "g.getAttribute('data-state')"
        )),
        "failed"
    );
    let live = page.eval("document.getElementById('live').textContent");
    assert!(live.as_str().unwrap().contains("pending/failed"), "{live}");
    // Hover: both replicas' counters in the panel.
    let info = page.eval(&node(
        &svc,
        "(g.dispatchEvent(new MouseEvent('mouseenter')), document.getElementById('info').textContent)",
    ));
    let info = info.as_str().unwrap();
    assert!(
        info.contains(&format!("{p}n_1: up")) && info.contains(&format!("{p}n_2: up")),
        "{info}"
    );
    assert!(info.contains("rx ") && info.contains("tx "), "{info}");

    // The lab changes; the page follows without a reload.
    let seq0 = page.eval("document.body.getAttribute('data-live-seq')");
    assert!(Command::new("ip")
        .args(["-n", &format!("{p}r"), "link", "set", "eth1", "down"])
        .status()
        .unwrap()
        .success());
    page.wait(&node(&r1, "g.getAttribute('data-state') === 'down'"), 10);
    assert_eq!(
        page.eval(&node(&r1, "g.getAttribute('data-history')")),
        "up down"
    );
    let edge = page.eval(&node(
        &r1,
        "document.querySelector('.conlink-graph .edge[data-from=\"' + g.id + '\"]').getAttribute('class')",
    ));
    assert!(edge.as_str().unwrap().contains("st-down"), "{edge}");
    assert_eq!(page.eval(&node(&svc, "g.getAttribute('data-state')")), "up");
    let seq1 = page.eval("document.body.getAttribute('data-live-seq')");
    assert_ne!(seq0, seq1);
    // The panel would hide part of the picture.
    page.eval(&node(
        &svc,
        "(g.dispatchEvent(new MouseEvent('mouseleave')), true)",
    ));
    let shot = art.join("live.png");
    page.cmd(json!({"shot": shot.to_str().unwrap(), "width": 1100, "height": 700}));
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot looks empty"
    );
    drop(page);
    let _ = std::fs::remove_dir_all(&profile);
    assert!(c.stop());
}
