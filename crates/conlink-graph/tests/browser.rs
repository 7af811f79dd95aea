//! The SVG and HTML pictures opened in headless Chromium (Debian package
//! `chromium`): every service, container, bridge and interface name is
//! rendered, no two node boxes overlap, every box is either nested in or
//! apart from every other, each label fits its box, and hovering a node in
//! the HTML page shows its properties. Geometry comes from the browser's own
//! layout: a script injected into the page measures it with
//! getBoundingClientRect and writes the result into the DOM, which
//! `chromium --dump-dom` prints. Screenshots land in target/graph-artifacts/.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use conlink_graph::{render, Format};
use serde_json::Value;

/// Measures the rendered page and stores the result, hex-encoded (so no
/// escaping can garble it), in a `data-result` attribute.
const PROBE: &str = r#"
(function () {
  function rect(el) { var r = el.getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}; }
  var res = {nodes: [], boxes: [], texts: [], hover: null};
  document.querySelectorAll(".conlink-graph .node").forEach(function (g) {
    var n = rect(g.querySelector("rect.nodebox"));
    n.id = g.id; n.cls = g.getAttribute("class");
    n.texts = Array.prototype.map.call(g.querySelectorAll("text"), function (t) { var r = rect(t); r.s = t.textContent; return r; });
    res.nodes.push(n);
  });
  document.querySelectorAll(".conlink-graph .box").forEach(function (g) {
    var b = rect(g.querySelector("rect"));
    var t = g.querySelector("text");
    b.cls = g.getAttribute("class"); b.title = rect(t); b.title.s = t.textContent;
    res.boxes.push(b);
  });
  document.querySelectorAll(".conlink-graph text").forEach(function (t) { res.texts.push(t.textContent); });
  var info = document.getElementById("info");
  // Hover an interface with netem if there is one (the richest tooltip).
  var inner = Array.prototype.slice.call(document.querySelectorAll(".conlink-graph .node.inner"));
  var target = inner.filter(function (g) { return g.querySelector("title").textContent.indexOf("netem: ") >= 0; })[0] || inner[0];
  if (info && target) {
    target.dispatchEvent(new MouseEvent("mouseenter"));
    res.hover = {id: target.id, text: info.textContent, display: getComputedStyle(info).display,
                 lit: document.querySelectorAll(".conlink-graph .edge.hl").length};
  }
  var bytes = new TextEncoder().encode(JSON.stringify(res)), hex = "";
  for (var i = 0; i < bytes.length; i++) hex += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
  var root = document.documentElement;
  var el = document.createElementNS(root.namespaceURI, root.namespaceURI.indexOf("svg") >= 0 ? "metadata" : "div");
  el.setAttribute("id", "probe-result");
  el.setAttribute("data-result", hex);
  root.appendChild(el);
})();
"#;

fn chromium() -> String {
    let bin = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    match Command::new(&bin).arg("--version").output() {
        Ok(o) if o.status.success() => bin,
        _ => panic!(
            "cannot run {bin:?}: install Chromium (Debian package `chromium`) or set CHROMIUM"
        ),
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Runs headless Chromium on `file` with `extra` arguments, a fresh profile
/// and a time limit; returns stdout.
fn run_chromium(file: &Path, extra: &[String]) -> String {
    let profile: PathBuf = common::artifact_dir().join(format!(
        "profile-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let out = Command::new("timeout")
        .args(["--kill-after=5", "120", &chromium()])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("run chromium under timeout");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// Width and height attributes of the rendered SVG.
fn svg_size(svg: &str) -> (u32, u32) {
    let attr = |name: &str| -> u32 {
        let pat = format!(" {name}=\"");
        let i = svg.find(&pat).unwrap() + pat.len();
        svg[i..].split('"').next().unwrap().parse().unwrap()
    };
    (attr("width"), attr("height"))
}

#[derive(Clone, Copy, Debug)]
struct R {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

fn r(v: &Value) -> R {
    let f = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("no {k} in {v}"));
    R {
        x: f("x"),
        y: f("y"),
        w: f("w"),
        h: f("h"),
    }
}

const EPS: f64 = 0.01;

fn overlap(a: R, b: R) -> bool {
    a.x + a.w > b.x + EPS && b.x + b.w > a.x + EPS && a.y + a.h > b.y + EPS && b.y + b.h > a.y + EPS
}

fn contains(outer: R, inner: R) -> bool {
    inner.x >= outer.x - EPS
        && inner.y >= outer.y - EPS
        && inner.x + inner.w <= outer.x + outer.w + EPS
        && inner.y + inner.h <= outer.y + outer.h + EPS
}

/// Opens `name` rendered as `format`, checks the geometry, takes a screenshot.
fn check(name: &str, format: Format) -> Value {
    let fixture = common::crate_dir().join(format!("tests/fixtures/{name}.json"));
    let golden = common::crate_dir().join(format!("tests/golden/{name}.json"));
    let cfg = common::load(if fixture.exists() { &fixture } else { &golden });
    let doc = render(&cfg, format);
    let (w, h) = svg_size(&doc);
    let dir = common::artifact_dir();
    let ext = format.as_str();
    // The picture as shipped (screenshot) and with the probe (measurement).
    let plain = dir.join(format!("{name}.{ext}"));
    std::fs::write(&plain, &doc).unwrap();
    let probed = match format {
        Format::Svg => doc.replace(
            "</svg>",
            &format!("<script><![CDATA[{PROBE}]]></script></svg>"),
        ),
        _ => doc.replace("</body>", &format!("<script>{PROBE}</script></body>")),
    };
    assert_ne!(probed, doc, "probe not injected");
    let probe_file = dir.join(format!("{name}.probe.{ext}"));
    std::fs::write(&probe_file, &probed).unwrap();

    let dump = run_chromium(&probe_file, &["--dump-dom".into()]);
    let start = dump.find("data-result=\"").unwrap_or_else(|| {
        panic!("{name}.{ext}: probe did not run (page broken?); dump:\n{dump:.2000}")
    }) + "data-result=\"".len();
    let hex = dump[start..].split('"').next().unwrap();
    let res: Value = serde_json::from_slice(&hex_decode(hex)).expect("probe JSON");

    // Every name rendered as its own text element.
    let texts: Vec<&str> = res["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let expected = common::expected_texts(&cfg);
    assert!(
        expected.len() >= 3,
        "{name}: too few names to check: {expected:?}"
    );
    for want in &expected {
        assert!(
            texts.contains(&want.as_str()),
            "{name}.{ext}: no text {want:?} rendered"
        );
    }

    let nodes = res["nodes"].as_array().unwrap();
    let boxes = res["boxes"].as_array().unwrap();
    assert_eq!(
        nodes.len(),
        conlink_graph::topo::Topology::build(&cfg).nodes.len()
    );
    // No two node boxes overlap.
    for (i, a) in nodes.iter().enumerate() {
        let ra = r(a);
        assert!(ra.w > 10.0 && ra.h > 10.0, "{name}: degenerate node {a}");
        for b in &nodes[i + 1..] {
            assert!(
                !overlap(ra, r(b)),
                "{name}.{ext}: nodes overlap: {} {} / {} {}",
                a["id"],
                a["texts"][0]["s"],
                b["id"],
                b["texts"][0]["s"]
            );
        }
        // Labels fit inside their node and are drawn at a readable size
        // (10 px text has a glyph box about 12 px high) even at 50 containers.
        for t in a["texts"].as_array().unwrap() {
            assert!(
                r(t).h >= 11.0,
                "{name}.{ext}: text {} too small: {t}",
                t["s"]
            );
            assert!(
                contains(ra, r(t)),
                "{name}.{ext}: text {} sticks out of its node box",
                t["s"]
            );
        }
        // Each node sits wholly inside some box, and never straddles one.
        assert!(
            boxes.iter().any(|b| contains(r(b), ra)),
            "{name}.{ext}: node {} outside every box",
            a["id"]
        );
        for b in boxes {
            assert!(
                !overlap(ra, r(b)) || contains(r(b), ra),
                "{name}.{ext}: node {} straddles box {}",
                a["id"],
                b["title"]["s"]
            );
        }
    }
    // Boxes are nested or apart, and titles fit.
    for (i, a) in boxes.iter().enumerate() {
        let ra = r(a);
        assert!(
            contains(ra, r(&a["title"])),
            "{name}.{ext}: title {} sticks out",
            a["title"]["s"]
        );
        for b in &boxes[i + 1..] {
            let rb = r(b);
            assert!(
                !overlap(ra, rb) || contains(ra, rb) || contains(rb, ra),
                "{name}.{ext}: boxes {} and {} overlap",
                a["title"]["s"],
                b["title"]["s"]
            );
        }
    }

    let shot = dir.join(format!("{name}-{ext}.png"));
    let _ = std::fs::remove_file(&shot);
    let pad = if format == Format::Html { 16 } else { 0 };
    run_chromium(
        &plain,
        &[
            format!("--screenshot={}", shot.display()),
            format!("--window-size={},{}", w + pad, h + pad),
        ],
    );
    let png =
        std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot {}: {e}", shot.display()));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{name}: screenshot looks empty"
    );
    res
}

#[test]
fn largest_fixture_svg_in_chromium() {
    check("large50", Format::Svg);
}

#[test]
fn largest_fixture_html_in_chromium_with_hover() {
    let res = check("large50", Format::Html);
    let hover = &res["hover"];
    assert_eq!(hover["display"], "block", "hover panel not shown: {hover}");
    let text = hover["text"].as_str().unwrap();
    for key in [
        "dev: ",
        "ip: 10.",
        "mac: c2:",
        "mtu: 1500",
        "netem: delay 20ms",
        "bridge: net",
    ] {
        assert!(text.contains(key), "hover panel lacks {key:?}: {text}");
    }
    assert!(
        hover["lit"].as_u64().unwrap() >= 1,
        "no edge highlighted on hover"
    );
}

#[test]
fn all_link_types_and_hostile_names_in_chromium() {
    let res = check("all-types", Format::Html);
    // The hovered node is client's eth0, the one with netem.
    let text = res["hover"]["text"].as_str().unwrap();
    assert!(
        text.contains("netem: delay 40ms 5ms loss 1%") && text.contains("mtu: 9000"),
        "{text}"
    );
    check("all-types", Format::Svg);
    check("weird-names", Format::Svg);
    check("weird-names", Format::Html);
    check("basic", Format::Svg);
}

#[test]
fn every_example_svg_in_chromium() {
    // The example projects' `--show-config` output (tests/golden/example-*).
    let examples: Vec<String> = common::fixtures()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|n| n.starts_with("example-"))
        .collect();
    assert!(!examples.is_empty(), "no tests/golden/example-*.json");
    for name in examples {
        check(&name, Format::Svg);
    }
}
