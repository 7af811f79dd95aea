//! Hostile input (issue 12, defects 2 and 3): size and node limits for YAML
//! and JSON, and messages that stay short, one line each and free of raw
//! control characters whatever the input.

use std::collections::HashMap;
use std::path::PathBuf;

use conlink_config::{load, LoadOptions, ERRORS_SHOWN_MAX};

/// A file in a fresh temporary directory, removed on drop.
struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFile {
    fn new(name: &str, content: &[u8]) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "conlink-limits-{}-{}",
            std::process::id(),
            name.replace('.', "-")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        Self { dir, path }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn errors(opts: LoadOptions) -> Vec<String> {
    match load(&opts) {
        Ok(cfg) => panic!("accepted: {cfg:?}"),
        Err(e) => e.to_string().lines().map(str::to_string).collect(),
    }
}

fn opts(f: &TempFile) -> LoadOptions {
    LoadOptions {
        network_files: vec![f.path.clone()],
        ..LoadOptions::default()
    }
}

fn many_links_json(n: usize) -> String {
    let links: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"service": "s{i}", "bridge": "b"}}"#))
        .collect();
    format!(r#"{{"links": [{}]}}"#, links.join(","))
}

#[test]
fn json_node_count_is_bounded_with_a_clear_error() {
    // 40,000 links are 120,001 nodes: over a limit of 100,000
    let f = TempFile::new("many.json", many_links_json(40_000).as_bytes());
    let mut o = opts(&f);
    o.max_nodes = 100_000;
    let e = errors(o);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].ends_with(
            "/: more than 100000 JSON nodes (maps, lists and values); \
             raise it with --config-max-nodes or CONLINK_CONFIG_MAX_NODES"
        ),
        "{e:?}"
    );
    // the same file loads under a higher limit
    let mut o = opts(&f);
    o.max_nodes = 200_000;
    assert_eq!(load(&o).unwrap().services.len(), 40_000);
}

#[test]
fn yaml_node_count_is_bounded_with_a_clear_error() {
    let mut y = String::from("links:\n");
    for i in 0..40_000 {
        y.push_str(&format!("- {{service: s{i}, bridge: b}}\n"));
    }
    let f = TempFile::new("many.yaml", y.as_bytes());
    let mut o = opts(&f);
    o.max_nodes = 100_000;
    let e = errors(o);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains(
            "/: YAML document has more than 100000 nodes (maps, lists and values); \
             raise it with --config-max-nodes or CONLINK_CONFIG_MAX_NODES"
        ),
        "{e:?}"
    );
    assert!(!e[0].contains("budget"), "{e:?}");
}

#[test]
fn file_size_is_bounded_with_a_clear_error() {
    let f = TempFile::new("big.json", many_links_json(2_000).as_bytes());
    let mut o = opts(&f);
    o.max_file_bytes = 10_000;
    let e = errors(o);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].ends_with(
            "/: file is larger than the limit of 10000 bytes \
             (raise it with --config-max-bytes or CONLINK_CONFIG_MAX_BYTES)"
        ),
        "{e:?}"
    );
}

#[test]
fn yaml_alias_bombs_are_refused_in_plain_words() {
    let mut y = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..9 {
        let prev = if i == 0 {
            "a".to_string()
        } else {
            format!("l{}", i - 1)
        };
        y.push_str(&format!(
            "l{i}: &l{i} [{}]\n",
            vec![format!("*{prev}"); 10].join(", ")
        ));
    }
    let f = TempFile::new("bomb.yaml", y.as_bytes());
    let e = errors(opts(&f));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(!e[0].contains('{') && !e[0].contains("budget"), "{e:?}");
    assert!(e[0].contains("YAML"), "{e:?}");
}

#[test]
fn control_characters_are_rejected_and_never_printed_raw() {
    let f = TempFile::new(
        "ctl.yaml",
        b"links: [{service: a, bridge: \"s1\\nINFO forged line\\e[31m\"}]\n\
          commands: [{service: a, command: \"echo a\\necho b\"}]\n",
    );
    let o = opts(&f);
    let all = load(&o).unwrap_err().to_string();
    assert!(!all.contains('\x1b'), "{all:?}");
    let e: Vec<&str> = all.lines().collect();
    assert!(
        e.iter()
            .any(|l| l
                .ends_with("/links/0/bridge: control character \\n (U+000A) is not allowed here")),
        "{e:?}"
    );
    // the newline in the command is fine, so that is the only error left
    // (plus whatever names checks add for the bridge)
    assert!(!e.iter().any(|l| l.contains("/commands/")), "{e:?}");
}

#[test]
fn huge_values_are_not_echoed_whole() {
    let big = "x".repeat(1_000_000);
    let f = TempFile::new(
        "huge.yaml",
        format!("links: [{{service: a, bridge: s1, ip: \"{big}\", netem: \"{big}\"}}]\n")
            .as_bytes(),
    );
    let e = errors(opts(&f));
    assert!(!e.is_empty());
    for l in &e {
        assert!(l.len() < 600, "{} bytes: {}", l.len(), &l[..200]);
    }
    assert!(e.iter().any(|l| l.contains("more bytes)")), "{e:?}");
}

#[test]
fn thousands_of_errors_are_capped_with_a_count() {
    let links: Vec<String> = (0..2_000)
        .map(|i| format!("- {{service: s{i}, bridge: b, ip: nope}}"))
        .collect();
    let f = TempFile::new(
        "errs.yaml",
        format!("links:\n{}\n", links.join("\n")).as_bytes(),
    );
    let e = errors(opts(&f));
    assert_eq!(e.len(), ERRORS_SHOWN_MAX + 1, "{}", e.len());
    assert_eq!(
        e.last().unwrap(),
        &format!("… and {} more errors", 2_000 - ERRORS_SHOWN_MAX)
    );
}

#[test]
fn interpolation_errors_are_capped_too() {
    let big = "y".repeat(100_000);
    let f = TempFile::new(
        "env.yaml",
        format!("links: [{{service: a, bridge: \"${{NOPE:?{big}}}\"}}]\n").as_bytes(),
    );
    let o = LoadOptions {
        env: HashMap::new(),
        ..opts(&f)
    };
    let e = errors(o);
    assert_eq!(e.len(), 1);
    assert!(e[0].len() < 600, "{}", e[0].len());
}
