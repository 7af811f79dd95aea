//! `copy` as a process: overlay semantics, permissions, links, `-T`
//! templating checked byte for byte, binary files untouched, exec.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn set_mode(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

/// Source tree used by the tests below.
fn source(root: &Path) -> Vec<u8> {
    fs::create_dir_all(root.join("etc/app/conf.d")).unwrap();
    fs::write(
        root.join("etc/app/app.conf"),
        "host = {{APP_HOST}}\nport={{APP_PORT}}\nkeep {{UNSET_CONLINK_VAR}} and {{ APP_HOST }}\n\
         empty=[{{APP_EMPTY}}] nested={{{APP_PORT}}}\n",
    )
    .unwrap();
    fs::write(root.join("etc/app/conf.d/z.conf"), "z={{APP_HOST}}").unwrap();
    set_mode(&root.join("etc/app/conf.d/z.conf"), 0o600);
    // A "binary" holding a placeholder and NUL bytes: must stay as is.
    let mut blob = b"\x7fELF\0\0{{APP_HOST}}\0\xff\xfe".to_vec();
    blob.extend((0u8..=255).collect::<Vec<_>>());
    fs::write(root.join("etc/app/blob.bin"), &blob).unwrap();
    fs::write(root.join("run.sh"), "#!/bin/sh\necho {{APP_HOST}}\n").unwrap();
    set_mode(&root.join("run.sh"), 0o750);
    set_mode(&root.join("etc/app/conf.d"), 0o710);
    std::os::unix::fs::symlink("app/app.conf", root.join("etc/link.conf")).unwrap();
    blob
}

#[test]
fn template_copy_byte_for_byte() {
    let dir = TempDir::new("copy-t");
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let blob = source(&src);
    // Pre-existing content: one file overwritten, one left alone.
    fs::create_dir_all(dst.join("etc/app")).unwrap();
    fs::write(
        dst.join("etc/app/app.conf"),
        "old contents that are longer than the new ones ".repeat(10),
    )
    .unwrap();
    fs::write(dst.join("etc/app/local.conf"), "mine").unwrap();
    set_mode(&dst.join("etc/app"), 0o755);

    let out = finish(
        spawn(
            Command::new(bin("copy"))
                .env("APP_HOST", "db.lab")
                .env("APP_PORT", "5432")
                .env("APP_EMPTY", "")
                .env_remove("UNSET_CONLINK_VAR")
                .arg("-T")
                .arg(&src)
                .arg(&dst),
        ),
        Duration::from_secs(20),
    );
    assert_eq!(out.code(), 0, "{out:?}");

    assert_eq!(
        fs::read(dst.join("etc/app/app.conf")).unwrap(),
        b"host = db.lab\nport=5432\nkeep {{UNSET_CONLINK_VAR}} and {{ APP_HOST }}\n\
          empty=[] nested={5432}\n"
    );
    assert_eq!(
        fs::read(dst.join("etc/app/conf.d/z.conf")).unwrap(),
        b"z=db.lab"
    );
    assert_eq!(fs::read(dst.join("etc/app/blob.bin")).unwrap(), blob);
    assert_eq!(
        fs::read(dst.join("run.sh")).unwrap(),
        b"#!/bin/sh\necho db.lab\n"
    );
    assert_eq!(fs::read(dst.join("etc/app/local.conf")).unwrap(), b"mine");
    assert_eq!(
        fs::read_link(dst.join("etc/link.conf")).unwrap(),
        Path::new("app/app.conf")
    );
    assert_eq!(mode(&dst.join("run.sh")), 0o750);
    assert_eq!(mode(&dst.join("etc/app/conf.d/z.conf")), 0o600);
    assert_eq!(mode(&dst.join("etc/app/conf.d")), 0o710);
    // Existing directory keeps its mode.
    assert_eq!(mode(&dst.join("etc/app")), 0o755);
}

#[test]
fn plain_copy_leaves_placeholders_and_execs() {
    let dir = TempDir::new("copy-plain");
    let (src, dst) = (dir.path().join("src"), dir.path().join("new/deep/dst"));
    source(&src);
    let out = finish(
        spawn(
            Command::new(bin("copy"))
                .env("APP_HOST", "db.lab")
                .arg(&src)
                .arg(&dst)
                .arg("--")
                .arg(bin("echo"))
                .arg("after copy"),
        ),
        Duration::from_secs(20),
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout, "after copy\n");
    assert_eq!(
        fs::read(dst.join("etc/app/conf.d/z.conf")).unwrap(),
        b"z={{APP_HOST}}"
    );
    assert_eq!(
        fs::read(src.join("etc/app/app.conf")).unwrap(),
        fs::read(dst.join("etc/app/app.conf")).unwrap()
    );
}

#[test]
fn bad_usage_and_missing_source() {
    for args in [&[][..], &["only-one"], &["-X", "a", "b"]] {
        let out = run("copy", args);
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains("usage: copy"), "{out:?}");
    }
    let dir = TempDir::new("copy-missing");
    let out = run("copy", [dir.path().join("nope"), dir.path().join("dst")]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr.contains("nope"), "{out:?}");
    assert!(
        !dir.path().join("dst").exists(),
        "nothing may be created on error"
    );
}

#[test]
fn missing_command_after_copy() {
    let dir = TempDir::new("copy-cmd");
    fs::create_dir_all(dir.path().join("src")).unwrap();
    let out = run(
        "copy",
        [
            dir.path().join("src").as_os_str(),
            dir.path().join("dst").as_os_str(),
            "/nonexistent/conlink-cmd".as_ref(),
        ],
    );
    assert_eq!(out.code(), 127, "{out:?}");
    assert!(out.stderr.contains("cannot run"), "{out:?}");
}

/// A destination entry that is a symlink is replaced, never written
/// through: `file -> ../victim` used to overwrite the victim (and change its
/// mode), and a directory symlink let the copy write outside the
/// destination tree.
#[test]
fn destination_symlinks_are_replaced_not_followed() {
    let dir = TempDir::new("copy-dst-links");
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("file"), "new {{APP_HOST}}\n").unwrap();
    set_mode(&src.join("file"), 0o755);
    fs::write(src.join("sub/inner"), "inner\n").unwrap();
    // Outside the destination: a victim file and a victim directory.
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious\n").unwrap();
    set_mode(&victim, 0o600);
    let outside = dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(&dst).unwrap();
    std::os::unix::fs::symlink("../victim", dst.join("file")).unwrap();
    std::os::unix::fs::symlink("../outside", dst.join("sub")).unwrap();
    for template in [false, true] {
        let mut cmd = Command::new(bin("copy"));
        cmd.env("APP_HOST", "h");
        if template {
            cmd.arg("-T");
        }
        let out = finish(spawn(cmd.arg(&src).arg(&dst)), Duration::from_secs(20));
        assert_eq!(out.code(), 0, "{out:?}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(mode(&victim), 0o600);
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "wrote through a dir link"
        );
        let f = fs::symlink_metadata(dst.join("file")).unwrap();
        assert!(f.file_type().is_file(), "the link was not replaced");
        assert_eq!(mode(&dst.join("file")), 0o755);
        let want = if template {
            "new h\n"
        } else {
            "new {{APP_HOST}}\n"
        };
        assert_eq!(fs::read_to_string(dst.join("file")).unwrap(), want);
        assert!(fs::symlink_metadata(dst.join("sub")).unwrap().is_dir());
        assert_eq!(
            fs::read_to_string(dst.join("sub/inner")).unwrap(),
            "inner\n"
        );
        // Put the links back for the second round.
        fs::remove_file(dst.join("file")).unwrap();
        fs::remove_dir_all(dst.join("sub")).unwrap();
        std::os::unix::fs::symlink("../victim", dst.join("file")).unwrap();
        std::os::unix::fs::symlink("../outside", dst.join("sub")).unwrap();
    }
}

/// `-T` on a file of 300,000 `{` (and of `{{` followed by long names) is
/// linear: it took more than 10 s when each `{{` scanned the rest.
#[test]
fn templating_many_braces_is_linear() {
    let dir = TempDir::new("copy-braces");
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    fs::create_dir_all(&src).unwrap();
    let braces = "{".repeat(300_000);
    let names = "{{A".repeat(100_000);
    fs::write(src.join("braces"), &braces).unwrap();
    fs::write(src.join("names"), &names).unwrap();
    let t = std::time::Instant::now();
    let out = finish(
        spawn(Command::new(bin("copy")).arg("-T").arg(&src).arg(&dst)),
        Duration::from_secs(20),
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(fs::read_to_string(dst.join("braces")).unwrap(), braces);
    assert_eq!(fs::read_to_string(dst.join("names")).unwrap(), names);
}
