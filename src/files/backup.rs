//! The files' part of `causerie backup`: the blobs directory copied beside
//! the database's copy. Blobs never change once written (their name is
//! their content's digest), so a link is as good as a copy where the file
//! system allows one, and costs no space.

use std::io;
use std::path::Path;

/// Copies the blobs under `from` into `to` (made; it must not exist),
/// skipping uploads still arriving. Returns how many files it copied.
pub fn copy_files(from: &Path, to: &Path) -> io::Result<u64> {
    std::fs::create_dir(to)?;
    let mut n = 0;
    if !from.exists() {
        return Ok(0);
    }
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            let sub = to.join(&name);
            std::fs::create_dir(&sub)?;
            for blob in std::fs::read_dir(entry.path())? {
                let blob = blob?;
                // object_store's own partial writes start with a '#'.
                let blob_name = blob.file_name();
                if !blob.file_type()?.is_file() || blob_name.to_string_lossy().contains('#') {
                    continue;
                }
                let target = sub.join(&blob_name);
                if std::fs::hard_link(blob.path(), &target).is_err() {
                    std::fs::copy(blob.path(), &target)?;
                }
                n += 1;
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_copied_and_the_spool_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("chat-files");
        std::fs::create_dir_all(from.join("ab")).unwrap();
        std::fs::create_dir_all(from.join(".uploading")).unwrap();
        std::fs::write(from.join("ab/abcd"), b"bytes").unwrap();
        std::fs::write(from.join("ab/abcd.thumb"), b"small").unwrap();
        std::fs::write(from.join(".uploading/x"), b"half").unwrap();
        let to = dir.path().join("copy-files");
        assert_eq!(copy_files(&from, &to).unwrap(), 2);
        assert_eq!(std::fs::read(to.join("ab/abcd")).unwrap(), b"bytes");
        assert!(!to.join(".uploading").exists());
    }
}
