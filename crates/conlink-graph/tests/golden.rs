//! Golden tests: DOT and Mermaid output of every fixture must match the
//! committed files in tests/golden/. After an intended change, regenerate
//! with `UPDATE_GOLDEN=1 cargo test -p conlink-graph --test golden` and
//! review the diff.

mod common;

use conlink_graph::{render, Format};

#[test]
fn fixtures_round_trip_through_the_model() {
    // The fixtures must be exactly what `--show-config` prints, i.e. the
    // serialization of the model: otherwise the goldens test a shape the
    // CLI never produces.
    for (name, path) in common::fixtures() {
        let text = std::fs::read_to_string(&path).unwrap();
        let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cfg = common::load(&path);
        let back = serde_json::to_value(&cfg).unwrap();
        assert_eq!(
            back, raw,
            "{name}: fixture is not in canonical --show-config shape"
        );
    }
}

#[test]
fn dot_and_mermaid_match_goldens() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for (name, path) in common::fixtures() {
        let cfg = common::load(&path);
        for (fmt, ext) in [(Format::Dot, "dot"), (Format::Mermaid, "mmd")] {
            let got = render(&cfg, fmt);
            let golden = common::crate_dir().join(format!("tests/golden/{name}.{ext}"));
            if update {
                std::fs::write(&golden, &got).unwrap();
                continue;
            }
            match std::fs::read_to_string(&golden) {
                Ok(want) if want == got => {}
                Ok(_) => {
                    let out = common::artifact_dir().join(format!("{name}.{ext}"));
                    std::fs::write(&out, &got).unwrap();
                    failures.push(format!("{name}.{ext} differs (got: {})", out.display()));
                }
                Err(e) => failures.push(format!("{}: {e}", golden.display())),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn rendering_is_deterministic() {
    for (_, path) in common::fixtures() {
        let cfg = common::load(&path);
        for f in Format::ALL {
            assert_eq!(render(&cfg, f), render(&cfg, f));
        }
    }
}

#[test]
fn readme_picture_is_current() {
    // docs/graph-example.svg is the SVG of the all-types fixture.
    let cfg = common::load(&common::crate_dir().join("tests/fixtures/all-types.json"));
    let got = render(&cfg, Format::Svg);
    let path = common::crate_dir().join("../../docs/graph-example.svg");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        want == got,
        "docs/graph-example.svg is stale: run with UPDATE_GOLDEN=1"
    );
}
