//! The Windows endpoint's name and the security descriptors of the pipe
//! and of the state directory, as SDDL text. Pure functions, compiled on
//! every system so that the tests run here; the Windows transport hands
//! the text to `ConvertStringSecurityDescriptorToSecurityDescriptorW`.
//!
//! The pipe's DACL: SYSTEM and Administrators full control; the users'
//! group and the admin group read and write but not
//! `FILE_CREATE_PIPE_INSTANCE` (so a member cannot add a server instance
//! of the pipe and intercept other clients); network logons denied;
//! nobody else. `P` protects it from inherited entries.

/// The service's named pipe. Only elevated processes can create a pipe
/// under `ProtectedPrefix\Administrators`, so a user cannot squat the name
/// before the service starts.
pub const PIPE_NAME: &str = r"\\.\pipe\ProtectedPrefix\Administrators\Chantry\chantryd";

/// `FILE_GENERIC_READ`: read data, attributes and extended attributes,
/// read the security descriptor, synchronize.
pub const FILE_GENERIC_READ: u32 = 0x0012_0089;
/// `FILE_WRITE_DATA`.
pub const FILE_WRITE_DATA: u32 = 0x0002;
/// `FILE_APPEND_DATA`, which on a pipe is `FILE_CREATE_PIPE_INSTANCE`.
pub const FILE_CREATE_PIPE_INSTANCE: u32 = 0x0004;
/// `FILE_WRITE_EA`.
pub const FILE_WRITE_EA: u32 = 0x0010;
/// `FILE_WRITE_ATTRIBUTES`.
pub const FILE_WRITE_ATTRIBUTES: u32 = 0x0100;

/// What the groups' entries grant: `FILE_GENERIC_READ | FILE_GENERIC_WRITE`
/// without `FILE_CREATE_PIPE_INSTANCE`.
pub const MEMBER_ACCESS: u32 =
    FILE_GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_EA | FILE_WRITE_ATTRIBUTES;

/// What a client asks for when it opens the pipe (less than
/// [`MEMBER_ACCESS`]: `GENERIC_WRITE` would include
/// `FILE_CREATE_PIPE_INSTANCE` and be refused).
pub const CLIENT_ACCESS: u32 = FILE_GENERIC_READ | FILE_WRITE_DATA;

/// Why a group cannot go into a security descriptor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// Not the text form of a SID (`S-1-…`).
    #[error("{0:?} is not a SID (S-1-…)")]
    NotASid(String),
}

/// Checks that `sid` is the text form of a SID: `S-1-` then dash-separated
/// decimal numbers (so nothing else can be smuggled into the SDDL).
pub fn check_sid(sid: &str) -> Result<&str, AclError> {
    let bad = || AclError::NotASid(sid.to_owned());
    let rest = sid.strip_prefix("S-1-").ok_or_else(bad)?;
    let parts: Vec<&str> = rest.split('-').collect();
    if parts.len() < 2
        || parts.len() > 16
        || parts
            .iter()
            .any(|p| p.is_empty() || p.len() > 10 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    Ok(sid)
}

/// The pipe's security descriptor: `member` and `admin` are the SIDs (text
/// form) of the users' group and of the admin group, each left out if the
/// group does not exist.
pub fn pipe_sddl(member: Option<&str>, admin: Option<&str>) -> Result<String, AclError> {
    let mut s = String::from("D:P(D;;FA;;;NU)(A;;FA;;;SY)(A;;FA;;;BA)");
    for sid in [admin, member].into_iter().flatten() {
        s.push_str(&format!("(A;;0x{MEMBER_ACCESS:x};;;{})", check_sid(sid)?));
    }
    Ok(s)
}

/// The state directory's security descriptor (database and key files):
/// SYSTEM and Administrators only, inherited by everything inside, none
/// inherited from above (ProgramData lets every user read).
pub const STATE_DIR_SDDL: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

/// The binary form of the SID `S-1-{authority}-{subs…}`: revision 1, the
/// count of sub-authorities, the 48-bit authority big-endian, then each
/// sub-authority little-endian.
pub fn sid_bytes(authority: u64, subs: &[u32]) -> Vec<u8> {
    let mut out = vec![1, u8::try_from(subs.len()).unwrap_or(u8::MAX)];
    out.extend_from_slice(&authority.to_be_bytes()[2..]);
    for s in subs {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// `S-1-5-18`, LocalSystem: the account the service runs as.
pub fn local_system_sid() -> Vec<u8> {
    sid_bytes(5, &[18])
}

/// `S-1-5-32-544`, BUILTIN\Administrators (enabled only in an elevated
/// token).
pub fn administrators_sid() -> Vec<u8> {
    sid_bytes(5, &[32, 544])
}

/// The last sub-authority of a binary SID (the RID of an account), if the
/// bytes hold a whole SID with at least one.
pub fn sid_rid(sid: &[u8]) -> Option<u32> {
    let count = usize::from(*sid.get(1)?);
    let start = 8 + 4 * count.checked_sub(1)?;
    let last = sid.get(start..start + 4)?;
    Some(u32::from_le_bytes(last.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipe_is_under_the_administrators_protected_prefix() {
        assert_eq!(
            PIPE_NAME,
            "\\\\.\\pipe\\ProtectedPrefix\\Administrators\\Chantry\\chantryd"
        );
    }

    #[test]
    fn members_cannot_create_pipe_instances() {
        assert_eq!(MEMBER_ACCESS, 0x0012_019b);
        // FILE_GENERIC_WRITE is 0x120116: everything of it but append.
        assert_eq!(
            MEMBER_ACCESS | FILE_CREATE_PIPE_INSTANCE,
            0x0012_0089 | 0x0012_0116
        );
        assert_eq!(MEMBER_ACCESS & FILE_CREATE_PIPE_INSTANCE, 0);
        assert_eq!(CLIENT_ACCESS & !MEMBER_ACCESS, 0);
        assert_eq!(CLIENT_ACCESS, 0x0012_008b);
    }

    #[test]
    fn pipe_dacl_names_exactly_system_administrators_and_the_groups() {
        let member = "S-1-5-21-1004336348-1177238915-682003330-1001";
        let admin = "S-1-5-21-1004336348-1177238915-682003330-1002";
        assert_eq!(
            pipe_sddl(Some(member), Some(admin)).unwrap(),
            "D:P(D;;FA;;;NU)(A;;FA;;;SY)(A;;FA;;;BA)\
             (A;;0x12019b;;;S-1-5-21-1004336348-1177238915-682003330-1002)\
             (A;;0x12019b;;;S-1-5-21-1004336348-1177238915-682003330-1001)"
        );
        assert_eq!(
            pipe_sddl(Some(member), None).unwrap(),
            "D:P(D;;FA;;;NU)(A;;FA;;;SY)(A;;FA;;;BA)\
             (A;;0x12019b;;;S-1-5-21-1004336348-1177238915-682003330-1001)"
        );
        assert_eq!(
            pipe_sddl(None, None).unwrap(),
            "D:P(D;;FA;;;NU)(A;;FA;;;SY)(A;;FA;;;BA)"
        );
    }

    #[test]
    fn only_sids_go_into_the_sddl() {
        assert_eq!(check_sid("S-1-5-32-544"), Ok("S-1-5-32-544"));
        for bad in [
            "",
            "WD",
            "S-1-5",
            "S-1-5-",
            "S-1-5-21-1)(A;;FA;;;WD",
            "S-1-5-x",
            "s-1-5-32-544",
            "S-1-5-32-99999999999",
        ] {
            assert_eq!(
                check_sid(bad),
                Err(AclError::NotASid(bad.to_owned())),
                "{bad:?}"
            );
            assert!(pipe_sddl(Some(bad), None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn well_known_sids_in_binary() {
        assert_eq!(
            administrators_sid(),
            [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 0x02, 0, 0]
        );
        assert_eq!(local_system_sid(), [1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]);
        let user = sid_bytes(5, &[21, 1004336348, 1177238915, 682003330, 1001]);
        assert_eq!(user.len(), 8 + 4 * 5);
        assert_eq!(sid_rid(&user), Some(1001));
        assert_eq!(sid_rid(&local_system_sid()), Some(18));
        assert_eq!(sid_rid(&sid_bytes(5, &[])), None);
        assert_eq!(sid_rid(&user[..user.len() - 1]), None);
        assert_eq!(sid_rid(&[]), None);
    }

    #[test]
    fn the_state_directory_is_system_and_administrators_only() {
        assert_eq!(STATE_DIR_SDDL, "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)");
    }
}
