//! `Netns::run` (real kernel, root): the closure runs inside the namespace
//! on the calling thread, which is back in its own namespace after every
//! call (also after a panic, also after nested calls), so no namespace it
//! visited is kept alive by it.

mod common;

use common::{require_root, Ns};
use conlink_net::Netns;

/// The namespace inode of the calling thread.
fn here() -> u64 {
    Netns::current().unwrap().inode().unwrap()
}

#[test]
fn run_enters_the_namespace_and_the_thread_goes_home() {
    require_root();
    let a = Ns::new("runa");
    let ns = Netns::named(&a.name).unwrap();
    let want = ns.inode().unwrap();
    let home = Netns::open("/proc/self/ns/net").unwrap().inode().unwrap();
    assert_ne!(want, home);
    for _ in 0..50 {
        assert_eq!(ns.run(here).unwrap(), want);
    }
    // The calling thread is home again after each call.
    assert_eq!(here(), home);
}

#[test]
fn nested_run_returns_to_the_outer_namespace() {
    require_root();
    let (a, b) = (Ns::new("nesta"), Ns::new("nestb"));
    let (na, nb) = (
        Netns::named(&a.name).unwrap(),
        Netns::named(&b.name).unwrap(),
    );
    let (ia, ib) = (na.inode().unwrap(), nb.inode().unwrap());
    let (before, inner, after) = na
        .run(|| {
            let before = here();
            let inner = nb.run(here).unwrap();
            (before, inner, here())
        })
        .unwrap();
    assert_eq!((before, inner, after), (ia, ib, ia));
}

#[test]
fn calls_from_many_threads_each_land_in_their_namespace() {
    require_root();
    let spaces: Vec<Ns> = (0..4).map(|i| Ns::new(&format!("many{i}"))).collect();
    let opened: Vec<(Netns, u64)> = spaces
        .iter()
        .map(|s| {
            let n = Netns::named(&s.name).unwrap();
            let i = n.inode().unwrap();
            (n, i)
        })
        .collect();
    std::thread::scope(|sc| {
        for (n, want) in &opened {
            sc.spawn(move || {
                let home = here();
                for _ in 0..100 {
                    assert_eq!(n.run(here).unwrap(), *want);
                    assert_eq!(here(), home);
                }
            });
        }
    });
}

#[test]
fn a_panic_in_run_reaches_the_caller_who_is_back_home() {
    require_root();
    let a = Ns::new("panic");
    let ns = Netns::named(&a.name).unwrap();
    let home = here();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ns.run(|| -> () { panic!("boom") }).unwrap();
    }));
    let msg = r.expect_err("the panic reaches the caller");
    assert_eq!(msg.downcast_ref::<&str>(), Some(&"boom"));
    assert_eq!(here(), home);
    // Nested, the panic passes both levels and both are left.
    let b = Ns::new("panic2");
    let nb = Netns::named(&b.name).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ns.run(|| nb.run(|| -> () { panic!("deep") }).unwrap())
            .unwrap();
    }));
    assert!(r.is_err());
    assert_eq!(here(), home);
    assert_eq!(ns.run(here).unwrap(), ns.inode().unwrap());
}

#[test]
fn a_visited_namespace_dies_with_its_last_descriptor() {
    require_root();
    // An anonymous namespace lives while a descriptor or a thread holds
    // it; the kernel destroys it after, and with it the veth end inside,
    // which takes the outer end along.
    let a = Ns::new("host");
    let anon = Netns::create_anonymous("anon").unwrap();
    let peer_h = conlink_net::Handle::open(&anon).unwrap();
    let outer = format!("vr{}", common::uniq());
    a.h.create_veth(
        &conlink_net::LinkAttrs::new(&outer),
        &conlink_net::LinkAttrs::new("eth0"),
        &peer_h,
    )
    .unwrap();
    anon.run(here).unwrap();
    drop(peer_h);
    drop(anon);
    // Destroying a namespace is asynchronous (cleanup_net): bounded wait.
    let t0 = std::time::Instant::now();
    while a.h.link(&outer).unwrap().is_some() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "{outer} still there: something keeps the namespace alive"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
