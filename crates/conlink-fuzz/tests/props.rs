//! The fuzz targets on stable, as bounded property tests: proptest mutates
//! the committed corpus (`fuzz/corpus/TARGET/`) with a fixed seed, so a run
//! is reproducible; a failure prints the shrunk input. Every target runs in
//! a few seconds (debug build); `CONLINK_FUZZ_CASES=N` runs N cases each
//! instead (a longer hunt without nightly).

use std::path::PathBuf;

use conlink_fuzz::TARGETS;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Seeds of `target`, sorted by name (so the run does not depend on the
/// directory order). Fails loudly on an empty or missing corpus.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!seeds.is_empty(), "corpus {} is empty", dir.display());
    seeds
}

/// Bytes a mutation likes to insert: the syntax of YAML, JSON, `${…}`,
/// deps files and the option parsers, plus hostile ones.
const DICT: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"\"",
    b"'",
    b"\n",
    b" ",
    b"-",
    b"|",
    b"+",
    b"#",
    b"$",
    b"${",
    b"${A:-",
    b":?",
    b"}}",
    b"%",
    b"/",
    b".",
    b"..",
    b"0",
    b"9",
    b"1e3",
    b"-1",
    b"65536",
    b"4294967296",
    b"\0",
    b"\x1b",
    b"\xff",
    b"null",
    b"true",
    b"&a",
    b"*a",
    b"<<",
    b"!!str",
    b"---",
    b"\t",
    b"via",
    b"dev",
    b"ms",
    b"%",
    b"mbit",
    b"off",
    b"/tcp",
    b"/udp",
    b"eth%d",
    b"DOCKER-ETH0",
    b"vxlan-1",
    b"lo",
];

/// One edit of a seed.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, usize),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Splice(usize, usize, usize),
    /// Replace the word (letters, digits, `_`, `-`) around a position with
    /// a dictionary entry: reaches values (names, numbers) that byte edits
    /// rarely turn into something meaningful.
    Word(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Flip(p, b)),
        (any::<usize>(), 0..DICT.len()).prop_map(|(p, d)| Edit::Insert(p, d)),
        (any::<usize>(), 1..16usize).prop_map(|(p, n)| Edit::Delete(p, n)),
        (any::<usize>(), 1..64usize).prop_map(|(p, n)| Edit::Duplicate(p, n)),
        (any::<usize>(), any::<usize>(), 1..64usize).prop_map(|(p, s, n)| Edit::Splice(p, s, n)),
        (any::<usize>(), 0..DICT.len()).prop_map(|(p, d)| Edit::Word(p, d)),
        (any::<usize>(), 0..DICT.len()).prop_map(|(p, d)| Edit::Word(p, d)),
    ]
}

fn apply(seed: &[u8], other: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for e in edits {
        let at = |p: usize, v: &Vec<u8>| if v.is_empty() { 0 } else { p % (v.len() + 1) };
        match *e {
            Edit::Flip(p, b) if !v.is_empty() => {
                let i = p % v.len();
                v[i] ^= b | 1;
            }
            Edit::Flip(..) => {}
            Edit::Insert(p, d) => {
                let i = at(p, &v);
                v.splice(i..i, DICT[d].iter().copied());
            }
            Edit::Delete(p, n) => {
                let i = at(p, &v);
                let end = (i + n).min(v.len());
                v.drain(i..end);
            }
            Edit::Duplicate(p, n) => {
                let i = at(p, &v);
                let end = (i + n).min(v.len());
                let part = v[i..end].to_vec();
                v.splice(i..i, part);
            }
            Edit::Splice(p, s, n) if !other.is_empty() => {
                let i = at(p, &v);
                let s = s % other.len();
                let end = (s + n).min(other.len());
                v.splice(i..i, other[s..end].iter().copied());
            }
            Edit::Splice(..) => {}
            Edit::Word(p, d) if !v.is_empty() => {
                let w = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
                let i = p % v.len();
                let mut a = i;
                while a > 0 && w(v[a - 1]) {
                    a -= 1;
                }
                let mut b = i;
                while b < v.len() && w(v[b]) {
                    b += 1;
                }
                v.splice(a..b, DICT[d].iter().copied());
            }
            Edit::Word(..) => {}
        }
    }
    v
}

/// Runs `target` on `cases` mutations of its corpus (plus each seed as it
/// is), from a fixed seed.
fn run(name: &str, cases: u32) {
    let (_, target) = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no target {name}"));
    let seeds = corpus(name);
    for s in &seeds {
        target(s);
    }
    let cases = std::env::var("CONLINK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    // A fixed seed per target: reproducible runs, different streams.
    let mut key = [0u8; 32];
    for (k, b) in key.iter_mut().zip(name.bytes().cycle()) {
        *k = b;
    }
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    let n = seeds.len();
    let strategy = (0..n, 0..n, proptest::collection::vec(edit(), 1..8));
    let result = runner.run(&strategy, |(a, b, edits)| {
        let input = apply(&seeds[a], &seeds[b], &edits);
        // A panic inside is a failure proptest shrinks and reports.
        target(&input);
        Ok(())
    });
    if let Err(e) = result {
        panic!("fuzz target {name}: {e}");
    }
}

#[test]
fn config_yaml() {
    run("config_yaml", 1000);
}

#[test]
fn config_json() {
    run("config_json", 1000);
}

#[test]
fn interpolate() {
    run("interpolate", 3000);
}

#[test]
fn route() {
    run("route", 2000);
}

#[test]
fn netem() {
    run("netem", 2000);
}

#[test]
fn ethtool() {
    run("ethtool", 2000);
}

#[test]
fn forward() {
    run("forward", 2000);
}

#[test]
fn deps_text() {
    run("deps_text", 2000);
}

#[test]
fn deps_json() {
    run("deps_json", 2000);
}

#[test]
fn docker_event() {
    run("docker_event", 2000);
}

/// Every target has a test above and a corpus (a new target cannot be
/// forgotten here).
#[test]
fn every_target_is_driven() {
    let src = include_str!("props.rs");
    for (name, _) in TARGETS {
        assert!(
            src.contains(&format!("run(\"{name}\", ")),
            "target {name} has no property test"
        );
        corpus(name);
    }
}
