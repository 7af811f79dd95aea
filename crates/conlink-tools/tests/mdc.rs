//! `mdc` as a process on a modes directory with five modes: hard deps, an
//! OR (the cheaper alternative wins), an order-only dep, `env` and `.env`
//! files, compose file name variants and `files/` trees.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn write(path: PathBuf, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// modes/
///   base/     env, compose.yaml, net/files/etc/net.conf, web/files/{index.html,base-only.txt}
///   storage/  (no deps)
///   db/       deps: base storage; compose.yaml
///   cache/    deps: base; .env; compose.yml; cache/files/cache.conf
///   metrics-2/ deps: base; .env
///   web/      deps: base, db|cache, +metrics-2; env (no final newline);
///             docker-compose.yaml; web/files/index.html
fn modes(top: &Path) {
    let m = top.join("modes");
    write(m.join("base/env"), "BASE_VAR=1\n# base comment\n");
    write(
        m.join("base/compose.yaml"),
        "services:\n  net:\n    image: conlink\n",
    );
    write(m.join("base/net/files/etc/net.conf"), "base net\n");
    write(m.join("base/web/files/index.html"), "base index\n");
    write(m.join("base/web/files/base-only.txt"), "from base\n");
    fs::create_dir_all(m.join("storage")).unwrap();
    write(m.join("db/deps"), "base storage\n");
    write(
        m.join("db/compose.yaml"),
        "services:\n  db:\n    image: db\n",
    );
    write(m.join("cache/deps"), "base # the only dep\n");
    write(m.join("cache/.env"), "CACHE_SIZE=64\n");
    write(
        m.join("cache/compose.yml"),
        "services:\n  cache:\n    image: cache\n",
    );
    write(
        m.join("cache/cache/files/cache.conf"),
        "size {{CACHE_SIZE}}\n",
    );
    write(m.join("metrics-2/deps"), "base\n");
    write(m.join("metrics-2/.env"), "METRICS=on\n");
    write(
        m.join("web/deps"),
        "# web needs a store\nbase, db|cache\n+metrics-2\n",
    );
    write(m.join("web/env"), "WEB_TITLE=hello");
    write(
        m.join("web/docker-compose.yaml"),
        "services:\n  web:\n    image: web\n",
    );
    write(m.join("web/web/files/index.html"), "web index\n");
    fs::create_dir_all(m.join(".git")).unwrap();
}

fn mdc(top: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(bin("mdc"));
    cmd.current_dir(top).args(args);
    for k in ["MODES_DIR", "ENV_FILE", "MDC_FILES_DIR", "DOCKER_COMPOSE"] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    finish(spawn(&mut cmd), Duration::from_secs(20))
}

/// Every file under `dir` as (relative path, contents), sorted.
fn tree(dir: &Path) -> Vec<(String, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.push((rel, fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn writes_env_compose_base_and_files() {
    let top = TempDir::new("mdc");
    modes(top.path());
    // Stale content from an earlier run must go.
    write(top.path().join(".files/old/stale.txt"), "stale");
    let out = mdc(top.path(), &["web,metrics-2"], &[]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr.contains("modes base cache metrics-2 web"),
        "{out:?}"
    );

    let abs = fs::canonicalize(top.path()).unwrap();
    let expected = format!(
        "# mdc web,metrics-2\n\
         MDC_MODE_base=enabled\n\
         BASE_VAR=1\n# base comment\n\
         MDC_MODE_cache=enabled\n\
         CACHE_SIZE=64\n\
         MDC_MODE_metrics_2=enabled\n\
         METRICS=on\n\
         MDC_MODE_web=enabled\n\
         WEB_TITLE=hello\n\
         COMPOSE_FILE=./.compose-empty.yaml:./modes/base/compose.yaml:./modes/cache/compose.yml:./modes/web/docker-compose.yaml\n\
         COMPOSE_DIR={}\n\
         COMPOSE_PROFILES=MODE_base,MODE_cache,MODE_metrics-2,MODE_web\n\
         MDC_MODE_DIRS=./modes/base,./modes/cache,./modes/metrics-2,./modes/web\n",
        abs.display()
    );
    assert_eq!(
        fs::read_to_string(top.path().join(".env")).unwrap(),
        expected
    );
    assert_eq!(
        tree(&top.path().join(".files")),
        vec![
            (
                "cache/cache.conf".to_string(),
                "size {{CACHE_SIZE}}\n".to_string()
            ),
            ("net/etc/net.conf".to_string(), "base net\n".to_string()),
            ("web/base-only.txt".to_string(), "from base\n".to_string()),
            ("web/index.html".to_string(), "web index\n".to_string()),
        ]
    );
    let empty = fs::read_to_string(top.path().join(".compose-empty.yaml")).unwrap();
    assert!(empty.contains("services: {}"), "{empty}");
    // The atomic write leaves no temporary file behind.
    let leftovers: Vec<_> = fs::read_dir(top.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn requested_mode_without_directory_is_an_empty_mode() {
    let top = TempDir::new("mdc-empty");
    modes(top.path());
    let out = mdc(top.path(), &["cache,ghost-1"], &[]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr.contains(
            "mdc: warning: mode \"ghost-1\" has no directory in ./modes; using it as an empty mode"
        ),
        "{out:?}"
    );
    let abs = fs::canonicalize(top.path()).unwrap();
    assert_eq!(
        fs::read_to_string(top.path().join(".env")).unwrap(),
        format!(
            "# mdc cache,ghost-1\n\
             MDC_MODE_base=enabled\n\
             BASE_VAR=1\n# base comment\n\
             MDC_MODE_cache=enabled\n\
             CACHE_SIZE=64\n\
             MDC_MODE_ghost_1=enabled\n\
             COMPOSE_FILE=./.compose-empty.yaml:./modes/base/compose.yaml:./modes/cache/compose.yml\n\
             COMPOSE_DIR={}\n\
             COMPOSE_PROFILES=MODE_base,MODE_cache,MODE_ghost-1\n\
             MDC_MODE_DIRS=./modes/base,./modes/cache\n",
            abs.display()
        )
    );
}

#[test]
fn explicit_db_changes_the_or_choice_and_order() {
    let top = TempDir::new("mdc-db");
    modes(top.path());
    let out = mdc(
        top.path(),
        &["db,web"],
        &[("ENV_FILE", "sub.env"), ("MDC_FILES_DIR", "out/files")],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let env = fs::read_to_string(top.path().join("sub.env")).unwrap();
    assert!(
        env.contains("COMPOSE_PROFILES=MODE_base,MODE_storage,MODE_db,MODE_web\n"),
        "{env}"
    );
    assert!(env.contains(
        "COMPOSE_FILE=./.compose-empty.yaml:./modes/base/compose.yaml:./modes/db/compose.yaml:./modes/web/docker-compose.yaml\n"
    ), "{env}");
    assert!(top.path().join("out/files/web/index.html").is_file());
    assert!(!top.path().join(".env").exists());
}

#[test]
fn execs_compose_with_the_env_file() {
    let top = TempDir::new("mdc-exec");
    modes(top.path());
    let compose = format!("{} compose", bin("echo").display());
    let out = mdc(
        top.path(),
        &["cache", "config", "--quiet"],
        &[("DOCKER_COMPOSE", &compose)],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, "compose --env-file .env config --quiet\n");
    let env = fs::read_to_string(top.path().join(".env")).unwrap();
    assert!(env.starts_with("# mdc cache config --quiet\n"), "{env}");
}

#[test]
fn errors_change_nothing() {
    let top = TempDir::new("mdc-err");
    modes(top.path());
    write(top.path().join(".files/keep.txt"), "keep");
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (&["db|nosuchmode"], &[], "\"nosuchmode\" does not exist"),
        (
            &["web"],
            &[("MDC_FILES_DIR", ".")],
            "refusing MDC_FILES_DIR",
        ),
        (
            &["web"],
            &[("MDC_FILES_DIR", "/")],
            "refusing MDC_FILES_DIR",
        ),
        (&["web"], &[("MODES_DIR", "./nowhere")], "nowhere"),
    ];
    for (args, env, want) in cases {
        let out = mdc(top.path(), args, env);
        assert_eq!(out.code(), 1, "{args:?} {env:?}: {out:?}");
        assert!(out.stderr.contains(want), "{args:?} {env:?}: {out:?}");
        assert!(!top.path().join(".env").exists());
        assert_eq!(
            fs::read_to_string(top.path().join(".files/keep.txt")).unwrap(),
            "keep"
        );
    }
    // A missing mode named (only) in a deps file is an error.
    write(top.path().join("modes/storage/deps"), "nosuchdep\n");
    let out = mdc(top.path(), &["db"], &[]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr.contains("\"nosuchdep\" does not exist"),
        "{out:?}"
    );
    assert!(!top.path().join(".env").exists());
    fs::remove_file(top.path().join("modes/storage/deps")).unwrap();
    // A cycle among modes.
    write(top.path().join("modes/base/deps"), "web\n");
    let out = mdc(top.path(), &["web"], &[]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr.contains("contains a cycle"), "{out:?}");
    assert!(!top.path().join(".env").exists());
    let out = mdc(top.path(), &[], &[]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("usage: mdc"), "{out:?}");
}

/// MDC_FILES_DIR is removed and rebuilt on every run: one that is, holds or
/// lies inside the modes directory (or a mode's tree, or the env file) used
/// to delete the modes tree (and exit 0) or half-build. Each is refused
/// before anything is written, and the modes tree is left whole.
#[test]
fn files_dir_overlapping_modes_or_env_file_is_refused() {
    let top = TempDir::new("mdc-files-overlap");
    modes(top.path());
    let before = tree(&top.path().join("modes"));
    let abs_modes = top.path().join("modes").display().to_string();
    let cases: [(&[(&str, &str)], &str); 7] = [
        (&[("MDC_FILES_DIR", "modes")], "modes directory"),
        (&[("MDC_FILES_DIR", "./modes/")], "modes directory"),
        (&[("MDC_FILES_DIR", &abs_modes)], "modes directory"),
        (
            &[("MDC_FILES_DIR", "modes/web/web/files/x")],
            "modes directory",
        ),
        (
            &[("MDC_FILES_DIR", "sub"), ("MODES_DIR", "./sub/modes")],
            "modes directory",
        ),
        (&[("MDC_FILES_DIR", ".env")], "env file"),
        (
            &[("MDC_FILES_DIR", "out"), ("ENV_FILE", "out/.env")],
            "env file",
        ),
    ];
    fs::create_dir_all(top.path().join("sub")).unwrap();
    std::os::unix::fs::symlink("../modes", top.path().join("sub/modes")).unwrap();
    for (env, want) in cases {
        let out = mdc(top.path(), &["web"], env);
        assert_eq!(out.code(), 1, "{env:?}: {out:?}");
        assert!(
            out.stderr.contains("refusing MDC_FILES_DIR"),
            "{env:?}: {out:?}"
        );
        assert!(out.stderr.contains(want), "{env:?}: {out:?}");
        assert_eq!(tree(&top.path().join("modes")), before, "{env:?}");
        assert!(!top.path().join(".env").exists(), "{env:?}");
    }
    // A files dir next to (not inside) the modes dir still works.
    let out = mdc(top.path(), &["web"], &[("MDC_FILES_DIR", "modes-files")]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(top.path().join("modes-files/web/index.html").is_file());
}
