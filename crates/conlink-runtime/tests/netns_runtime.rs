//! Privileged: the netns runtime creates, runs in, and removes namespaces.

use conlink_runtime::netns::{exec_in, netns_path, NetnsRuntime};

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it creates network namespaces): run scripts/test as root"
    );
}

#[tokio::test]
async fn prepares_replicas_runs_commands_and_cleans_up() {
    require_root();
    let tag = format!("crt{}", std::process::id());
    let svc = format!("{tag}s");
    let ctr = format!("{tag}c");
    let mut rt = NetnsRuntime::prepare(std::slice::from_ref(&ctr), &[(svc.clone(), 3)]).unwrap();
    let names: Vec<_> = rt
        .instances()
        .iter()
        .map(|c| (c.name.clone(), c.index))
        .collect();
    assert_eq!(
        names,
        vec![
            (ctr.clone(), 1),
            (format!("{svc}_1"), 1),
            (format!("{svc}_2"), 2),
            (format!("{svc}_3"), 3)
        ]
    );
    for c in rt.instances() {
        assert!(c.netns.exists(), "{}", c.netns.display());
    }
    // A command runs inside the namespace: its loopback is down and it has
    // no other interface, unlike the root namespace.
    let c = rt.instances()[1].clone();
    let code = exec_in(
        &c,
        &[
            "sh".into(),
            "-c".into(),
            "test $(grep -c : /proc/net/dev) = 1".into(),
        ],
    )
    .await
    .unwrap();
    assert_eq!(code, 0);
    let code = exec_in(&c, &["sh".into(), "-c".into(), "exit 3".into()])
        .await
        .unwrap();
    assert_eq!(code, 3);
    assert!(rt.shutdown().is_empty());
    for n in [ctr, format!("{svc}_1"), format!("{svc}_3")] {
        assert!(!netns_path(&n).exists(), "{n} left behind");
    }
}
