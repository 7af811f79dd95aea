//! Open vSwitch: where OVS is missing (this machine), every call must fail
//! with a clear "open vswitch unavailable" error; where it answers, a
//! bridge and a port can be added and removed.

use conlink_net::{ovs, Error};

#[test]
fn missing_ovs_is_a_clear_error() {
    // A program name that cannot exist stands in for "not installed".
    // SAFETY (edition 2021 set_var): this test binary has this one test.
    std::env::set_var("CONLINK_OVS_VSCTL", "/nonexistent/ovs-vsctl");
    let e = ovs::add_bridge("cltovs0").unwrap_err();
    assert!(matches!(e, Error::OvsUnavailable(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("open vswitch unavailable: cannot run"),
        "{e}"
    );
    assert!(!ovs::available());
    assert!(matches!(
        ovs::bridge_exists("cltovs0"),
        Err(Error::OvsUnavailable(_))
    ));
    assert!(matches!(
        ovs::add_bridge_userspace("cltovs0"),
        Err(Error::OvsUnavailable(_))
    ));
    std::env::remove_var("CONLINK_OVS_VSCTL");

    // The real tool: either absent/not running (clear error) or working.
    match ovs::add_bridge("cltovs0") {
        Err(Error::OvsUnavailable(msg)) => {
            assert!(!ovs::available(), "{msg}");
        }
        Err(e) => panic!("unexpected ovs error: {e}"),
        Ok(()) => {
            ovs::del_bridge("cltovs0").unwrap();
        }
    }
}
