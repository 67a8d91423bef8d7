//! Who runs a command: the OS user and host, as `user@host`, for `paused_by` and the audit trail.

/// `user@host` of this process. Under `sudo`, the user who ran sudo is named with it
/// (`alice (sudo)@host`), since `root` alone says little.
pub fn operator_name() -> String {
    format!("{}@{}", os_user(), host_name())
}

/// The host this process runs on.
pub fn host_name() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown-host".to_owned())
}

/// The OS user running this process (see [`operator_name`] for `sudo`).
pub fn os_user() -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let user = var("USER").or_else(|| var("LOGNAME"));
    match (user, var("SUDO_USER")) {
        (Some(user), Some(sudo)) if user == "root" => format!("{sudo} (sudo)"),
        (Some(user), _) => user,
        (None, _) => uid_of_this_process()
            .map(|uid| format!("uid {uid}"))
            .unwrap_or_else(|| "unknown-user".to_owned()),
    }
}

/// The real user id, read from the owner of `/proc/self` (no unsafe call needed).
fn uid_of_this_process() -> Option<u32> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_operator_is_named_with_the_host() {
        let name = super::operator_name();
        let (user, host) = name.rsplit_once('@').unwrap();
        assert!(!user.is_empty() && !host.is_empty(), "{name}");
    }
}
