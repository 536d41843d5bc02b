//! Low-priority workers: raising the calling thread's nice value.
//!
//! Linux applies `setpriority(PRIO_PROCESS, tid, …)` to the one thread whose id is given, which
//! makes per-thread niceness possible. Elsewhere this does nothing.

/// Adds `by` to the calling thread's nice value (capped at 19). Returns the new value.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // FFI: gettid/getpriority/setpriority on the calling thread only; no memory is shared.
pub(crate) fn lower_current_thread(by: i32) -> std::io::Result<i32> {
    if by == 0 {
        return Ok(0);
    }
    // SAFETY: these calls take plain integers and touch no memory of ours; errno is per-thread.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        // getpriority can return -1 legitimately: clear errno to tell it from an error.
        *libc::__errno_location() = 0;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        if current == -1 && *libc::__errno_location() != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let target = current.saturating_add(by).min(19);
        if libc::setpriority(libc::PRIO_PROCESS, tid, target) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(target)
    }
}

/// Adds `by` to the calling thread's nice value: not supported on this platform, a no-op.
#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_current_thread(_by: i32) -> std::io::Result<i32> {
    Ok(0)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn lowers_only_the_calling_thread() {
        let before = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let nice_of = |stat: &str| -> i32 {
            // Field 19 (nice), counted after the ")" that closes the command name.
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            rest.split(' ').nth(16).unwrap().parse().unwrap()
        };
        let main_nice = nice_of(&before);
        let child = std::thread::spawn(move || {
            let now = super::lower_current_thread(5).unwrap();
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            (now, nice_of(&stat))
        })
        .join()
        .unwrap();
        assert_eq!(child.0, (main_nice + 5).min(19));
        assert_eq!(child.1, child.0);
        let after = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        assert_eq!(nice_of(&after), main_nice, "the calling thread only");
    }
}
