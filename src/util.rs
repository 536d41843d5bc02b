//! Small pure helpers every layer may use: base64, URL redaction, UUIDs, header checks and the
//! text of a panic payload. The bottom of the crate: imports nothing from it.

use std::any::Any;

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

/// Replaces the password (and, if no password, the user) of a URL's userinfo with `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        None => url.to_string(),
        Some(at) => {
            let userinfo = &authority[..at];
            let user = match userinfo.find(':') {
                Some(colon) => format!("{}:***", &userinfo[..colon]),
                None => "***".to_string(),
            };
            format!("{}{}@{}", &url[..scheme_end + 3], user, &rest[at + 1..])
        }
    }
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
        assert_eq!(redact_url("http://token@h/p@x"), "http://***@h/p@x");
        assert_eq!(redact_url("http://h/p?a=b@c"), "http://h/p?a=b@c");
        assert_eq!(redact_url("not a url"), "not a url");
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
    fn uuid_is_version_4() {
        let u = uuid_v4(u128::MAX);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
    }
}
