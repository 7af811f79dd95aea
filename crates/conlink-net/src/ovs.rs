//! Open vSwitch: a supervisor that finds the OVS answering in conlink's
//! namespace or starts conlink's own `ovsdb-server` + `ovs-vswitchd` there,
//! and the bridge/port operations on it through `ovs-vsctl`.
//!
//! Every child process gets an argument vector, never a shell, and every
//! `ovs-vsctl` call names the database it talks to (`--db=unix:SOCK`), so
//! conlink's own instance and the host's never mix. Names are checked
//! (no leading `-`, no `=`, `:` or whitespace) and follow `--`, so a bridge
//! or port name is never read as an option or a column assignment.
//!
//! An instance conlink starts keeps all its state (database, sockets,
//! pidfiles, logs) in one runtime directory, runs in conlink's network
//! namespace (the userspace datapath opens the ports by name there, and its
//! bridge devices appear there), and is stopped by PID at
//! [`OvsSupervisor::shutdown`] (or drop), which also removes the directory.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::error::{Error, Result};
use crate::netns::Netns;

/// The `external_ids` key marking the bridges conlink creates (value: the
/// owner), so that a restarted conlink removes its own leftovers from a
/// shared OVS and never touches anyone else's bridges.
pub const OWNER_KEY: &str = "conlink-owner";

/// Whether the openvswitch kernel datapath module is loaded (what `auto`
/// bridge mode checks, and what picks the datapath of ovs bridges).
pub fn kernel_module_loaded() -> bool {
    Path::new("/sys/module/openvswitch").exists()
}

/// The datapath an OVS bridge runs on (`datapath_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datapath {
    /// The openvswitch kernel module (`datapath_type=system`).
    System,
    /// OVS's userspace datapath (`datapath_type=netdev`): no kernel module
    /// needed; ports are read and written through AF_PACKET sockets by
    /// ovs-vswitchd, slower than the kernel datapath but it works anywhere.
    Netdev,
}

impl Datapath {
    /// The kernel datapath when its module is loaded, else userspace.
    pub fn detect() -> Datapath {
        if kernel_module_loaded() {
            Datapath::System
        } else {
            Datapath::Netdev
        }
    }

    /// The `datapath_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Datapath::System => "system",
            Datapath::Netdev => "netdev",
        }
    }
}

/// Where the OVS programs and the database schema are.
#[derive(Debug, Clone)]
pub struct OvsPrograms {
    /// `ovs-vsctl`.
    pub vsctl: PathBuf,
    /// `ovs-appctl` (asks ovs-vswitchd to exit and clean up).
    pub appctl: PathBuf,
    /// `ovsdb-tool` (creates the database from the schema).
    pub ovsdb_tool: PathBuf,
    /// `ovsdb-server`.
    pub ovsdb_server: PathBuf,
    /// `ovs-vswitchd`.
    pub ovs_vswitchd: PathBuf,
    /// The Open_vSwitch schema shipped with OVS (`vswitch.ovsschema`).
    pub schema: PathBuf,
}

impl Default for OvsPrograms {
    /// The programs from `PATH`; the schema under `$OVS_PKGDATADIR` (OVS's
    /// own override) or Debian's `/usr/share/openvswitch`.
    fn default() -> Self {
        let pkgdata = std::env::var_os("OVS_PKGDATADIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/usr/share/openvswitch".into());
        OvsPrograms {
            vsctl: "ovs-vsctl".into(),
            appctl: "ovs-appctl".into(),
            ovsdb_tool: "ovsdb-tool".into(),
            ovsdb_server: "ovsdb-server".into(),
            ovs_vswitchd: "ovs-vswitchd".into(),
            schema: pkgdata.join("vswitch.ovsschema"),
        }
    }
}

/// How [`OvsSupervisor::ensure`] finds or starts OVS.
#[derive(Debug, Clone)]
pub struct OvsOptions {
    /// Runtime directory of an instance conlink starts (e.g.
    /// `/run/conlink/ovs-NAME`): created, owned and removed by conlink.
    pub run_dir: PathBuf,
    /// Database sockets of an OVS that may already run, tried in order.
    /// One is used only when its ovsdb-server answers and the
    /// `ovs-vswitchd` of its pidfile (next to the socket) runs in conlink's
    /// namespace: a switch in another namespace cannot see conlink's ports.
    pub existing: Vec<PathBuf>,
    /// Datapath of the bridges; None: [`Datapath::detect`].
    pub datapath: Option<Datapath>,
    /// Marks created bridges (`external_ids:conlink-owner=OWNER`).
    pub owner: String,
    /// Bound on each wait for a daemon's socket, and on each stop.
    pub timeout: Duration,
    /// The programs.
    pub programs: OvsPrograms,
}

impl OvsOptions {
    /// Defaults: the system OVS socket (`$OVS_RUNDIR/db.sock`, else
    /// `/var/run/openvswitch/db.sock`) as the existing candidate, datapath
    /// detected, owner `conlink`, 10 s waits, programs from `PATH`.
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        let sys = std::env::var_os("OVS_RUNDIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/var/run/openvswitch".into());
        OvsOptions {
            run_dir: run_dir.into(),
            existing: vec![sys.join("db.sock")],
            datapath: None,
            owner: "conlink".into(),
            timeout: Duration::from_secs(10),
            programs: OvsPrograms::default(),
        }
    }
}

/// A handle on the OVS conlink uses: an existing one, or conlink's own
/// daemons (stopped, by PID, at [`shutdown`](Self::shutdown) or drop).
/// Usable from any thread.
#[derive(Debug)]
pub struct OvsSupervisor {
    db: PathBuf,
    vsctl: PathBuf,
    datapath: Datapath,
    owner: String,
    timeout: Duration,
    own: Mutex<Option<Instance>>,
}

/// The two daemons conlink started, and the directory they live in.
#[derive(Debug)]
struct Instance {
    dir: PathBuf,
    /// `/run/conlink` (the parent) was created here: removed when empty.
    made_parent: Option<PathBuf>,
    /// In start order (ovsdb-server, ovs-vswitchd); stopped in reverse.
    daemons: Vec<Daemon>,
    /// The thread that forked the daemons; see [`Keeper`].
    keeper: Option<Keeper>,
    timeout: Duration,
    appctl: PathBuf,
    /// `/dev/net/tun` was created here (removed again at stop).
    made_tun: bool,
    /// Bridges the database of a killed conlink's instance (in the same
    /// directory) had marked with the owner: see
    /// [`OvsSupervisor::is_leftover_bridge`].
    leftover_bridges: Vec<String>,
}

#[derive(Debug)]
struct Daemon {
    name: &'static str,
    child: Child,
}

impl OvsSupervisor {
    /// Uses the OVS answering in `netns` (see [`OvsOptions::existing`]), or
    /// starts conlink's own: `ovsdb-tool create` a fresh database from the
    /// schema, `ovsdb-server` and (once its socket answers) `ovs-vswitchd`,
    /// both inside `netns`, with their state under `opts.run_dir`. A
    /// directory left there by a killed conlink is cleared first (its
    /// daemons, if still alive, stopped by the PIDs of its pidfiles). Every
    /// wait is bounded by `opts.timeout`; a daemon that exits or does not
    /// answer gives [`Error::OvsStart`] with the tail of its log, after
    /// stopping what was started.
    pub fn ensure(netns: &Netns, opts: &OvsOptions) -> Result<OvsSupervisor> {
        check_value("owner", &opts.owner)?;
        let datapath = opts.datapath.unwrap_or_else(Datapath::detect);
        if datapath == Datapath::Netdev {
            info!(
                "ovs: using the userspace datapath (datapath_type=netdev){}",
                if kernel_module_loaded() {
                    ""
                } else {
                    ": the openvswitch kernel module is not loaded"
                }
            );
        }
        let mut sup = OvsSupervisor {
            db: PathBuf::new(),
            vsctl: opts.programs.vsctl.clone(),
            datapath,
            owner: opts.owner.clone(),
            timeout: opts.timeout,
            own: Mutex::new(None),
        };
        for sock in &opts.existing {
            match existing_in(netns, sock, &opts.programs.vsctl) {
                Ok(()) => {
                    info!("ovs: using the running Open vSwitch at {}", sock.display());
                    sup.db = sock.clone();
                    return Ok(sup);
                }
                Err(why) => debug!("ovs: not using {}: {why}", sock.display()),
            }
        }
        let inst = Instance::start(netns, opts)?;
        sup.db = inst.dir.join("db.sock");
        info!(
            "ovs: started ovsdb-server (pid {}) and ovs-vswitchd (pid {}) in {}",
            inst.daemons[0].child.id(),
            inst.daemons[1].child.id(),
            inst.dir.display()
        );
        *sup.own.lock().unwrap_or_else(|p| p.into_inner()) = Some(inst);
        Ok(sup)
    }

    /// The database socket in use.
    pub fn db_socket(&self) -> &Path {
        &self.db
    }

    /// Whether bridge `name` was marked with the owner in the database a
    /// killed conlink's daemons left in the run directory (read with
    /// `ovsdb-tool query` before the directory was cleared); false for an
    /// existing OVS or a clean start. On the userspace datapath such a
    /// bridge's tap can outlive its daemons without conlink's mark (conlink
    /// was killed between `add-br` and marking it): this is what proves
    /// the device was conlink's.
    pub fn is_leftover_bridge(&self, name: &str) -> bool {
        self.own
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|i| i.leftover_bridges.iter().any(|b| b == name))
    }

    /// Whether the daemons are conlink's own (false: an existing OVS).
    pub fn started_own(&self) -> bool {
        self.own.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// PIDs of conlink's own daemons (ovsdb-server, ovs-vswitchd); empty
    /// for an existing OVS or after shutdown.
    pub fn pids(&self) -> Vec<u32> {
        self.own
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|i| i.daemons.iter().map(|d| d.child.id()).collect())
            .unwrap_or_default()
    }

    /// The datapath bridges are created on.
    pub fn datapath(&self) -> Datapath {
        self.datapath
    }

    /// Runs `ovs-vsctl --db=unix:SOCK --timeout=T ARGS…` (ARGS start with
    /// `--`, ending the global options, unless they set output format).
    fn vsctl(&self, args: &[&str]) -> Result<std::process::Output> {
        let out = tool(&self.vsctl)
            .arg(format!("--db=unix:{}", self.db.display()))
            .arg(format!("--timeout={}", self.timeout.as_secs().max(1)))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                Error::OvsUnavailable(format!(
                    "cannot run {}: {e} (install openvswitch-switch)",
                    self.vsctl.display()
                ))
            })?;
        Ok(out)
    }

    /// [`vsctl`](Self::vsctl) that must succeed; returns stdout.
    fn vsctl_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.vsctl(args)?;
        if !out.status.success() {
            return Err(vsctl_error(args, &out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Creates a bridge on the supervisor's datapath, marked as the
    /// owner's (`ovs-vsctl -- --may-exist add-br NAME -- set Bridge NAME
    /// datapath_type=netdev external_ids:conlink-owner=OWNER`).
    pub fn add_bridge(&self, name: &str) -> Result<()> {
        check_name("bridge", name)?;
        let dp = format!("datapath_type={}", self.datapath.as_str());
        let mark = format!("external_ids:{OWNER_KEY}=\"{}\"", self.owner);
        self.vsctl_ok(&[
            "--",
            "--may-exist",
            "add-br",
            name,
            "--",
            "set",
            "Bridge",
            name,
            &dp,
            &mark,
        ])
        .map(|_| ())
    }

    /// Deletes a bridge and its ports (`ovs-vsctl -- --if-exists del-br NAME`).
    pub fn del_bridge(&self, name: &str) -> Result<()> {
        check_name("bridge", name)?;
        self.vsctl_ok(&["--", "--if-exists", "del-br", name])
            .map(|_| ())
    }

    /// Whether OVS knows bridge NAME (`ovs-vsctl -- br-exists NAME`: exit 2
    /// means no).
    pub fn bridge_exists(&self, name: &str) -> Result<bool> {
        check_name("bridge", name)?;
        let args = ["--", "br-exists", name];
        let out = self.vsctl(&args)?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(2) => Ok(false),
            _ => Err(vsctl_error(&args, &out.stderr)),
        }
    }

    /// Bridge names (`ovs-vsctl -- list-br`).
    pub fn list_bridges(&self) -> Result<Vec<String>> {
        Ok(lines(&self.vsctl_ok(&["--", "list-br"])?))
    }

    /// Bridges marked with `owner` (`ovs-vsctl --bare --columns=name --
    /// find Bridge external_ids:conlink-owner=OWNER`).
    pub fn marked_bridges(&self, owner: &str) -> Result<Vec<String>> {
        check_value("owner", owner)?;
        let cond = format!("external_ids:{OWNER_KEY}=\"{owner}\"");
        Ok(lines(&self.vsctl_ok(&[
            "--bare",
            "--columns=name",
            "--",
            "find",
            "Bridge",
            &cond,
        ])?))
    }

    /// Adds interface PORT of conlink's namespace to BRIDGE (`ovs-vsctl --
    /// --may-exist add-port BRIDGE PORT`), then checks that ovs-vswitchd
    /// really opened it (`ovs-vsctl -- get Interface PORT ofport error`): a
    /// port it cannot open gets ofport -1 and an error text, which becomes
    /// [`Error::Ovs`] (and the port is removed again).
    pub fn add_port(&self, bridge: &str, port: &str) -> Result<()> {
        check_name("bridge", bridge)?;
        check_name("port", port)?;
        self.vsctl_ok(&["--", "--may-exist", "add-port", bridge, port])?;
        let args = ["--", "get", "Interface", port, "ofport", "error"];
        let got = self.vsctl_ok(&args)?;
        let mut it = got.lines();
        let ofport = it.next().unwrap_or("").trim();
        if ofport == "-1" {
            let why = it.next().unwrap_or("").trim().trim_matches('"').to_string();
            if let Err(e) = self.del_port(bridge, port) {
                warn!("ovs: remove failed port {port}: {e}");
            }
            return Err(Error::Ovs {
                args: format!("add-port {bridge} {port}"),
                stderr: format!("ovs-vswitchd could not open the port: {why}"),
            });
        }
        Ok(())
    }

    /// Removes a port (`ovs-vsctl -- --if-exists del-port BRIDGE PORT`).
    pub fn del_port(&self, bridge: &str, port: &str) -> Result<()> {
        check_name("bridge", bridge)?;
        check_name("port", port)?;
        self.vsctl_ok(&["--", "--if-exists", "del-port", bridge, port])
            .map(|_| ())
    }

    /// Ports of a bridge (`ovs-vsctl -- list-ports BRIDGE`).
    pub fn list_ports(&self, bridge: &str) -> Result<Vec<String>> {
        check_name("bridge", bridge)?;
        Ok(lines(&self.vsctl_ok(&["--", "list-ports", bridge])?))
    }

    /// Stops conlink's own daemons (ovs-vswitchd first, then ovsdb-server:
    /// SIGTERM to the PID, bounded wait, SIGKILL) and removes the runtime
    /// directory. An existing OVS is left running. Idempotent.
    pub fn shutdown(&self) -> Result<()> {
        let inst = self.own.lock().unwrap_or_else(|p| p.into_inner()).take();
        match inst {
            Some(i) => i.stop(),
            None => Ok(()),
        }
    }
}

impl Drop for OvsSupervisor {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            warn!("ovs: stop: {e}");
        }
    }
}

/// Whether the OVS at `sock` can be used for conlink's namespace: its
/// database answers, and its ovs-vswitchd (pidfile next to the socket) is
/// alive in `netns`. Err says why not.
fn existing_in(netns: &Netns, sock: &Path, vsctl: &Path) -> std::result::Result<(), String> {
    UnixStream::connect(sock).map_err(|e| format!("connect: {e}"))?;
    let out = tool(vsctl)
        .arg(format!("--db=unix:{}", sock.display()))
        .args(["--timeout=3", "--", "show"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {}: {e}", vsctl.display()))?;
    if !out.status.success() {
        return Err(format!(
            "ovsdb does not answer: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let dir = sock.parent().unwrap_or(Path::new("/"));
    let pidfile = dir.join("ovs-vswitchd.pid");
    let pid =
        read_pid(&pidfile).ok_or_else(|| format!("no ovs-vswitchd ({})", pidfile.display()))?;
    let theirs = Netns::of_pid(pid)
        .and_then(|n| n.inode())
        .map_err(|e| format!("ovs-vswitchd pid {pid}: {e}"))?;
    let ours = netns.inode().map_err(|e| e.to_string())?;
    if theirs != ours {
        let msg = format!("its ovs-vswitchd (pid {pid}) runs in another network namespace");
        info!(
            "ovs: an Open vSwitch answers at {} but {msg}; starting conlink's own",
            sock.display()
        );
        return Err(msg);
    }
    Ok(())
}

impl Instance {
    fn start(netns: &Netns, opts: &OvsOptions) -> Result<Instance> {
        let dir = opts.run_dir.clone();
        let made_parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() && !p.exists() => Some(p.to_path_buf()),
            _ => None,
        };
        let leftover_bridges = clear_leftover(&dir, opts)?;
        let made_tun = match opts.datapath.unwrap_or_else(Datapath::detect) {
            Datapath::Netdev => ensure_tun()?,
            Datapath::System => false,
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| io_err(format!("create {}", dir.display()), e))?;
        let mut inst = Instance {
            dir: dir.clone(),
            made_parent,
            daemons: Vec::new(),
            keeper: None,
            timeout: opts.timeout,
            appctl: opts.programs.appctl.clone(),
            made_tun,
            leftover_bridges,
        };
        // Stop and remove what was started if any step fails.
        match inst.start_daemons(netns, opts) {
            Ok(()) => Ok(inst),
            Err(e) => {
                if let Err(e2) = inst.stop() {
                    warn!("ovs: cleanup after failed start: {e2}");
                }
                Err(e)
            }
        }
    }

    fn start_daemons(&mut self, netns: &Netns, opts: &OvsOptions) -> Result<()> {
        let p = &opts.programs;
        let dir = self.dir.clone();
        let db = dir.join("conf.db");
        let sock = dir.join("db.sock");
        let out = tool(&p.ovsdb_tool)
            .arg("create")
            .arg(&db)
            .arg(&p.schema)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                Error::OvsUnavailable(format!(
                    "cannot run {}: {e} (install openvswitch-switch)",
                    p.ovsdb_tool.display()
                ))
            })?;
        if !out.status.success() {
            return Err(Error::OvsStart {
                daemon: "ovsdb-tool",
                problem: format!("create {} from {} failed", db.display(), p.schema.display()),
                log_tail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        let keeper = Keeper::start(netns)?;
        let mut server = Command::new(&p.ovsdb_server);
        server
            .arg(&db)
            .arg(format!("--remote=punix:{}", sock.display()))
            .args(state_args(&dir, "ovsdb-server"));
        self.spawn(&keeper, "ovsdb-server", server)?;
        self.keeper = Some(keeper);
        self.wait_socket(0, &sock)?;

        // The Open_vSwitch root row, as ovs-ctl makes it before starting
        // the switch (`ovs-vsctl --no-wait init`).
        let init = tool(&p.vsctl)
            .arg(format!("--db=unix:{}", sock.display()))
            .args(["--no-wait", "--timeout=5", "--", "init"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| io_err(format!("run {}", p.vsctl.display()), e))?;
        if !init.status.success() {
            return Err(vsctl_error(&["--no-wait", "--", "init"], &init.stderr));
        }

        let mut switch = Command::new(&p.ovs_vswitchd);
        switch
            .arg(format!("unix:{}", sock.display()))
            .args(state_args(&dir, "ovs-vswitchd"));
        let keeper = self.keeper.take();
        let r = match &keeper {
            Some(k) => self.spawn(k, "ovs-vswitchd", switch),
            None => Err(Error::Invalid("ovs keeper thread gone".into())),
        };
        self.keeper = keeper;
        r?;
        self.wait_socket(1, &dir.join("ovs-vswitchd.ctl"))
    }

    /// Starts one daemon through the keeper, output to `DIR/NAME.stderr`.
    fn spawn(&mut self, keeper: &Keeper, name: &'static str, mut cmd: Command) -> Result<()> {
        let errfile = self.dir.join(format!("{name}.stderr"));
        let err = File::create(&errfile)
            .map_err(|e| io_err(format!("create {}", errfile.display()), e))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            // Everything OVS writes by default goes under /var/run/openvswitch,
            // /etc/openvswitch, /var/log/openvswitch: point it all at DIR
            // (e.g. the userspace bridges' `BRIDGE.mgmt` sockets).
            .env("OVS_RUNDIR", &self.dir)
            .env("OVS_DBDIR", &self.dir)
            .env("OVS_LOGDIR", &self.dir)
            .env("OVS_SYSCONFDIR", &self.dir);
        let child = keeper.fork(cmd).map_err(|e| Error::OvsStart {
            daemon: name,
            problem: format!("cannot run it: {e}"),
            log_tail: String::new(),
        })?;
        debug!("ovs: {name} started, pid {}", child.id());
        self.daemons.push(Daemon { name, child });
        Ok(())
    }

    /// Waits (bounded) until the unix socket `sock` of daemon `i` accepts a
    /// connection; fails early if the daemon exits.
    fn wait_socket(&mut self, i: usize, sock: &Path) -> Result<()> {
        let t0 = Instant::now();
        loop {
            if UnixStream::connect(sock).is_ok() {
                return Ok(());
            }
            let d = &mut self.daemons[i];
            if let Ok(Some(st)) = d.child.try_wait() {
                return Err(Error::OvsStart {
                    daemon: d.name,
                    problem: format!("exited ({st}) before {} answered", sock.display()),
                    log_tail: log_tail(&self.dir, d.name),
                });
            }
            if t0.elapsed() > self.timeout {
                return Err(Error::OvsStart {
                    daemon: d.name,
                    problem: format!(
                        "{} did not answer within {:?}",
                        sock.display(),
                        self.timeout
                    ),
                    log_tail: log_tail(&self.dir, d.name),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the daemons in reverse start order, then removes the directory
    /// (and its parent if created here and now empty). Keeps going past
    /// errors and returns them all.
    fn stop(mut self) -> Result<()> {
        let mut errs = Vec::new();
        while let Some(mut d) = self.daemons.pop() {
            if d.name == "ovs-vswitchd" {
                self.exit_cleanup(&mut d.child);
            }
            if let Err(e) = stop_child(&mut d.child, self.timeout) {
                errs.push(io_err(format!("stop {} (pid {})", d.name, d.child.id()), e));
            }
        }
        // The daemons are gone: the keeper may go (nothing left to outlive).
        drop(self.keeper.take());
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                errs.push(io_err(format!("remove {}", self.dir.display()), e));
            }
            _ => {}
        }
        if self.made_tun {
            let _ = std::fs::remove_file(TUN);
            let _ = std::fs::remove_dir("/dev/net");
        }
        if let Some(p) = &self.made_parent {
            // Fails (and is fine) when another instance still uses it.
            let _ = std::fs::remove_dir(p);
        }
        match errs.len() {
            0 => Ok(()),
            1 => Err(errs.remove(0)),
            _ => Err(Error::Many(errs)),
        }
    }
}

impl Instance {
    /// Asks ovs-vswitchd to exit and remove its datapaths (`ovs-appctl -t
    /// DIR/ovs-vswitchd.ctl exit --cleanup`), then waits (bounded) for it.
    /// A plain SIGTERM would keep them: the userspace datapath makes its
    /// devices (`ovs-netdev` and one tap per bridge) persistent, so they
    /// would outlive the switch in conlink's namespace. Failures only log:
    /// the SIGTERM that follows still stops it.
    fn exit_cleanup(&self, child: &mut Child) {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        let ctl = self.dir.join("ovs-vswitchd.ctl");
        let out = tool(&self.appctl)
            .arg(format!("--timeout={}", self.timeout.as_secs().max(1)))
            .arg("-t")
            .arg(&ctl)
            .args(["exit", "--cleanup"])
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => warn!(
                "ovs: ovs-appctl exit --cleanup: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => warn!("ovs: run {}: {e}", self.appctl.display()),
        }
        let t0 = Instant::now();
        while t0.elapsed() < self.timeout {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The tun/tap control device.
const TUN: &str = "/dev/net/tun";

/// The userspace datapath's devices (`ovs-netdev`, one per bridge) are
/// taps: ovs-vswitchd needs `/dev/net/tun`, which docker does not put in a
/// container's `/dev` (measured: absent in a plain `docker run`), though
/// its default device rules allow it (c 10:200) and grant CAP_MKNOD. So it
/// is made when missing (`mknod /dev/net/tun c 10 200`, mode 0666 as
/// udev makes it); returns whether it was.
fn ensure_tun() -> Result<bool> {
    if Path::new(TUN).exists() {
        return Ok(false);
    }
    std::fs::create_dir_all("/dev/net").map_err(|e| io_err("create /dev/net".into(), e))?;
    let dev = nix::sys::stat::makedev(10, 200);
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o666);
    nix::sys::stat::mknod(TUN, nix::sys::stat::SFlag::S_IFCHR, mode, dev).map_err(|e| {
        io_err(
            format!("create {TUN} (c 10 200) for the userspace datapath"),
            e.into(),
        )
    })?;
    // mknod applies the umask; the mode must be exact.
    std::fs::set_permissions(TUN, std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .map_err(|e| io_err(format!("chmod {TUN}"), e))?;
    info!("ovs: created {TUN} (the userspace datapath's taps need it)");
    Ok(true)
}

/// The options giving a daemon its pidfile, control socket and log file
/// in `dir` (`--pidfile=DIR/NAME.pid --unixctl=DIR/NAME.ctl
/// --log-file=DIR/NAME.log`). No `--detach`: the daemon stays conlink's
/// child, so conlink knows its PID without trusting a file and reaps it.
fn state_args(dir: &Path, name: &str) -> Vec<String> {
    vec![
        format!("--pidfile={}", dir.join(format!("{name}.pid")).display()),
        format!("--unixctl={}", dir.join(format!("{name}.ctl")).display()),
        format!("--log-file={}", dir.join(format!("{name}.log")).display()),
    ]
}

/// SIGTERM, bounded wait, SIGKILL, reap.
fn stop_child(child: &mut Child, timeout: Duration) -> std::io::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // The child is not reaped yet, so the PID is still ours.
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    warn!("ovs: pid {pid} ignored SIGTERM for {timeout:?}; killing it");
    child.kill()?;
    child.wait().map(|_| ())
}

/// A runtime directory left by a conlink that was killed: stops its
/// daemons if any still run (only processes whose command line names this
/// directory: a recycled PID is left alone), reads the bridges its
/// database had marked with `opts.owner`, then removes it. Returns those
/// bridges.
fn clear_leftover(dir: &Path, opts: &OvsOptions) -> Result<Vec<String>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let timeout = opts.timeout;
    let dirs = dir.display().to_string();
    for name in ["ovs-vswitchd", "ovsdb-server"] {
        let Some(pid) = read_pid(&dir.join(format!("{name}.pid"))) else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if !cmdline.contains(&dirs) {
            continue;
        }
        info!("ovs: stopping leftover {name} (pid {pid}) of an earlier conlink run");
        let p = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGTERM);
        let t0 = Instant::now();
        // Not our child: wait for /proc/PID to go (or turn into a zombie
        // of someone else's, which holds nothing).
        while t0.elapsed() < timeout && proc_alive(pid) {
            std::thread::sleep(Duration::from_millis(10));
        }
        if proc_alive(pid) {
            let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
        }
    }
    let db = dir.join("conf.db");
    let bridges = if db.exists() {
        leftover_marked(&opts.programs.ovsdb_tool, &db, &opts.owner)
    } else {
        Vec::new()
    };
    std::fs::remove_dir_all(dir)
        .map_err(|e| io_err(format!("remove leftover {}", dir.display()), e))?;
    Ok(bridges)
}

/// The bridges marked `external_ids:conlink-owner=OWNER` in the database
/// file `db` of stopped daemons (`ovsdb-tool query`, read-only). A file
/// that cannot be read gives none, with a warning: the devices it would
/// have proved conlink's are then refused as someone else's.
fn leftover_marked(ovsdb_tool: &Path, db: &Path, owner: &str) -> Vec<String> {
    let query = serde_json::json!([
        "Open_vSwitch",
        {
            "op": "select",
            "table": "Bridge",
            "where": [["external_ids", "includes", ["map", [[OWNER_KEY, owner]]]]],
            "columns": ["name"],
        }
    ])
    .to_string();
    let out = tool(ovsdb_tool)
        .arg("query")
        .arg(db)
        .arg(&query)
        .stdin(Stdio::null())
        .output();
    let parsed = out.ok().filter(|o| o.status.success()).and_then(|o| {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        v.get(0)?.get("rows")?.as_array().map(|rows| {
            rows.iter()
                .filter_map(|r| r.get("name")?.as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
    });
    match parsed {
        Some(names) => names,
        None => {
            warn!(
                "ovs: cannot read the bridges of the leftover database {}",
                db.display()
            );
            Vec::new()
        }
    }
}

/// Whether PID exists and is not a zombie.
fn proc_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3 (after the parenthesised comm) is the state.
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X"),
        Err(_) => false,
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

/// The last lines of a daemon's log file and of its stderr.
fn log_tail(dir: &Path, name: &str) -> String {
    let mut out = Vec::new();
    for ext in ["log", "stderr"] {
        let path = dir.join(format!("{name}.{ext}"));
        let tail = tail_lines(&path, 15);
        if !tail.is_empty() {
            out.push(format!("{}:\n{}", path.display(), tail.join("\n")));
        }
    }
    if out.is_empty() {
        "(no log output)".into()
    } else {
        out.join("\n")
    }
}

/// The last `n` lines of a file (reads at most its last 16 KiB).
fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let lines: Vec<String> = BufReader::new(f).lines().map_while(|l| l.ok()).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn io_err(op: String, source: std::io::Error) -> Error {
    Error::Io { op, source }
}

fn vsctl_error(args: &[&str], stderr: &[u8]) -> Error {
    let stderr = String::from_utf8_lossy(stderr).trim().to_string();
    if stderr.contains("database connection failed") {
        return Error::OvsUnavailable(format!("ovsdb-server does not answer ({stderr})"));
    }
    Error::Ovs {
        args: args
            .iter()
            .filter(|a| **a != "--")
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
        stderr,
    }
}

/// A bridge or port name as OVS and Linux take it: 1 to 15 bytes, no
/// leading `-` (an option), no `=` `:` `"` `/` or whitespace (ovs-vsctl
/// column syntax, path separators).
fn check_name(what: &str, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 15
        || name.starts_with('-')
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "=:\"/\\,{}[]".contains(c));
    if bad {
        return Err(Error::Invalid(format!("ovs {what} name {name:?}")));
    }
    Ok(())
}

/// An `external_ids` value conlink writes unquoted-safe: `[A-Za-z0-9_.-]+`.
fn check_value(what: &str, v: &str) -> Result<()> {
    if v.is_empty()
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(Error::Invalid(format!("ovs {what} {v:?}")));
    }
    Ok(())
}

/// A one-shot OVS tool (`ovs-vsctl`, `ovs-appctl`, `ovsdb-tool`), killed
/// if the thread that runs it dies: a conlink killed by SIGKILL while an
/// `ovs-vsctl --timeout=10 del-port` waited would otherwise leave it
/// running, and it would act on the next run's database (the socket path
/// is the same) up to 10 s later (seen in the e2e scale-down fault test).
/// The thread runs the tool with `output()`, so it outlives it unless
/// conlink dies. (The daemons have their own keeper thread, see `Keeper`.)
fn tool(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: runs in the forked child before exec; prctl and getppid are
    // async-signal-safe and touch no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // conlink died between fork and prctl: no signal will come.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("conlink exited"));
            }
            Ok(())
        });
    }
    cmd
}

/// The thread that forks conlink's OVS daemons, for as long as they run.
///
/// It enters conlink's namespace once (so the daemons start there: the
/// userspace datapath opens ports by name in its own namespace) and each
/// daemon asks the kernel for SIGTERM when its parent goes
/// (`PR_SET_PDEATHSIG`): a conlink killed by SIGKILL leaves no switch
/// running. The "parent" of that rule is the forking *thread*, so the
/// thread must live as long as the daemons: a pooled thread that exits
/// when idle would take them with it.
#[derive(Debug)]
struct Keeper {
    tx: Option<mpsc::Sender<(Command, mpsc::Sender<std::io::Result<Child>>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Keeper {
    fn start(netns: &Netns) -> Result<Keeper> {
        let ns = netns.try_clone()?;
        let (tx, rx) = mpsc::channel::<(Command, mpsc::Sender<std::io::Result<Child>>)>();
        let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("ovs-keeper".into())
            .spawn(move || {
                // setns on this dedicated thread only (never a pooled one).
                if let Err(e) = nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET) {
                    let _ = ready_tx.send(Err(e.into()));
                    return;
                }
                drop(ns);
                let _ = ready_tx.send(Ok(()));
                // Ends when the Keeper is dropped (sender closed).
                for (mut cmd, reply) in rx {
                    // SAFETY: runs in the forked child before exec; prctl is
                    // async-signal-safe and touches no memory of the parent.
                    unsafe {
                        cmd.pre_exec(|| {
                            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) < 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
            })
            .map_err(|e| io_err("spawn ovs keeper thread".into(), e))?;
        let mut k = Keeper {
            tx: Some(tx),
            thread: Some(thread),
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(k),
            Ok(Err(e)) => {
                k.tx = None;
                Err(Error::Netns {
                    op: "enter netns for ovs daemons",
                    path: netns.path().to_string(),
                    source: e,
                })
            }
            Err(_) => Err(Error::Invalid("ovs keeper thread died".into())),
        }
    }

    /// Spawns `cmd` from the keeper thread.
    fn fork(&self, cmd: Command) -> std::io::Result<Child> {
        let gone = || std::io::Error::other("ovs keeper thread gone");
        let (reply_tx, reply_rx) = mpsc::channel();
        self.tx
            .as_ref()
            .ok_or_else(gone)?
            .send((cmd, reply_tx))
            .map_err(|_| gone())?;
        reply_rx.recv().map_err(|_| gone())?
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// A tool outlives neither conlink nor the thread that ran it: here the
    /// thread spawns `sleep 30` and exits, and the kernel kills the sleep.
    #[test]
    fn a_tool_dies_with_the_thread_that_ran_it() {
        let mut child =
            std::thread::spawn(|| tool("sleep").arg("30").spawn().expect("spawn sleep"))
                .join()
                .expect("thread");
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                break st;
            }
            if t0.elapsed() > Duration::from_secs(5) {
                let _ = child.kill();
                panic!("sleep still runs 5 s after the thread that ran it ended");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    }
}
