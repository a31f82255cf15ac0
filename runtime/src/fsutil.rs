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

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let prefix = format!(".{}.", file_name(path)?);
    let mut tmp = builder(&prefix, ".tmp", false).tempfile_in(parent_of(path))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A folder built under a temporary name beside its destination and renamed into place by
/// [`StagedDir::commit`]. Dropped without commit, it is removed.
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
        let prefix = format!(".{}.", file_name(target)?);
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
                    .prefix(&format!(".{}.", file_name(&self.target)?))
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
        Ok(self.target)
    }
}
