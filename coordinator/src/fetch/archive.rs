//! Unpacking downloaded archives for `fetchTarball` and `fetchTree { type = "tarball"; }`:
//! tar, optionally compressed with gzip, xz, bzip2 or zstd (recognised by their magic
//! bytes, not by the URL).

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use super::FetchError;

/// The compression wrapped around a tar stream.
#[derive(Debug, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Xz,
    Bzip2,
    Zstd,
}

fn sniff(head: &[u8]) -> Compression {
    match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Compression::Xz,
        [b'B', b'Z', b'h', ..] => Compression::Bzip2,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => Compression::None,
    }
}

/// Unpacks the archive `file` into the empty directory `dest` and returns the directory
/// that is the result: the archive's single top-level directory if it has exactly one
/// entry and that is a directory, else `dest` itself. `what` names the archive in errors.
pub fn unpack(file: &Path, dest: &Path, what: &str) -> Result<PathBuf, FetchError> {
    let fail = |reason: String| FetchError::Unpack {
        what: what.to_string(),
        reason,
    };
    let mut f = File::open(file)?;
    let mut head = [0u8; 6];
    let n = read_up_to(&mut f, &mut head)?;
    f.rewind()?;
    let input = BufReader::new(f);
    let reader: Box<dyn Read> = match sniff(&head[..n]) {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
        // Streaming, as binary caches' NARs are decompressed.
        Compression::Zstd => tvix_store::compression::Compression::Zstd
            .decoder(input)
            .map_err(|e| fail(format!("not a zstd stream: {e}")))?,
        Compression::Xz => tvix_store::compression::Compression::Xz
            .decoder(input)
            .map_err(|e| fail(format!("not an xz stream: {e}")))?,
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(|e| fail(e.to_string()))? {
        let mut entry = entry.map_err(|e| fail(e.to_string()))?;
        // `unpack_in` refuses entries that would land outside `dest` (`..`, absolute
        // paths, symlinked parents); those are skipped rather than written.
        entry.unpack_in(dest).map_err(|e| {
            fail(format!(
                "{}: {e}",
                entry
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ))
        })?;
    }
    let mut entries = std::fs::read_dir(dest)?.collect::<Result<Vec<_>, _>>()?;
    if entries.is_empty() {
        return Err(fail("the archive is empty".into()));
    }
    if entries.len() == 1 && entries[0].file_type()?.is_dir() {
        return Ok(entries.remove(0).path());
    }
    Ok(dest.to_path_buf())
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn a_single_top_level_directory_is_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.tar.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tarball(&[("pkg/a", b"1"), ("pkg/sub/b", b"2")])).unwrap();
        std::fs::write(&file, gz.finish().unwrap()).unwrap();
        let dest = dir.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        let root = unpack(&file, &dest, "t").unwrap();
        assert_eq!(root, dest.join("pkg"));
        assert_eq!(std::fs::read(root.join("sub/b")).unwrap(), b"2");
    }

    #[test]
    fn several_top_level_entries_keep_the_root_and_garbage_fails() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.tar");
        std::fs::write(&file, tarball(&[("a", b"1"), ("b", b"2")])).unwrap();
        let dest = dir.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        assert_eq!(unpack(&file, &dest, "t").unwrap(), dest);

        std::fs::write(&file, b"\x1f\x8bnot really gzip").unwrap();
        let dest = dir.path().join("out2");
        std::fs::create_dir(&dest).unwrap();
        let err = unpack(&file, &dest, "t").unwrap_err().to_string();
        assert!(err.starts_with("unpacking 't': "), "{err}");
    }
}
