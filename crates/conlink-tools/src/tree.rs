//! Recursive overlay copy with optional `{{NAME}}` templating: the `copy`
//! tool (spec §9) and mdc's `.files/` tree.
//!
//! * Nothing already in the destination is removed; files of the same name
//!   are overwritten.
//! * Directories are created as needed with the source's permission bits;
//!   directories that exist already keep theirs.
//! * Files get the source's permission bits (setuid/setgid/sticky
//!   included). Ownership and times are not copied: the usual source is a
//!   bind mount owned by some host user.
//! * Symlinks are recreated as symlinks (target text unchanged).
//! * A symlink already in the destination is replaced, never followed: a
//!   file is written to a new file next to it and renamed over the link, a
//!   directory link is removed and a real directory made. So a copy never
//!   writes outside the destination tree (only the top directory itself
//!   may be a link: the caller chose it).
//! * Sockets, FIFOs and device nodes are skipped with a warning.
//! * Templating replaces `{{NAME}}` (NAME = `[A-Za-z_][A-Za-z0-9_]*`) with the
//!   value of environment variable NAME when it is set, even to the empty
//!   string; other `{{...}}` text stays as it is. A file that holds a NUL
//!   byte or is not valid UTF-8 is binary and copied untouched.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// What a copy did, for progress output and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyStats {
    /// Regular files written.
    pub files: usize,
    /// Of those, files whose text went through templating.
    pub templated: usize,
    /// Directories created.
    pub dirs: usize,
    /// Symlinks created.
    pub symlinks: usize,
    /// Special files skipped.
    pub skipped: usize,
}

/// A variable lookup for templating: `Some(value)` when NAME is set.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// Whether file contents count as binary (contain NUL or are not UTF-8).
pub fn is_binary(data: &[u8]) -> bool {
    data.contains(&0) || std::str::from_utf8(data).is_err()
}

fn is_name(s: &[u8]) -> bool {
    match s.split_first() {
        Some((first, rest)) => {
            (first.is_ascii_alphabetic() || *first == b'_')
                && rest.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        }
        None => false,
    }
}

/// Replaces each `{{NAME}}` whose `lookup` is `Some` (see module docs).
pub fn render(input: &[u8], lookup: Lookup<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i..].starts_with(b"{{") {
            let body = &input[i + 2..];
            // Only a NAME may sit between the braces, so scan name bytes
            // only: that stops at the next `{`, which keeps the whole pass
            // linear (scanning to the next `}}` was quadratic on many `{`).
            let end = body
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                .unwrap_or(body.len());
            if body[end..].starts_with(b"}}") {
                let name = &body[..end];
                if is_name(name) {
                    // is_name accepts ASCII only, so this cannot fail.
                    let value = std::str::from_utf8(name).ok().and_then(lookup);
                    if let Some(value) = value {
                        out.extend_from_slice(value.as_bytes());
                        i += 2 + end + 2;
                        continue;
                    }
                }
            }
        }
        // Not a replaceable placeholder: emit one byte and rescan, so that
        // `{{{X}}}` becomes `{value}`.
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Environment lookup for [`render`].
pub fn env_lookup(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// Copies the tree `src` over `dst` (see module docs). With `template`,
/// text files go through [`render`] with `lookup`.
pub fn copy_tree(src: &Path, dst: &Path, template: Option<Lookup<'_>>) -> Result<CopyStats> {
    let meta = fs::metadata(src).map_err(|e| Error::io("read", src, e))?;
    if !meta.is_dir() {
        return Err(Error::Invalid(format!(
            "copy source {} is not a directory",
            src.display()
        )));
    }
    // Copying a tree into itself would never end.
    if let (Ok(s), Some(d)) = (fs::canonicalize(src), existing_ancestor(dst)) {
        if d.starts_with(&s) {
            return Err(Error::Invalid(format!(
                "cannot copy {} into itself ({})",
                src.display(),
                dst.display()
            )));
        }
    }
    let mut stats = CopyStats::default();
    ensure_dir(dst, meta.permissions().mode(), false, &mut stats)?;
    copy_dir(src, dst, template, &mut stats)?;
    Ok(stats)
}

/// The canonical path of `path` or of its nearest existing ancestor.
fn existing_ancestor(path: &Path) -> Option<std::path::PathBuf> {
    let abs = std::path::absolute(path).ok()?;
    abs.ancestors().find_map(|a| fs::canonicalize(a).ok())
}

/// Creates `dir` (and parents) if missing; the last component gets `mode`.
/// With `nested` (an entry inside the destination tree), a symlink at
/// `dir` is replaced by a real directory instead of being followed.
fn ensure_dir(dir: &Path, mode: u32, nested: bool, stats: &mut CopyStats) -> Result<()> {
    if nested {
        if let Ok(m) = fs::symlink_metadata(dir) {
            if m.file_type().is_symlink() {
                fs::remove_file(dir).map_err(|e| Error::io("remove link", dir, e))?;
            }
        }
    }
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(Error::Invalid(format!(
                "cannot copy a directory over {}: it is not a directory",
                dir.display()
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("inspect", dir, e)),
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode & 0o7777)
        .create(dir)
        .map_err(|e| Error::io("create directory", dir, e))?;
    // The umask narrowed the mode given to mkdir; set it exactly.
    fs::set_permissions(dir, fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| Error::io("set permissions of", dir, e))?;
    stats.dirs += 1;
    Ok(())
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    template: Option<Lookup<'_>>,
    stats: &mut CopyStats,
) -> Result<()> {
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(src)
        .map_err(|e| Error::io("read directory", src, e))?
        .collect::<io::Result<_>>()
        .map_err(|e| Error::io("read directory", src, e))?;
    // Sorted so that runs are reproducible (and errors too).
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from).map_err(|e| Error::io("inspect", &from, e))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            ensure_dir(&to, meta.permissions().mode(), true, stats)?;
            copy_dir(&from, &to, template, stats)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&from).map_err(|e| Error::io("read link", &from, e))?;
            // Replace a file or link of the same name; never a directory.
            if let Ok(old) = fs::symlink_metadata(&to) {
                if old.is_dir() {
                    return Err(Error::Invalid(format!(
                        "cannot copy link {} over directory {}",
                        from.display(),
                        to.display()
                    )));
                }
                fs::remove_file(&to).map_err(|e| Error::io("remove", &to, e))?;
            }
            std::os::unix::fs::symlink(&target, &to)
                .map_err(|e| Error::io("create link", &to, e))?;
            stats.symlinks += 1;
        } else if ft.is_file() {
            copy_file(&from, &to, meta.permissions().mode(), template, stats)?;
        } else {
            eprintln!("copy: skipping special file {}", from.display());
            stats.skipped += 1;
        }
    }
    Ok(())
}

fn copy_file(
    from: &Path,
    to: &Path,
    mode: u32,
    template: Option<Lookup<'_>>,
    stats: &mut CopyStats,
) -> Result<()> {
    let data = fs::read(from).map_err(|e| Error::io("read", from, e))?;
    let data = match template {
        Some(lookup) if !is_binary(&data) => {
            stats.templated += 1;
            render(&data, lookup)
        }
        _ => data,
    };
    write_replacing(to, &data, mode & 0o7777)?;
    stats.files += 1;
    Ok(())
}

/// Writes `data` to a new file next to `to` and renames it over `to`: a
/// symlink there is replaced (never written through), a read-only file or
/// a running binary (ETXTBSY) is replaced too, and the mode is set on the
/// new file itself, never on a link's target.
fn write_replacing(to: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    let name = to
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} is not a file name", to.display())))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".copy{}", std::process::id()));
    let tmp = to.with_file_name(tmp_name);
    let result = (|| {
        // create_new: O_EXCL, so a stale link at the temporary name is not
        // followed either.
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(data)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        drop(f);
        fs::rename(&tmp, to)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("write", to, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<OsString> {
        match name {
            "HOST" => Some("db.lab".into()),
            "EMPTY" => Some("".into()),
            "_X1" => Some("x".into()),
            _ => None,
        }
    }

    fn r(s: &str) -> String {
        String::from_utf8(render(s.as_bytes(), &lookup)).unwrap()
    }

    #[test]
    fn templating() {
        assert_eq!(r("host={{HOST}}:{{ HOST }}"), "host=db.lab:{{ HOST }}");
        assert_eq!(r("{{UNSET}} {{EMPTY}}|{{_X1}}"), "{{UNSET}} |x");
        assert_eq!(r("{{{HOST}}}"), "{db.lab}");
        assert_eq!(r("{{HOST}"), "{{HOST}");
        assert_eq!(r("{{1A}}{{}}{{A-B}}"), "{{1A}}{{}}{{A-B}}");
        assert_eq!(r("{{HOST}}{{HOST}}"), "db.labdb.lab");
        assert_eq!(r("ünï {{HOST}} ✓"), "ünï db.lab ✓");
        assert_eq!(r("{{HOST }}{{HOST}}x{{"), "{{HOST }}db.labx{{");
        assert_eq!(r("{{{{HOST}}}}"), "{{db.lab}}");
    }

    #[test]
    fn binary_detection() {
        assert!(is_binary(b"a\0b"));
        assert!(is_binary(&[0xff, 0xfe, b'{', b'{']));
        assert!(!is_binary("plain ✓ text".as_bytes()));
    }
}
