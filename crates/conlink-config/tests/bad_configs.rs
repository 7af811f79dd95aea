//! Every file in `tests/bad/` must be rejected with exactly the errors in
//! the `.err` file next to it (one per line, `FILE: /pointer: message`).
//! Files named `compose-*` are loaded as compose files, the rest as network
//! files. `UPDATE_EXPECT=1 cargo test -p conlink-config --test bad_configs`
//! rewrites the `.err` files (review the diff!).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use conlink_config::{load, LoadOptions};

fn env() -> HashMap<String, String> {
    HashMap::from([
        ("SET".to_string(), "10.0.0.1/24".to_string()),
        ("EMPTY".to_string(), String::new()),
    ])
}

fn run(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let mut opts = LoadOptions {
        env: env(),
        ..LoadOptions::default()
    };
    if name.starts_with("compose-") {
        opts.compose_files.push(path.to_path_buf());
    } else {
        opts.network_files.push(path.to_path_buf());
    }
    match load(&opts) {
        Ok(cfg) => panic!("{name}: accepted, but it must be rejected: {cfg:?}"),
        Err(e) => {
            assert!(!e.0.is_empty(), "{name}: error list is empty");
            e.to_string()
        }
    }
}

#[test]
fn bad_configs_are_rejected_with_the_expected_errors() {
    let dir = PathBuf::from("tests/bad");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "json"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 40, "only {} bad configs", inputs.len());
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    for input in &inputs {
        let got = run(input);
        let expect_path = input.with_extension("err");
        if update {
            std::fs::write(&expect_path, format!("{got}\n")).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expect_path)
            .unwrap_or_else(|_| panic!("missing {}", expect_path.display()));
        if got.trim_end() != want.trim_end() {
            failures.push(format!(
                "{}:\n  want: {}\n  got:  {}",
                input.display(),
                want.trim_end().replace('\n', "\n        "),
                got.replace('\n', "\n        ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unreadable_file_is_named() {
    let opts = LoadOptions {
        network_files: vec!["tests/bad/does-not-exist.yaml".into()],
        ..LoadOptions::default()
    };
    let e = load(&opts).unwrap_err().to_string();
    assert_eq!(
        e,
        "tests/bad/does-not-exist.yaml: /: cannot read file: No such file or directory (os error 2)"
    );
}

#[test]
fn errors_across_files_name_the_file_that_set_the_value() {
    let dir = std::env::temp_dir().join(format!("conlink-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = dir.join("a.yaml");
    let b = dir.join("b.json");
    std::fs::write(&a, "links: [{service: n, bridge: s1, ip: 10.0.0.1/24}]\n").unwrap();
    std::fs::write(
        &b,
        r#"{"links": [{"service": "n", "mtu": 10, "route": "bogus"}]}"#,
    )
    .unwrap();
    let opts = LoadOptions {
        network_files: vec![a.clone(), b.clone()],
        ..LoadOptions::default()
    };
    let e = load(&opts).unwrap_err();
    let shown: Vec<String> = e.0.iter().map(ToString::to_string).collect();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        shown,
        vec![
            format!("{}: /links/0/mtu: mtu 10 out of range 68..=65535", b.display()),
            format!(
                "{}: /links/0/route: route \"bogus\": \"bogus\" is not a destination (default, PREFIX or ADDRESS)",
                b.display()
            ),
        ]
    );
}
