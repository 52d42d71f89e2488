//! Who may do what: the caller's uid and groups (from the socket's peer
//! credentials and the group database) against the service's two groups.
//! On Windows the transport reads the same three facts from the caller's
//! token ([`Membership`]); the rules are the same everywhere.

use chantry_core::ipc::{Privilege, Request};
#[cfg(unix)]
use nix::unistd::{Gid, Group, Uid, User};

/// What the system vouches for about a caller, on any platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Membership {
    /// root on Unix; SYSTEM or an elevated Administrator on Windows.
    pub superuser: bool,
    /// A member of the admin group.
    pub admin: bool,
    /// A member of the users' group.
    pub member: bool,
}

impl Membership {
    /// The privilege these facts grant: the superuser and the admin group
    /// are admins, the users' group members, anyone else nothing.
    pub fn privilege(self) -> Privilege {
        if self.superuser || self.admin {
            Privilege::Admin
        } else if self.member {
            Privilege::Member
        } else {
            Privilege::None
        }
    }
}

/// The service's groups, resolved at start.
#[derive(Debug, Clone)]
pub struct Groups {
    /// Name of the users' group (`chantry`).
    pub member: String,
    /// Its gid, if the group exists.
    pub member_gid: Option<u32>,
    /// Name of the admin group (`chantry-admin`).
    pub admin: String,
    /// Its gid, if the group exists.
    pub admin_gid: Option<u32>,
}

impl Groups {
    /// Looks both groups up by name; a missing group grants nothing.
    /// (Windows has no gids: its transport looks the groups' SIDs up.)
    pub fn resolve(member: &str, admin: &str) -> Groups {
        #[cfg(unix)]
        let gid = |name: &str| {
            Group::from_name(name)
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw())
        };
        #[cfg(not(unix))]
        let gid = |_: &str| None;
        Groups {
            member: member.to_owned(),
            member_gid: gid(member),
            admin: admin.to_owned(),
            admin_gid: gid(admin),
        }
    }

    /// The privilege of a caller with `uid`, primary `gid` and the
    /// supplementary groups the group database gives its user.
    #[cfg(unix)]
    pub fn privilege(&self, uid: u32, gid: u32) -> Privilege {
        if uid == 0 {
            return Privilege::Admin;
        }
        let groups = groups_of(uid, gid, [self.admin_gid, self.member_gid]);
        let has = |g: Option<u32>| g.is_some_and(|g| groups.contains(&g));
        Membership {
            superuser: false,
            admin: has(self.admin_gid),
            member: has(self.member_gid),
        }
        .privilege()
    }

    /// The sentence that refuses a caller at connect.
    pub fn refuse_connect(&self, uid: u32) -> String {
        format!(
            "uid {uid} may not use chantryd: it needs membership in the `{}` group (or `{}`, or root)",
            self.member, self.admin
        )
    }

    /// `None` if `have` allows `request`, else the refusal sentence naming
    /// the group needed.
    pub fn authorize(&self, have: Privilege, request: &Request) -> Option<String> {
        let need = request.needs();
        if have >= need {
            return None;
        }
        Some(match need {
            Privilege::Admin => format!(
                "`{}` needs root or membership in the `{}` group",
                request.op(),
                self.admin
            ),
            Privilege::Member | Privilege::None => format!(
                "`{}` needs membership in the `{}` group",
                request.op(),
                self.member
            ),
        })
    }
}

/// `gid` and the groups the database lists for `uid`'s user.
#[cfg(all(unix, not(target_vendor = "apple")))]
fn groups_of(uid: u32, gid: u32, _wanted: [Option<u32>; 2]) -> Vec<u32> {
    let mut out = vec![gid];
    if let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid))
        && let Ok(name) = std::ffi::CString::new(user.name)
        && let Ok(list) = nix::unistd::getgrouplist(&name, Gid::from_raw(gid))
    {
        out.extend(list.into_iter().map(Gid::as_raw));
    }
    out
}

/// `gid` and those of the `wanted` groups whose member list names `uid`'s
/// user (macOS has no getgrouplist in nix; a group's members come from
/// the directory service through getgrgid).
#[cfg(target_vendor = "apple")]
fn groups_of(uid: u32, gid: u32, wanted: [Option<u32>; 2]) -> Vec<u32> {
    let mut out = vec![gid];
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return out;
    };
    for g in wanted.into_iter().flatten() {
        if let Ok(Some(group)) = Group::from_gid(Gid::from_raw(g))
            && group.mem.contains(&user.name)
        {
            out.push(g);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Groups {
        Groups {
            member: "chantry".into(),
            member_gid: Some(4242_0001),
            admin: "chantry-admin".into(),
            admin_gid: Some(4242_0002),
        }
    }

    #[test]
    fn membership_maps_to_privilege_on_every_platform() {
        let m = |superuser, admin, member| {
            Membership {
                superuser,
                admin,
                member,
            }
            .privilege()
        };
        assert_eq!(m(false, false, false), Privilege::None);
        assert_eq!(m(false, false, true), Privilege::Member);
        assert_eq!(m(false, true, false), Privilege::Admin);
        assert_eq!(m(false, true, true), Privilege::Admin);
        assert_eq!(m(true, false, false), Privilege::Admin);
        assert_eq!(Membership::default().privilege(), Privilege::None);
    }

    #[test]
    fn root_is_admin_and_strangers_are_nothing() {
        let g = groups();
        assert_eq!(g.privilege(0, 0), Privilege::Admin);
        // A uid with no passwd entry and an unrelated primary gid.
        assert_eq!(g.privilege(4242_0100, 4242_0100), Privilege::None);
        assert_eq!(g.privilege(4242_0100, 4242_0001), Privilege::Member);
        assert_eq!(g.privilege(4242_0100, 4242_0002), Privilege::Admin);
    }

    #[test]
    fn refusals_name_the_group_needed() {
        let g = groups();
        let import = Request::Remove { name: "x".into() };
        assert_eq!(
            g.authorize(Privilege::Member, &import).as_deref(),
            Some("`remove` needs root or membership in the `chantry-admin` group")
        );
        assert_eq!(g.authorize(Privilege::Admin, &import), None);
        let list = Request::List;
        assert_eq!(
            g.authorize(Privilege::None, &list).as_deref(),
            Some("`list` needs membership in the `chantry` group")
        );
        assert_eq!(g.authorize(Privilege::Member, &list), None);
        assert!(g.refuse_connect(1000).contains("`chantry` group"));
    }

    #[test]
    fn a_missing_group_grants_nothing() {
        let g = Groups {
            member_gid: None,
            admin_gid: None,
            ..groups()
        };
        assert_eq!(g.privilege(4242_0100, 4242_0001), Privilege::None);
    }
}
