//! The root `Dockerfile`: `docker build .` (classic builder) with the local
//! base images scripts/build-images makes (`--build-arg BUILD_IMAGE=...
//! --build-arg BASE_IMAGE=...`) gives the default image: conlink runs
//! `/app/build/conlink.js --show-config` on an example, the toolbox is
//! there, and the image stays under 200 MB.
//!
//! The build context is a copy of the repository's files (`git ls-files`,
//! untracked ones included) plus `vendor/` made by `cargo vendor` on the
//! host, so the build needs no network inside `docker build`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Removes an image tag (and its untagged parents) on drop.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn root() -> PathBuf {
    fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap()
}

fn require_image(name: &str) {
    let ok = Command::new("docker")
        .args(["image", "inspect", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "image {name} missing: run scripts/build-images first");
}

/// Copies the repository's files (tracked and untracked, not ignored) into
/// `dst`, keeping modes.
fn copy_sources(src: &Path, dst: &Path) {
    let out = Command::new("git")
        .arg("-C")
        .arg(src)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .expect("git ls-files (the test copies the repository's files)");
    assert!(out.status.success(), "git ls-files: {out:?}");
    for rel in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).unwrap());
        let from = src.join(rel);
        let Ok(meta) = fs::symlink_metadata(&from) else {
            continue; // deleted in the worktree, not yet committed
        };
        let to = dst.join(rel);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from).unwrap(), &to).unwrap();
        } else if meta.is_file() {
            fs::copy(&from, &to).unwrap();
        }
    }
}

#[test]
fn root_dockerfile_builds_the_default_image() {
    require_root();
    let builder =
        std::env::var("CONLINK_BUILDER_IMAGE").unwrap_or_else(|_| "conlink-builder:local".into());
    let base =
        std::env::var("CONLINK_BASE_IMAGE").unwrap_or_else(|_| "debian:bookworm-slim".into());
    require_image(&builder);
    require_image(&base);
    let ctx = TempDir::new("dockerfile");
    copy_sources(&root(), ctx.path());
    assert!(
        ctx.path().join("Dockerfile").is_file(),
        "no root Dockerfile"
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = finish(
        spawn(
            Command::new(cargo)
                .current_dir(ctx.path())
                .args(["vendor", "--locked", "--quiet", "vendor"]),
        ),
        Duration::from_secs(300),
    );
    assert_eq!(out.code(), 0, "cargo vendor: {out:?}");
    let tag = format!("conlink-dockerfile-test:{}", unique());
    let image = Image(tag.clone());
    let build_tag = format!("conlink-dockerfile-test-build:{}", unique());
    let _build_stage = Image(build_tag.clone());
    let build = |extra: &[&str]| {
        finish(
            spawn(
                Command::new("docker")
                    .env("DOCKER_BUILDKIT", "0")
                    .args(["build", "--force-rm"])
                    .args(["--build-arg", &format!("BUILD_IMAGE={builder}")])
                    .args(["--build-arg", &format!("BASE_IMAGE={base}")])
                    .args(extra)
                    .arg(ctx.path()),
            ),
            Duration::from_secs(2700),
        )
    };
    let started = std::time::Instant::now();
    let out = build(&["-t", &tag]);
    let took = started.elapsed();
    assert_eq!(
        out.code(),
        0,
        "docker build .: {}\n{}",
        out.stdout,
        out.stderr
    );
    eprintln!("docker build . took {:.0} s", took.as_secs_f64());
    // Name the build stage too (from the cache: instant) so that drop
    // removes its layers instead of leaving them dangling.
    let out = build(&["--target", "build", "-t", &build_tag]);
    assert_eq!(out.code(), 0, "docker build --target build: {out:?}");

    // conlink runs under the old entry path, on an example.
    let examples = format!("{}:/ex:ro", root().join("examples").display());
    let out = finish(
        spawn(Command::new("docker").args([
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &examples,
            "-e",
            "NODE_NAME_1=first",
            &tag,
            "/app/build/conlink.js",
            "--show-config",
            "--network-file",
            "/ex/test3-network.yaml",
        ])),
        Duration::from_secs(60),
    );
    assert_eq!(out.code(), 0, "--show-config: {out:?}");
    let cfg: serde_json::Value = serde_json::from_str(&out.stdout).expect("config JSON");
    assert_eq!(
        cfg["containers"]["first"]["links"][0]["ip"], "10.0.1.1/24",
        "{}",
        out.stdout
    );
    assert_eq!(cfg["containers"]["ZZZ_node_2"]["links"][0]["bridge"], "s1");

    // The toolbox, each tool run once.
    let script = "set -e; iptables -V; ip6tables -V; brctl --version 2>&1 || brctl 2>&1 | head -1; \
                  curl --version | head -1; jq --version; nc -h 2>&1 | head -1; socat -V | head -2; \
                  tcpdump --version 2>&1 | head -1; ip -V; tc -V; bridge -V; ethtool --version; \
                  nft --version; ping -V; ovs-vsctl --version | head -1; \
                  /utils/conlink-start.sh --help | head -1; /utils/wait.sh -h | head -1; \
                  test \"$(readlink /app/build/conlink.js)\" = /usr/local/bin/conlink";
    let out = finish(
        spawn(Command::new("docker").args([
            "run",
            "--rm",
            "--network",
            "none",
            &tag,
            "sh",
            "-c",
            script,
        ])),
        Duration::from_secs(60),
    );
    assert_eq!(out.code(), 0, "toolbox: {out:?}");
    let text = format!("{}{}", out.stdout, out.stderr);
    for want in [
        "iptables v1.8.9 (nf_tables)",
        "ip6tables v1.8.9 (nf_tables)",
        "bridge-utils",
        "curl ",
        "jq-",
        "OpenBSD netcat",
        "socat version",
        "tcpdump version",
        "iproute2",
        "ethtool version",
        "nftables v",
        "ping from iputils",
        "ovs-vsctl (Open vSwitch)",
        "usage: conlink-start",
        "usage: wait",
    ] {
        assert!(text.contains(want), "no {want:?} in {text}");
    }
    let size: u64 = {
        let out = finish(
            spawn(Command::new("docker").args(["image", "inspect", "-f", "{{.Size}}", &tag])),
            Duration::from_secs(30),
        );
        out.stdout.trim().parse().unwrap()
    };
    eprintln!("image size {:.1} MB", size as f64 / 1e6);
    assert!(size < 200_000_000, "image is {size} bytes (limit 200 MB)");

    // The examples' `build: {context: ../..}` override builds the same image
    // through compose (classic builder: no buildx here); the layers are the
    // ones just built, so this is quick.
    let compose_tag = format!("conlink-dockerfile-test-compose:{}", unique());
    let _compose_image = Image(compose_tag.clone());
    let started = std::time::Instant::now();
    let out = finish(
        spawn(
            Command::new("docker")
                .current_dir(ctx.path())
                .env("DOCKER_BUILDKIT", "0")
                .env("CONLINK_IMAGE", &compose_tag)
                .env("CONLINK_BUILD_IMAGE", &builder)
                .env("CONLINK_BASE_IMAGE", &base)
                .args(["compose", "-p", &format!("cltbuild{}", unique())])
                .args([
                    "-f",
                    "examples/router/compose.yaml",
                    "-f",
                    "examples/compose.build.yaml",
                ])
                .args(["build", "network"]),
        ),
        Duration::from_secs(2700),
    );
    assert_eq!(out.code(), 0, "compose build: {out:?}");
    eprintln!(
        "compose build (cached) took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let out = finish(
        spawn(Command::new("docker").args([
            "run",
            "--rm",
            "--network",
            "none",
            &compose_tag,
            "/app/build/conlink.js",
            "--version",
        ])),
        Duration::from_secs(60),
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.starts_with("conlink "), "{out:?}");
    drop(image);
}
