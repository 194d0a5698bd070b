//! The statefile's bytes on this host: a VDI on the heartbeat SR, which is either a whole file
//! (`file` SRs: the VDI's location is its path) or a region of a device (`block` SRs:
//! `DEVICE@OFFSET`). Reads bypass the page cache where the filesystem allows it (O_DIRECT), so
//! one host sees what another wrote rather than its own stale copy; every write is synchronous.

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;

/// Alignment O_DIRECT needs for buffers, offsets and lengths.
const ALIGN: usize = 4096;

/// An open statefile.
#[derive(Debug)]
pub struct StatefileDevice {
    file: File,
    base: u64,
    direct: bool,
}

/// Where a VDI's bytes are: `(path, offset)` from its location.
pub fn locate(location: &str) -> (PathBuf, u64) {
    match location.rsplit_once('@') {
        Some((path, offset)) if offset.parse::<u64>().is_ok() => {
            (PathBuf::from(path), offset.parse().expect("checked"))
        }
        _ => (PathBuf::from(location), 0),
    }
}

/// A buffer of `len` bytes starting at an [`ALIGN`]ed address.
struct Aligned {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Aligned {
        let raw = vec![0u8; len + ALIGN];
        let start = (ALIGN - (raw.as_ptr() as usize % ALIGN)) % ALIGN;
        Aligned { raw, start, len }
    }
    fn bytes(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

impl StatefileDevice {
    /// Open the statefile at a VDI location.
    pub fn open(location: &str) -> std::io::Result<StatefileDevice> {
        let (path, base) = locate(location);
        let open = |flags: i32| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(flags)
                .open(&path)
        };
        let direct_flags = rustix::fs::OFlags::DIRECT.bits() as i32;
        let dsync = rustix::fs::OFlags::DSYNC.bits() as i32;
        match open(direct_flags | dsync) {
            Ok(file) if base.is_multiple_of(ALIGN as u64) => Ok(StatefileDevice {
                file,
                base,
                direct: true,
            }),
            // tmpfs and some others refuse O_DIRECT; a shared statefile then relies on the
            // filesystem's own coherence.
            _ => Ok(StatefileDevice {
                file: open(dsync)?,
                base,
                direct: false,
            }),
        }
    }

    /// Read `len` bytes from the start of the statefile.
    pub fn read(&self, len: usize) -> std::io::Result<Vec<u8>> {
        if self.direct {
            let mut buf = Aligned::new(len.next_multiple_of(ALIGN));
            match self.file.read_exact_at(buf.bytes_mut(), self.base) {
                Ok(()) => return Ok(buf.bytes()[..len].to_vec()),
                // Past the end of a small file: read what is there.
                Err(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => {
                    if e.raw_os_error() != Some(rustix::io::Errno::INVAL.raw_os_error()) {
                        return Err(e);
                    }
                }
                Err(_) => {}
            }
        }
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, self.base)?;
        Ok(buf)
    }

    /// Write `bytes` at `offset` from the start of the statefile, durably.
    pub fn write(&self, offset: usize, bytes: &[u8]) -> std::io::Result<()> {
        let at = self.base + offset as u64;
        if self.direct && at.is_multiple_of(512) && bytes.len().is_multiple_of(512) {
            let mut buf = Aligned::new(bytes.len());
            buf.bytes_mut().copy_from_slice(bytes);
            match self.file.write_all_at(buf.bytes(), at) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {}
                Err(e) => return Err(e),
            }
        }
        self.file.write_all_at(bytes, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_name_a_file_or_a_region() {
        assert_eq!(
            locate("/srv/sr/abc.img"),
            (PathBuf::from("/srv/sr/abc.img"), 0)
        );
        assert_eq!(
            locate("/dev/sdb@1048576"),
            (PathBuf::from("/dev/sdb"), 1_048_576)
        );
        assert_eq!(locate("/odd@name.img"), (PathBuf::from("/odd@name.img"), 0));
    }

    #[test]
    fn what_one_handle_writes_another_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sf.img");
        std::fs::write(&path, vec![0u8; 8192]).unwrap();
        let location = path.display().to_string();
        let a = StatefileDevice::open(&location).unwrap();
        let b = StatefileDevice::open(&location).unwrap();
        a.write(512, &[7u8; 512]).unwrap();
        let seen = b.read(1536).unwrap();
        assert_eq!(&seen[512..1024], &[7u8; 512][..]);
        assert!(seen[..512].iter().all(|&x| x == 0));
        // A region of a larger device.
        let region = StatefileDevice::open(&format!("{location}@4096")).unwrap();
        region.write(0, &[9u8; 512]).unwrap();
        assert_eq!(&a.read(4608).unwrap()[4096..], &[9u8; 512][..]);
    }
}
