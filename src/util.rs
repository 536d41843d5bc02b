//! Small pure helpers every layer may use: base64, URL redaction, UUIDs, header checks, the
//! text of a panic payload, RFC 3339 timestamps, and the marker of posthaste's own threads.
//! The bottom of the crate: imports nothing from it.

use std::any::Any;
use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    /// True on the threads posthaste runs (workers, the panic hook's sender) and while a hook
    /// or the probe runs on a user's thread. The logging front ends drop every record emitted
    /// where it is set, so that posthaste's own work (and the HTTP stack's diagnostics it
    /// causes) never feeds back into the queue.
    static OWN_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as posthaste's own for the rest of its life. Called first thing
/// by every thread the runtime starts.
pub(crate) fn mark_own_thread() {
    let _ = OWN_THREAD.try_with(|flag| flag.set(true));
}

/// True on a thread posthaste started, or inside an [`OwnScope`].
#[cfg_attr(not(any(feature = "log", feature = "tracing")), allow(dead_code))] // Read by the front ends.
pub(crate) fn is_own_thread() -> bool {
    OWN_THREAD.try_with(Cell::get).unwrap_or(false)
}

/// Marks the calling (user's) thread as posthaste's own until dropped, then restores what it
/// was: for hooks and the probe, which run posthaste's work on a thread that isn't.
pub(crate) struct OwnScope(bool);

impl OwnScope {
    pub(crate) fn enter() -> OwnScope {
        OwnScope(OWN_THREAD.try_with(|flag| flag.replace(true)).unwrap_or(true))
    }
}

impl Drop for OwnScope {
    fn drop(&mut self) {
        let was = self.0;
        let _ = OWN_THREAD.try_with(|flag| flag.set(was));
    }
}

/// Length of [`rfc3339_micros`]'s text: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub(crate) const RFC3339_LEN: usize = 27;

/// `t` as RFC 3339 UTC with microseconds (`2026-12-02T01:37:16.123456Z`), without a date
/// crate and without allocating. Times before 1970 show as the epoch; years past 9999 as 9999
/// (four digits are all RFC 3339 allows).
pub(crate) fn rfc3339_micros(t: SystemTime) -> [u8; RFC3339_LEN] {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs().min(253_402_300_799); // 9999-12-31T23:59:59
    let micros = since.subsec_micros();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3_600, rem / 60 % 60, rem % 60);
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year as u64);
    put(5, 2, u64::from(month));
    put(8, 2, u64::from(day));
    put(11, 2, h);
    put(14, 2, m);
    put(17, 2, s);
    put(20, 6, u64::from(micros));
    out
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`): eras of 400 years (146,097 days), years starting on 1 March so the leap
/// day is the last of the year.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from 1 March
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Standard base64 with padding (RFC 4648), for basic auth and PEM keys.
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (RFC 4648, padding optional); `None` if it is not base64.
pub(crate) fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let trimmed = input.trim_end_matches('=');
    if input.len() - trimmed.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in trimmed.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A single leftover character (6 bits) can't end a valid encoding.
    (bits < 6).then_some(out)
}

/// Redacts the userinfo (`user:password@`) of a URL-like string without parsing it, so that a
/// malformed URL (`htps//u:pw@host`, `htp:/u:pw@`, `u:pw@host`) is as safe to show as a
/// well-formed one. Every place that echoes a URL a user gave (errors, `Debug`, proxies,
/// reports, the probe) goes through here: one rule, one place.
///
/// The rule:
///
/// 1. **The userinfo ends at the last `@` of the string.** Without an `@` the string is
///    returned as it is. Not at the last `@` before the first `/`, `?` or `#`: a password
///    may hold any of them unencoded (`http://u:pa/ss@host`, `http://u:p@ss/x@host`), and
///    only the text after the last `@` is certainly not part of one. The price is
///    over-redaction: an `@` in a path or query hides what precedes it (`http://h/p?to=a@b`
///    shows as `http://***@b`).
/// 2. **Before that `@`, everything from the first `:` on is hidden**: `user:pw@host` →
///    `user:***@host`, `htps//u:pw@host` → `htps//u:***@host`, `htp:/u:pw@` → `htp:***@`.
///    Whatever the string, its text before its first `:` is a scheme or a user name, never
///    a password.
/// 3. **Except after a well-formed `scheme://`**, kept as written, where the user name that
///    follows is shown: `http://u:pw@h` → `http://u:***@h`.
/// 4. **A userinfo without `:` is a token** and hidden whole: `token@h` → `***@h`,
///    `http://token@h` → `http://***@h`. So is any text that rule 2 or 3 would show but
///    that holds an `@` (`http://tok@h:1/p@x` → `http://***@x`): the token may end there.
///
/// An empty userinfo (`http://@h`) stays as it is; redacting a redacted string changes
/// nothing.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return url.to_string();
    };
    let (head, tail) = url.split_at(at);
    let shown = match head.find(':') {
        // Rule 3: `scheme://`, then the user name up to the userinfo's first `:`.
        Some(colon) if is_scheme(head[..colon].trim_start()) && well_formed_slashes(&head[colon + 1..]) => {
            let prefix = &head[..colon + 3];
            let userinfo = &head[colon + 3..];
            match userinfo.find(':') {
                _ if userinfo.is_empty() => return url.to_string(),
                Some(c) if !userinfo[..c].contains('@') => format!("{prefix}{}:***", &userinfo[..c]),
                _ => format!("{prefix}***"),
            }
        }
        // Rule 2.
        Some(colon) if !head[..colon].contains('@') => format!("{}:***", &head[..colon]),
        // Rule 4.
        _ if head.is_empty() => return url.to_string(),
        _ => "***".to_string(),
    };
    format!("{shown}{tail}")
}

/// `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986).
pub(crate) fn is_scheme(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// `//` and not a third `/`: what follows a scheme's `:` in a well-formed URL.
fn well_formed_slashes(s: &str) -> bool {
    s.starts_with("//") && !s[2..].starts_with('/')
}

/// A request key: 128 random bits as a version-4 UUID (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
pub(crate) fn uuid_v4(random: u128) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = random.to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

/// Checks an HTTP header name (an RFC 9110 token) and value (visible ASCII, spaces and tabs:
/// no CR, LF or other control characters). The one rule for every header posthaste sends; the
/// transport relies on it when it builds requests.
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err("not a valid header name".into());
    }
    if !value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        return Err("value contains CR, LF or other control characters".into());
    }
    Ok(())
}

/// The message of a panic payload (`&str` or `String`; anything else is named as such).
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        for n in 0..40u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            let text = base64(&bytes);
            assert_eq!(base64_decode(&text).as_deref(), Some(&bytes[..]), "{text}");
            assert_eq!(base64_decode(text.trim_end_matches('=')).as_deref(), Some(&bytes[..]));
        }
        for bad in ["a", "ab$d", "abcd===", "ab-_"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }

    #[test]
    fn redacts_password_and_bare_token() {
        assert_eq!(redact_url("http://u:secret@h:1/p"), "http://u:***@h:1/p");
        assert_eq!(redact_url("https://token@h/"), "https://***@h/");
        assert_eq!(redact_url("socks5h://u:pw@[::1]:1080"), "socks5h://u:***@[::1]:1080");
        assert_eq!(redact_url("http://:pw@h"), "http://:***@h");
        assert_eq!(redact_url("http://u:@h"), "http://u:***@h");
        assert_eq!(redact_url("http://@h"), "http://@h");
        assert_eq!(redact_url("http://h:1/p?a=b"), "http://h:1/p?a=b");
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(redact_url(""), "");
    }

    #[test]
    fn userinfo_ends_at_the_last_at() {
        // A password holding `/`, `?`, `#` or `@` unencoded.
        assert_eq!(redact_url("http://u:pa/ss@host/p"), "http://u:***@host/p");
        assert_eq!(redact_url("http://u:pa?ss@host"), "http://u:***@host");
        assert_eq!(redact_url("http://u:pa#ss@host"), "http://u:***@host");
        assert_eq!(redact_url("http://u:p@ss/word@host:1"), "http://u:***@host:1");
        assert_eq!(redact_url("http://u:12/34@host"), "http://u:***@host");
        // The price: an `@` in a path or query hides what precedes it.
        assert_eq!(redact_url("http://token@h/p@x"), "http://***@x");
        assert_eq!(redact_url("http://h/p?a=b@c"), "http://***@c");
        assert_eq!(redact_url("http://h:1/p?x=a:b@c"), "http://h:***@c");
        // What would be shown as a user name holds an `@`: it may end a token.
        assert_eq!(redact_url("https://tok@h:1/p@x"), "https://***@x");
        assert_eq!(redact_url("tok@h:1/p@x"), "***@x");
    }

    #[test]
    fn malformed_prefixes() {
        assert_eq!(redact_url("htps//u:S3CRET@host"), "htps//u:***@host");
        assert_eq!(redact_url("//u:pw@host"), "//u:***@host");
        assert_eq!(redact_url("http//u:pw@host"), "http//u:***@host");
        assert_eq!(redact_url("http:/u:pw@host"), "http:***@host");
        assert_eq!(redact_url("htp:/user:SECRETPW@"), "htp:***@");
        assert_eq!(redact_url("http:///u:pw@host"), "http:***@host");
        assert_eq!(redact_url("Pwtok//en@host"), "***@host");
        assert_eq!(redact_url("user:pw@host:1"), "user:***@host:1");
        assert_eq!(redact_url("user:pa:ss@host"), "user:***@host");
        assert_eq!(redact_url("user:pw@"), "user:***@");
        assert_eq!(redact_url("token@host"), "***@host");
        assert_eq!(redact_url("http:u:pw@host"), "http:***@host");
        assert_eq!(redact_url("user:/pa:ss@host"), "user:***@host");
        // `word://` is read as a scheme, not as a user name and a password starting with `//`.
        assert_eq!(redact_url("user://pa:ss@host"), "user://pa:***@host");
        assert_eq!(redact_url("  http://u:pw@h "), "  http://u:***@h ");
        assert_eq!(redact_url("http://u:p w@h"), "http://u:***@h");
        assert_eq!(redact_url("http://u:pw@bad host:port"), "http://u:***@bad host:port");
        assert_eq!(redact_url("http://u:p%2Fw@h"), "http://u:***@h");
        assert_eq!(redact_url("u:pw@h://x"), "u:***@h://x");
        assert_eq!(redact_url("ftp://user:hunter2@host/"), "ftp://user:***@host/");
    }

    #[test]
    fn redaction_is_idempotent_and_keeps_no_password() {
        for url in [
            "http://u:pa/ss@host/p",
            "htp:/user:pw@",
            "htps//u:pw@h",
            "user:pw@h",
            "token@h",
            "http://h/p?a=b@c",
            "  x y:z@w",
            "::@@",
            "@",
            "a@b@c",
        ] {
            let once = redact_url(url);
            assert_eq!(redact_url(&once), once, "{url}");
        }
        // Whatever precedes the last `@`, a password after a `:` never survives.
        for url in
            ["a:pw@b", "a/b:pw@c", "a b:pw@c", "1a://b:pw@c", "a:b:pw@c", "é:pw@c", "a:/b:pw@c", "pw@x:y@z"]
        {
            assert!(!redact_url(url).contains("pw"), "{url} -> {}", redact_url(url));
        }
    }

    #[test]
    fn header_rules() {
        assert!(check_header("X-Api-Key", "abc def\tghi").is_ok());
        assert!(check_header("", "v").is_err());
        assert!(check_header("Bad Name", "v").is_err());
        assert!(check_header("X-Ok", "a\r\nInjected: 1").is_err());
        assert!(check_header("X-Ok", "caf\u{e9}").is_err());
        assert!(check_header("X-Ok", "\u{7f}").is_err());
    }

    #[test]
    fn civil_from_days_known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(10_957), (2000, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29)); // a leap day of a century divisible by 400
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(47_540), (2100, 2, 28)); // 2100 is not a leap year
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_424), (2025, 12, 2));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
    }

    #[test]
    fn civil_from_days_walks_every_day_in_order() {
        // Day by day from 1969 to 2401: each date follows the one before.
        let month_len = |y: i64, m: u32| match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut prev = civil_from_days(-365);
        assert_eq!(prev, (1969, 1, 1));
        for days in -364..157_000 {
            let (y, m, d) = prev;
            let expected = if d < month_len(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            let got = civil_from_days(days);
            assert_eq!(got, expected, "day {days}");
            prev = got;
        }
    }

    #[test]
    fn rfc3339_known_instants() {
        use std::time::Duration;
        let at = |secs: u64, micros: u32| {
            let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(u64::from(micros));
            String::from_utf8(rfc3339_micros(t).to_vec()).unwrap()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 1), "2000-02-29T00:00:00.000001Z");
        assert_eq!(at(1_234_567_890, 123_456), "2009-02-13T23:31:30.123456Z");
        assert_eq!(at(1_764_639_436, 999_999), "2025-12-02T01:37:16.999999Z");
        assert_eq!(at(4_102_444_799, 500_000), "2099-12-31T23:59:59.500000Z");
        // Nanoseconds are truncated, not rounded.
        let t = UNIX_EPOCH + Duration::new(1, 999_999_999);
        assert_eq!(&rfc3339_micros(t), b"1970-01-01T00:00:01.999999Z");
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(&rfc3339_micros(before), b"1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn own_scope_restores_the_marker() {
        std::thread::spawn(|| {
            assert!(!is_own_thread());
            {
                let _scope = OwnScope::enter();
                assert!(is_own_thread());
                {
                    let _inner = OwnScope::enter();
                }
                assert!(is_own_thread(), "an inner scope restores, not clears");
            }
            assert!(!is_own_thread());
            mark_own_thread();
            assert!(is_own_thread());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn uuid_is_version_4() {
        let u = uuid_v4(u128::MAX);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
    }
}
