//! Atomic file and folder writes: readers see either the old output or the complete new one,
//! never a half-written file after a crash or Ctrl-C.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A tempfile builder whose files/folders get the usual `0o666`/`0o777 & !umask` permissions
/// instead of tempfile's private `0o600`/`0o700`, since they become the user's real outputs.
fn builder<'a>(prefix: &'a str, suffix: &'a str, dir: bool) -> tempfile::Builder<'a, 'a> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix).suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(if dir {
            0o777
        } else {
            0o666
        }));
    }
    #[cfg(not(unix))]
    let _ = dir;
    b
}

fn file_name(path: &Path) -> io::Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))
}

/// Reads the regular file at `path`, refusing anything else (a folder, `/dev/zero`, a FIFO, a
/// socket: reading those could block forever or never end) and any file larger than `max`
/// bytes, before reading it. The size is checked again while reading, so a file that grows
/// meanwhile cannot make the read exceed `max`.
pub fn read_regular_file(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    // Opening a FIFO for reading blocks until a writer appears; look at the path first.
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            if meta.is_dir() {
                "is a folder, not a file".to_string()
            } else {
                "is not a regular file (a device, a FIFO or a socket)".to_string()
            },
        ));
    }
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is not a regular file",
        ));
    }
    let too_large = |len: u64| {
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("is {len} bytes, more than the limit of {max} bytes"),
        )
    };
    if meta.len() > max {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it over `path` and
/// syncs the folder: after a crash or power cut `path` is the old file or the complete new one.
///
/// The temporary file is `.NAME.PID.XXXXXX.tmp`; those that killed processes left for the
/// same `path` are removed first (see [`StagedDir`] for the same scheme with folders).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    recover_leftovers(path)?;
    let prefix = staging_prefix(path)?;
    let mut tmp = builder(&prefix, ".tmp", false).tempfile_in(parent_of(path))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename itself is durable only once the folder entry is.
    sync_dir(parent_of(path))
}

/// A folder built under a temporary name beside its destination and renamed into place by
/// [`StagedDir::commit`]. Dropped without commit, it is removed.
///
/// The temporary names are `.NAME.PID.XXXXXX.partial` (the folder being built) and
/// `.NAME.PID.XXXXXX.old` (the output being replaced, during the two renames of a commit),
/// where PID is the writing process. A process killed outright (`kill -9`, power loss) cannot
/// remove them; the next [`StagedDir::new`] for the same target removes those whose process is
/// gone (on Linux, where `/proc` says so), and first moves a replaced output back into place if
/// the kill came between the two renames, so the target is never left missing.
#[derive(Debug)]
pub struct StagedDir {
    staging: tempfile::TempDir,
    target: PathBuf,
    replace: bool,
}

impl StagedDir {
    /// Prepares a staging folder for `target`. Fails if `target` exists and is not an empty
    /// folder, unless `replace` is set (the old folder is then removed at commit).
    pub fn new(target: &Path, replace: bool) -> io::Result<StagedDir> {
        if target.exists() && !replace {
            let empty_dir = target.is_dir() && std::fs::read_dir(target)?.next().is_none();
            if !empty_dir {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "already exists and is not empty; choose another --out or pass --force to replace it",
                ));
            }
        }
        let parent = parent_of(target);
        std::fs::create_dir_all(parent)?;
        recover_leftovers(target)?;
        let prefix = staging_prefix(target)?;
        let staging = builder(&prefix, ".partial", true).tempdir_in(parent)?;
        Ok(StagedDir {
            staging,
            target: target.to_path_buf(),
            replace,
        })
    }

    /// Where to write files now.
    pub fn path(&self) -> &Path {
        self.staging.path()
    }

    /// The final location.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Moves the finished folder into place.
    pub fn commit(self) -> io::Result<PathBuf> {
        let staged = self.staging.keep();
        if self.target.exists() {
            if self.target.is_dir() && std::fs::read_dir(&self.target)?.next().is_none() {
                std::fs::remove_dir(&self.target)?;
            } else if self.replace {
                // Move the old output aside first so the target is never missing a complete data set
                // for longer than two renames.
                let old = tempfile::Builder::new()
                    .prefix(&staging_prefix(&self.target)?)
                    .suffix(".old")
                    .tempdir_in(parent_of(&self.target))?
                    .keep();
                let aside = old.join("previous");
                std::fs::rename(&self.target, &aside)?;
                std::fs::rename(&staged, &self.target)?;
                std::fs::remove_dir_all(&old)?;
                return Ok(self.target);
            }
        }
        if let Err(e) = std::fs::rename(&staged, &self.target) {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(e);
        }
        // Best effort: the data set is in place; a failed flush only weakens power-cut safety.
        let _ = sync_dir(parent_of(&self.target));
        Ok(self.target)
    }
}

/// `.NAME.PID.`: the start of this process's temporary names for `target`.
fn staging_prefix(target: &Path) -> io::Result<String> {
    Ok(format!(".{}.{}.", file_name(target)?, std::process::id()))
}

/// Flushes a folder's entries (files created, renamed or removed in it) to the disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Windows has no folder handles to sync; NTFS journals its renames.
        let _ = dir;
        Ok(())
    }
}

/// Whether process `pid` is known to be gone (Linux: no `/proc/PID`); `false` when unknown.
fn process_gone(pid: u32) -> bool {
    let proc = Path::new("/proc");
    proc.join("self").exists() && !proc.join(pid.to_string()).exists()
}

/// Removes the temporary folders and files that killed processes left for `target` (see
/// [`StagedDir`] and [`write_atomic`]), restoring a replaced output first if `target` is missing.
fn recover_leftovers(target: &Path) -> io::Result<()> {
    let parent = parent_of(target);
    let head = format!(".{}.", file_name(target)?);
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(());
    };
    let mut partial = Vec::new();
    let mut old = Vec::new();
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&head) else {
            continue;
        };
        let kind = if rest.ends_with(".partial") {
            &mut partial
        } else if rest.ends_with(".old") {
            &mut old
        } else if rest.ends_with(".tmp") {
            &mut files
        } else {
            continue;
        };
        let pid = rest.split('.').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| p != std::process::id() && process_gone(p)) {
            kind.push(entry.path());
        }
    }
    for dir in old {
        let previous = dir.join("previous");
        if !target.exists() && previous.exists() {
            std::fs::rename(&previous, target)?;
            tracing::warn!(target = %target.display(), "restored the output an interrupted run was replacing");
        }
        std::fs::remove_dir_all(&dir)?;
    }
    for dir in partial {
        std::fs::remove_dir_all(&dir)?;
        tracing::info!(folder = %dir.display(), "removed the unfinished output of an interrupted run");
    }
    for file in files.into_iter().filter(|f| f.is_file()) {
        std::fs::remove_file(&file)?;
        tracing::info!(file = %file.display(), "removed the unfinished file of an interrupted run");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_removes_what_killed_writers_left_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("g.onnx");
        // PID 999999999 is above Linux's pid_max: that writer is gone.
        let dead = dir.path().join(".g.onnx.999999999.a1b2c3.tmp");
        let mine = dir
            .path()
            .join(format!(".g.onnx.{}.d4e5f6.tmp", std::process::id()));
        let other = dir.path().join(".h.onnx.999999999.a1b2c3.tmp");
        for f in [&dead, &mine, &other] {
            std::fs::write(f, b"half").unwrap();
        }
        write_atomic(&target, b"whole").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");
        if Path::new("/proc/self").exists() {
            assert!(!dead.exists(), "a dead writer's temporary file is removed");
        }
        assert!(mine.exists(), "a live writer's file is left alone");
        assert!(other.exists(), "another target's file is left alone");
    }
}
