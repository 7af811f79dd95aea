//! The real kernel layer's container handles (needs root): a handle the
//! netns runtime opened at start-up is used only while its path still
//! names the same namespace, and one never used is let go when its
//! container dies (CI once saw a namespace deleted and made again before
//! its first setup wired into the deleted one).

use std::path::{Path, PathBuf};
use std::process::Command;

use conlink_core::kernel::{Kernel, Ns};
use conlink_core::net::{NetKernel, Placement};
use conlink_net::{Handle, Netns};

fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap();
    assert_eq!(euid, "0", "these tests need root (CI runs them as root)");
}

/// Namespaces this test made, deleted by exact name at the end.
struct Owned(Vec<String>);

impl Drop for Owned {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Netns::delete_named(n);
        }
    }
}

fn names(tag: &str) -> (String, String) {
    let p = format!("nk{}{tag}", std::process::id() % 100_000);
    (format!("{p}own"), format!("{p}c"))
}

fn lo_up(ns: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", ns, "-o", "link", "show", "lo"])
        .output()
        .expect("ip");
    assert!(out.status.success(), "ip -n {ns} link show lo failed");
    String::from_utf8_lossy(&out.stdout).contains(",UP")
}

/// Number of this process's descriptors on the namespace `id` (device and
/// inode of its nsfs file).
fn fds_on(id: (u64, u64)) -> usize {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::metadata(e.ok()?.path()).ok())
        .filter(|m| (m.dev(), m.ino()) == id)
        .count()
}

fn kernel_with_startup_handle(own: &str, ctr: &str) -> (NetKernel, PathBuf, (u64, u64)) {
    use std::os::unix::fs::MetadataExt;
    let own_ns = Netns::create_named(own).unwrap();
    Netns::create_named(ctr).unwrap();
    let path = PathBuf::from(format!("/run/netns/{ctr}"));
    let h = Handle::open(&Netns::open(&path).unwrap()).unwrap();
    let m = std::fs::metadata(&path).unwrap();
    let id = (m.dev(), m.ino());
    let k = NetKernel::open(&own_ns, Placement::default())
        .unwrap()
        .with_ctr_handles([(path.clone(), h)]);
    (k, path, id)
}

fn remake(ctr: &str) {
    Netns::delete_named(ctr).unwrap();
    Netns::create_named(ctr).unwrap();
}

#[test]
fn a_startup_handle_is_not_used_for_a_namespace_made_again() {
    require_root();
    let (own, ctr) = names("a");
    let _g = Owned(vec![own.clone(), ctr.clone()]);
    let (k, path, _) = kernel_with_startup_handle(&own, &ctr);
    remake(&ctr);
    assert!(!lo_up(&ctr));
    k.set_up(Ns::Ctr(Path::new(&path)), "lo", true).unwrap();
    assert!(lo_up(&ctr), "the operation went to the deleted namespace");
}

#[test]
fn a_startup_handle_is_used_while_its_namespace_is_there() {
    require_root();
    let (own, ctr) = names("b");
    let _g = Owned(vec![own.clone(), ctr.clone()]);
    let (k, path, id) = kernel_with_startup_handle(&own, &ctr);
    let held = fds_on(id);
    assert!(held > 0, "the start-up handle holds its namespace");
    k.set_up(Ns::Ctr(Path::new(&path)), "lo", true).unwrap();
    assert!(lo_up(&ctr));
    // Used, it is the container's handle now: no second one was opened.
    assert_eq!(fds_on(id), held);
}

#[test]
fn an_unused_startup_handle_is_dropped_when_its_container_dies() {
    require_root();
    let (own, ctr) = names("c");
    let _g = Owned(vec![own.clone(), ctr.clone()]);
    let (k, path, id) = kernel_with_startup_handle(&own, &ctr);
    Netns::delete_named(&ctr).unwrap();
    assert!(fds_on(id) > 0, "the handle keeps the deleted namespace");
    k.forget_unused_ns(&path);
    assert_eq!(fds_on(id), 0, "the deleted namespace is still held");
}
