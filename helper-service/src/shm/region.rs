//! A memfd-backed shared mapping, sealed so that neither end can resize it.

use std::ffi::CString;
use std::fmt;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
use nix::sys::stat::fstat;
use nix::unistd::ftruncate;

use super::ShmError;

/// A shared, read-write mapping of a whole memfd.
///
/// Owns the mapping (unmapped on drop) and the fd. The memfd is sealed
/// against growing and shrinking at creation, so a process that maps it can
/// never be made to fault by the other end truncating the file.
///
/// The mapping is only ever accessed through atomics placed over it (see
/// the module documentation of [`crate::shm`]).
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is plain shared memory owned by this value; it is
// only accessed through atomic types, so moving the owner to another thread
// or sharing `&Region` between threads cannot create a data race.
unsafe impl Send for Region {}
// SAFETY: see `Send` above: every access through a shared reference is
// atomic.
unsafe impl Sync for Region {}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("len", &self.len)
            .field("fd", &self.fd)
            .finish()
    }
}

impl Region {
    /// Creates a memfd called `name` (visible in /proc/PID/fd only) of
    /// `len` bytes, zero-filled, maps it shared and seals it against
    /// shrinking, growing and further sealing.
    pub fn create(name: &str, len: usize) -> Result<Region, ShmError> {
        if len == 0 || i64::try_from(len).is_err() {
            return Err(ShmError::BadLength(len as u64));
        }
        let cname = CString::new(name).map_err(|_| ShmError::Name(name.to_owned()))?;
        let fd = memfd_create(
            cname.as_c_str(),
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )
        .map_err(|e| match e {
            nix::errno::Errno::EINVAL => ShmError::Name(name.to_owned()),
            e => ShmError::Memfd(e),
        })?;
        // `len` fits i64: checked above.
        let off = i64::try_from(len).map_err(|_| ShmError::BadLength(len as u64))?;
        ftruncate(&fd, off).map_err(|source| ShmError::Truncate { len, source })?;
        fcntl(
            &fd,
            FcntlArg::F_ADD_SEALS(
                SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL,
            ),
        )
        .map_err(ShmError::Seal)?;
        Self::map(fd, len)
    }

    /// Maps a memfd received from the process that created it. The length
    /// is the file's size; the fd must be sealed against shrinking.
    pub fn attach(fd: OwnedFd) -> Result<Region, ShmError> {
        let seals = fcntl(&fd, FcntlArg::F_GET_SEALS).map_err(|_| ShmError::NotSealed)?;
        if !SealFlag::from_bits_truncate(seals).contains(SealFlag::F_SEAL_SHRINK) {
            return Err(ShmError::NotSealed);
        }
        let st = fstat(&fd).map_err(ShmError::Stat)?;
        let len = usize::try_from(st.st_size)
            .ok()
            .filter(|&l| l > 0)
            .ok_or(ShmError::BadLength(st.st_size as u64))?;
        Self::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> Result<Region, ShmError> {
        let nz = NonZeroUsize::new(len).ok_or(ShmError::BadLength(0))?;
        // SAFETY: a fresh mapping chosen by the kernel (no address hint,
        // no MAP_FIXED), so it cannot alias any existing Rust object. The
        // file is sealed against shrinking (checked by both callers) and
        // is at least `len` bytes long, so every page of the mapping stays
        // backed and accesses never raise SIGBUS.
        let ptr = unsafe {
            mmap(
                None,
                nz,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &fd,
                0,
            )
        }
        .map_err(|source| ShmError::Map { len, source })?;
        Ok(Region {
            ptr: ptr.cast(),
            len,
            fd,
        })
    }

    /// The memfd, to hand to the process at the other end.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a region has at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Unmaps the region and gives back its fd.
    pub fn into_fd(self) -> OwnedFd {
        let me = std::mem::ManuallyDrop::new(self);
        me.unmap();
        // SAFETY: `me` is never used or dropped again, so moving the fd out
        // of it leaves no second owner.
        unsafe { std::ptr::read(&me.fd) }
    }

    /// Base address of the mapping, page aligned, valid for `len()` bytes
    /// for as long as `self` lives. Access it only through atomics.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn unmap(&self) {
        // SAFETY: `ptr`/`len` describe exactly the mapping created in
        // `map`, and it is unmapped once: from `drop` or from `into_fd`,
        // which suppresses `drop`. Every reference into it borrows `self`,
        // so none outlives this call.
        if let Err(e) = unsafe { munmap(self.ptr.cast(), self.len) } {
            tracing::warn!(error = %e, "munmap of shared memory failed");
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        self.unmap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::uio::{pread, pwrite};

    #[test]
    fn create_attach_share_bytes_and_are_sealed() {
        let a = Region::create("chantry-test", 8192).expect("create");
        assert_eq!(a.len(), 8192);
        let fd = a.fd().try_clone_to_owned().expect("dup");
        let b = Region::attach(fd).expect("attach");
        assert_eq!(b.len(), 8192);
        assert_eq!(pwrite(a.fd(), b"hello", 4000).expect("pwrite"), 5);
        let mut buf = [0u8; 5];
        assert_eq!(pread(b.fd(), &mut buf, 4000).expect("pread"), 5);
        assert_eq!(&buf, b"hello");
        // Neither growing nor shrinking is possible any more.
        assert_eq!(ftruncate(b.fd(), 4096), Err(nix::errno::Errno::EPERM));
        assert_eq!(ftruncate(b.fd(), 1 << 20), Err(nix::errno::Errno::EPERM));
    }

    #[test]
    fn attach_refuses_unsealed_fd() {
        let fd = memfd_create(c"unsealed", MFdFlags::MFD_CLOEXEC).expect("memfd");
        ftruncate(&fd, 4096).expect("ftruncate");
        assert!(matches!(Region::attach(fd), Err(ShmError::NotSealed)));
    }

    #[test]
    fn bad_names_and_lengths() {
        assert!(matches!(
            Region::create("a\0b", 4096),
            Err(ShmError::Name(_))
        ));
        assert!(matches!(
            Region::create("zero", 0),
            Err(ShmError::BadLength(0))
        ));
    }
}
