//! The Windows control pipe, [`acl::PIPE_NAME`]: its DACL is
//! [`acl::pipe_sddl`], the first instance is created with
//! `FILE_FLAG_FIRST_PIPE_INSTANCE` (the service fails to start rather than
//! share the name with another server), remote clients are rejected, and
//! one fresh instance always waits for the next client.
//!
//! The caller is read from its process token: the pipe names the client's
//! process (`GetNamedPipeClientProcessId`), whose token gives the user SID
//! (its RID stands in for a uid) and, through `CheckTokenMembership`, the
//! groups: LocalSystem or an elevated Administrator is the superuser, the
//! admin group (`--admin-group`, if it exists) admin, the users' group
//! (`Chantry Users` by default) member. This happens right after the
//! accept, while the client is connected; what it trusts is that the pid
//! still names the process that opened the pipe (a client that hands its
//! handle to another process and exits in that instant could in theory
//! have its pid reused; comparing creation times would guard that but
//! refuse every client after the clock is set back, and impersonation
//! needs a message read first).
//!
//! Also here: [`protect_dir`], the state directory's DACL. This module is
//! the only place of the crate where the Windows API is called directly;
//! every `unsafe` block says why it is sound.

#![allow(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::windows::ffi::OsStrExt as _;
use std::os::windows::fs::OpenOptionsExt as _;
use std::os::windows::io::{AsRawHandle as _, FromRawHandle as _, OwnedHandle};
use std::path::Path;
use std::ptr::{null, null_mut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
use windows_sys::Win32::Foundation::{
    ERROR_INSUFFICIENT_BUFFER, ERROR_NONE_MAPPED, ERROR_PIPE_BUSY, HANDLE, LocalFree,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
    SE_FILE_OBJECT, SetNamedSecurityInfoW,
};
use windows_sys::Win32::Security::{
    ACL, CheckTokenMembership, DACL_SECURITY_INFORMATION, DuplicateToken, GetLengthSid,
    GetSecurityDescriptorDacl, GetTokenInformation, LookupAccountNameW,
    PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID, SECURITY_ATTRIBUTES,
    SID_NAME_USE, SecurityIdentification, SidTypeAlias, SidTypeGroup, SidTypeWellKnownGroup,
    TOKEN_DUPLICATE, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::Storage::FileSystem::SECURITY_IDENTIFICATION;
use windows_sys::Win32::System::Pipes::GetNamedPipeClientProcessId;
use windows_sys::Win32::System::Threading::{
    OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
};
use windows_sys::core::{BOOL, PWSTR};

use super::{Caller, acl};
use crate::service::auth::{Groups, Membership};

/// A connection's byte stream.
pub type Stream = NamedPipeServer;

/// The blocking client's stream: the pipe opened as a file.
pub type ClientStream = std::fs::File;

/// How long a client waits while every pipe instance is busy.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// NUL-terminated UTF-16 of `s`.
fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

/// A failed call's error (`GetLastError`) if `ok` is FALSE.
fn check(ok: BOOL) -> io::Result<()> {
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Owns a handle a call returned, or the call's error if it is null.
fn own(handle: HANDLE) -> io::Result<OwnedHandle> {
    if handle.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-null handle just returned by a successful open call,
    // owned by nobody else; OwnedHandle closes it once.
    Ok(unsafe { OwnedHandle::from_raw_handle(handle) })
}

/// A SID in memory aligned as the system's SID structure needs (4 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sid {
    words: Vec<u32>,
    len: usize,
}

impl Sid {
    fn from_bytes(bytes: &[u8]) -> Sid {
        let words = bytes
            .chunks(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_ne_bytes(w)
            })
            .collect();
        Sid {
            words,
            len: bytes.len(),
        }
    }

    /// For calls that read the SID (they take a mutable pointer, but do not
    /// write through it).
    fn as_psid(&self) -> PSID {
        self.words.as_ptr().cast_mut().cast()
    }

    /// The text form, `S-1-…`.
    fn to_text(&self) -> io::Result<String> {
        let mut text: PWSTR = null_mut();
        // SAFETY: `self` holds a whole SID (from the system or
        // `acl::sid_bytes`); `text` is an out-pointer that receives a
        // LocalAlloc'd, NUL-terminated string on success.
        check(unsafe { ConvertSidToStringSidW(self.as_psid(), &mut text) })?;
        let mut len = 0;
        // SAFETY: `text` is NUL-terminated, so every index up to the NUL
        // is inside the allocation.
        while unsafe { *text.add(len) } != 0 {
            len += 1;
        }
        // SAFETY: `len` UTF-16 units before the NUL, all initialized.
        let s = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(text, len) });
        // SAFETY: `text` was allocated by the system with LocalAlloc and is
        // not used after this.
        unsafe { LocalFree(text.cast()) };
        Ok(s)
    }
}

/// The SID of the group `name`, `None` if no account has that name; an
/// account that is a user, not a group, is an error (it would grant one
/// user what the option means for a group).
fn lookup_group(name: &str) -> io::Result<Option<Sid>> {
    let wname = wide(OsStr::new(name));
    let (mut sid_len, mut dom_len): (u32, u32) = (0, 0);
    let mut kind: SID_NAME_USE = 0;
    // SAFETY: a size query: null buffers with zero lengths, valid
    // out-pointers for the lengths and the kind; `wname` is NUL-terminated.
    let ok = unsafe {
        LookupAccountNameW(
            null(),
            wname.as_ptr(),
            null_mut(),
            &mut sid_len,
            null_mut(),
            &mut dom_len,
            &mut kind,
        )
    };
    if ok == 0 {
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(c) if c == ERROR_NONE_MAPPED as i32 => return Ok(None),
            Some(c) if c == ERROR_INSUFFICIENT_BUFFER as i32 => {}
            _ => return Err(e),
        }
    }
    let mut words = vec![0u32; (sid_len as usize).div_ceil(4)];
    let mut dom = vec![0u16; dom_len as usize];
    // SAFETY: the buffers have the sizes the first call asked for
    // (`words` holds at least `sid_len` bytes, `dom` `dom_len` units).
    check(unsafe {
        LookupAccountNameW(
            null(),
            wname.as_ptr(),
            words.as_mut_ptr().cast(),
            &mut sid_len,
            dom.as_mut_ptr(),
            &mut dom_len,
            &mut kind,
        )
    })?;
    if kind != SidTypeGroup && kind != SidTypeAlias && kind != SidTypeWellKnownGroup {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the account `{name}` is not a group"),
        ));
    }
    Ok(Some(Sid {
        words,
        len: sid_len as usize,
    }))
}

/// A security descriptor built from SDDL text, freed on drop.
struct SecurityDescriptor(PSECURITY_DESCRIPTOR);

impl SecurityDescriptor {
    fn from_sddl(sddl: &str) -> io::Result<SecurityDescriptor> {
        let text = wide(OsStr::new(sddl));
        let mut sd: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: `text` is NUL-terminated and outlives the call; `sd` is
        // an out-pointer; the size out-pointer may be null.
        check(unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                text.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                null_mut(),
            )
        })?;
        Ok(SecurityDescriptor(sd))
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurity-
        // DescriptorW with LocalAlloc, freed once, never used after.
        unsafe { LocalFree(self.0) };
    }
}

/// Creates one instance of the pipe `name` with the DACL `sddl`.
fn create(name: &OsStr, sddl: &str, first: bool) -> io::Result<NamedPipeServer> {
    let sd = SecurityDescriptor::from_sddl(sddl)?;
    let mut sa = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd.0,
        bInheritHandle: 0,
    };
    let mut opts = ServerOptions::new();
    opts.first_pipe_instance(first).reject_remote_clients(true);
    // SAFETY: `sa` is a whole SECURITY_ATTRIBUTES whose descriptor `sd`
    // lives until after the call; CreateNamedPipeW copies what it needs.
    unsafe { opts.create_with_security_attributes_raw(name, (&raw mut sa).cast()) }
}

/// The SIDs that decide a caller's privilege, looked up once at bind.
#[derive(Debug)]
struct GroupSids {
    system: Vec<u8>,
    administrators: Sid,
    admin: Option<Sid>,
    member: Option<Sid>,
}

/// The pipe, with the instance that waits for the next client.
#[derive(Debug)]
pub struct Listener {
    name: OsString,
    sddl: String,
    next: NamedPipeServer,
    sids: Arc<GroupSids>,
}

/// Creates the pipe `path` (normally [`acl::PIPE_NAME`]) for SYSTEM,
/// Administrators and the service's two groups; fails if another server
/// holds the name.
pub fn bind(path: &Path, groups: &Groups) -> io::Result<Listener> {
    let member = lookup_group(&groups.member)?;
    if member.is_none() {
        tracing::warn!(
            group = groups.member,
            "group does not exist: only SYSTEM and Administrators can use the service"
        );
    }
    let admin = lookup_group(&groups.admin)?;
    let text = |s: &Option<Sid>| s.as_ref().map(Sid::to_text).transpose();
    let sddl = acl::pipe_sddl(text(&member)?.as_deref(), text(&admin)?.as_deref())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let name = path.as_os_str().to_owned();
    let next = create(&name, &sddl, true)?;
    tracing::debug!(sddl, "control pipe created");
    Ok(Listener {
        name,
        sddl,
        next,
        sids: Arc::new(GroupSids {
            system: acl::local_system_sid(),
            administrators: Sid::from_bytes(&acl::administrators_sid()),
            admin,
            member,
        }),
    })
}

impl Listener {
    /// The next connection. A client that leaves before it is accepted is
    /// skipped.
    pub async fn accept(&mut self) -> io::Result<Accepted> {
        loop {
            let connected = self.next.connect().await;
            // A fresh instance before anything else, so a client can
            // always connect.
            let fresh = create(&self.name, &self.sddl, false)?;
            let stream = std::mem::replace(&mut self.next, fresh);
            match connected {
                Ok(()) => {
                    return Ok(Accepted {
                        stream,
                        sids: self.sids.clone(),
                    });
                }
                Err(e) => tracing::debug!("pipe client left before it was accepted: {e}"),
            }
        }
    }
}

/// A connection whose caller is not identified yet.
#[derive(Debug)]
pub struct Accepted {
    stream: NamedPipeServer,
    sids: Arc<GroupSids>,
}

impl Accepted {
    /// The caller, from its process token (the groups were looked up when
    /// the pipe was bound).
    pub fn identify(&self, _groups: &Groups) -> io::Result<Caller> {
        let mut pid = 0u32;
        // SAFETY: the handle is the server end of a connected pipe, alive
        // as long as `self`; `pid` is a valid out-pointer.
        check(unsafe { GetNamedPipeClientProcessId(self.stream.as_raw_handle(), &mut pid) })?;
        // SAFETY: a plain call; `own` checks the result for null.
        let process = own(unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) })?;
        let mut token: HANDLE = null_mut();
        // SAFETY: `process` is open with query rights; `token` is an
        // out-pointer, owned below.
        check(unsafe {
            OpenProcessToken(
                process.as_raw_handle(),
                TOKEN_QUERY | TOKEN_DUPLICATE,
                &mut token,
            )
        })?;
        let token = own(token)?;
        let mut ident: HANDLE = null_mut();
        // SAFETY: `token` is open with TOKEN_DUPLICATE; `ident` receives an
        // identification-level impersonation token, owned below.
        check(unsafe {
            DuplicateToken(token.as_raw_handle(), SecurityIdentification, &mut ident)
        })?;
        let ident = own(ident)?;
        let user = token_user(&token)?;
        let is_member = |sid: &Sid| -> io::Result<bool> {
            let mut yes: BOOL = 0;
            // SAFETY: `ident` is an impersonation token with TOKEN_QUERY;
            // `sid` is a whole SID; `yes` is a valid out-pointer.
            check(unsafe { CheckTokenMembership(ident.as_raw_handle(), sid.as_psid(), &mut yes) })?;
            Ok(yes != 0)
        };
        let in_group = |sid: &Option<Sid>| sid.as_ref().map_or(Ok(false), is_member);
        let membership = Membership {
            superuser: user == self.sids.system || is_member(&self.sids.administrators)?,
            admin: in_group(&self.sids.admin)?,
            member: in_group(&self.sids.member)?,
        };
        Ok(Caller {
            uid: acl::sid_rid(&user).unwrap_or(u32::MAX),
            pid: Some(pid),
            privilege: membership.privilege(),
        })
    }

    /// The byte stream.
    pub fn into_stream(self) -> Stream {
        self.stream
    }
}

/// The user SID of `token`, as bytes.
fn token_user(token: &OwnedHandle) -> io::Result<Vec<u8>> {
    let mut len = 0u32;
    // SAFETY: a size query: null buffer of length 0, `len` out-pointer.
    // Its failure (ERROR_INSUFFICIENT_BUFFER) is expected.
    unsafe { GetTokenInformation(token.as_raw_handle(), TokenUser, null_mut(), 0, &mut len) };
    // u64 words: aligned for TOKEN_USER (a pointer and a u32).
    let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
    let size = u32::try_from(buf.len() * 8).unwrap_or(u32::MAX);
    // SAFETY: `buf` holds `size` bytes, 8-byte aligned; `len` out-pointer.
    check(unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            TokenUser,
            buf.as_mut_ptr().cast(),
            size,
            &mut len,
        )
    })?;
    // SAFETY: on success the buffer starts with a TOKEN_USER whose SID
    // pointer points into the same buffer, which is alive here.
    let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    // SAFETY: `sid` is a valid SID inside `buf`.
    let n = unsafe { GetLengthSid(sid) } as usize;
    // SAFETY: the SID's `n` bytes lie inside `buf`.
    Ok(unsafe { std::slice::from_raw_parts(sid.cast::<u8>(), n) }.to_vec())
}

/// Gives the directory `dir` the DACL [`acl::STATE_DIR_SDDL`] (SYSTEM and
/// Administrators only, no inherited entries) and propagates it to what it
/// holds.
pub fn protect_dir(dir: &Path) -> io::Result<()> {
    let sd = SecurityDescriptor::from_sddl(acl::STATE_DIR_SDDL)?;
    let (mut present, mut defaulted): (BOOL, BOOL) = (0, 0);
    let mut dacl: *mut ACL = null_mut();
    // SAFETY: `sd` is a valid descriptor alive for the call; the three
    // out-pointers are valid. `dacl` points into `sd`, which outlives its
    // use below.
    check(unsafe { GetSecurityDescriptorDacl(sd.0, &mut present, &mut dacl, &mut defaulted) })?;
    let path = wide(dir.as_os_str());
    // SAFETY: `path` is NUL-terminated; `dacl` is the DACL inside `sd`
    // (alive); owner, group and SACL are not set (null).
    let err = unsafe {
        SetNamedSecurityInfoW(
            path.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            null_mut(),
            null_mut(),
            dacl,
            null(),
        )
    };
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err as i32));
    }
    Ok(())
}

/// Opens the pipe at `path` for reading and writing (no more access than
/// [`acl::CLIENT_ACCESS`], identification-level impersonation only);
/// waits a little while every instance is busy.
pub fn connect(path: &Path) -> Result<ClientStream, String> {
    let deadline = Instant::now() + BUSY_WAIT;
    loop {
        let opened = std::fs::OpenOptions::new()
            .access_mode(acl::CLIENT_ACCESS)
            .security_qos_flags(SECURITY_IDENTIFICATION)
            .open(path);
        match opened {
            Ok(f) => return Ok(f),
            Err(e)
                if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(
                    "permission denied: the pipe is open to SYSTEM, Administrators and the \
                     service's users' group (`Chantry Users` unless configured otherwise) only; \
                     ask an administrator to add you to it"
                        .into(),
                );
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}
