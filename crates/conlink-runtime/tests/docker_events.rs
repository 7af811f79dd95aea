//! The docker runtime against the real engine (`/var/run/docker.sock`):
//! bollard's event stream delivers a start and a die of a container this
//! test runs, with the inspect data conlink needs. Needs docker and the
//! `conlink-test-busybox:latest` image (`scripts/build-images`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use conlink_runtime::docker::DockerRuntime;
use conlink_runtime::Event;
use tokio::sync::mpsc;

const SOCK: &str = "/var/run/docker.sock";
const IMAGE: &str = "conlink-test-busybox:latest";

/// Removes the container by its exact name when the test ends.
struct Ctr(String);

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(out.status.success(), "docker {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn next_for(rx: &mut mpsc::Receiver<Event>, id: &str) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no event for {id} within 30 s"))
            .expect("watch ended");
        let of = match &ev {
            Event::Start(c) => c.id == id,
            Event::Die(d) => d == id,
            Event::Synced => false,
        };
        if of {
            return ev;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_engine_start_and_die_come_through_bollard_events() {
    assert!(
        Path::new(SOCK).exists(),
        "{SOCK} missing: this test needs the docker engine"
    );
    let name = format!("conlink-evt-{}", std::process::id());
    let _guard = Ctr(name.clone());
    let rt = DockerRuntime::connect(Path::new(SOCK))
        .await
        .expect("connect to docker");
    let (tx, mut rx) = mpsc::channel(256);
    let watcher = tokio::spawn(async move { rt.watch(tx).await });
    // Let the first listing and subscription happen; a start before the
    // subscription is replayed (`since`) or listed, either way it arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--label",
        "com.docker.compose.service=evt",
        "--label",
        "com.docker.compose.container-number=4",
        IMAGE,
        "sleep",
        "300",
    ]);
    match next_for(&mut rx, &id).await {
        Event::Start(c) => {
            assert_eq!(c.name, name);
            assert_eq!(c.service.as_deref(), Some("evt"));
            assert_eq!(c.index, 4);
            assert!(c.netns.starts_with("/proc"), "{}", c.netns.display());
        }
        other => panic!("expected a start, got {other:?}"),
    }
    docker(&["kill", &name]);
    assert_eq!(next_for(&mut rx, &id).await, Event::Die(id.clone()));
    watcher.abort();
}
