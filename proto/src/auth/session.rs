//! The web UI's login: a [`Session`] cookie signed with the cluster secret, standing for
//! a [`Caller`] on the UI's routes only (see the header of [`crate::auth`]).

use super::{same_bytes, Access, Caller, Secret};
use axum::extract::Request;
use axum::http::header;
use std::time::{SystemTime, UNIX_EPOCH};

/// The web UI's login cookie (see the module's header).
pub const SESSION_COOKIE: &str = "hearth_session";

/// How long a UI session lasts: 12 hours.
pub const SESSION_SECS: u64 = 12 * 3600;

/// A browser's login to the web UI, from its [`SESSION_COOKIE`]: who it stands for, and
/// the CSRF token its forms must carry.
#[derive(Clone, Debug)]
pub struct Session {
    pub caller: Caller,
    csrf: String,
}

impl Session {
    /// The CSRF token of this session's forms (a hidden field).
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether a form's CSRF token is this session's, in time that depends only on its
    /// length.
    pub fn csrf_ok(&self, presented: &str) -> bool {
        same_bytes(self.csrf.as_bytes(), presented.as_bytes())
    }
}

impl Access {
    /// HMAC-SHA256 of `what` under the secret, in hex.
    fn mac(&self, what: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.secret.0.as_bytes());
        let tag = ring::hmac::sign(&key, what.as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A new session cookie's value for `caller`, valid [`SESSION_SECS`] from `now`
    /// (seconds since the epoch): `MAC.EXPIRES.NONCE.WHO` (`*` for the secret, else the
    /// token's name).
    pub fn open_session(&self, caller: &Caller, now: u64) -> std::io::Result<String> {
        let nonce = &Secret::random_text()?[..32];
        let who = caller.token.as_deref().unwrap_or("*");
        let body = format!("{}.{nonce}.{who}", now + SESSION_SECS);
        Ok(format!("{}.{body}", self.mac(&format!("session.{body}"))))
    }

    /// The session a cookie's `value` stands for at `now`: signed with this secret, not
    /// expired, its token still listed.
    pub fn session(&self, value: &str, now: u64) -> Option<Session> {
        let (mac, body) = value.split_once('.')?;
        if !same_bytes(
            self.mac(&format!("session.{body}")).as_bytes(),
            mac.as_bytes(),
        ) {
            return None;
        }
        let mut parts = body.splitn(3, '.');
        let expires: u64 = parts.next()?.parse().ok()?;
        let (nonce, who) = (parts.next()?, parts.next()?);
        if now >= expires {
            return None;
        }
        let caller = match who {
            "*" => Caller { token: None },
            name => self.tokens.iter().any(|(n, _)| n == name).then(|| Caller {
                token: Some(name.to_owned()),
            })?,
        };
        Some(Session {
            caller,
            csrf: self.mac(&format!("csrf.{nonce}")),
        })
    }
}

/// The session of `req`'s [`SESSION_COOKIE`], if it holds a valid one.
pub(super) fn session_of(access: &Access, req: &Request) -> Option<Session> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
        .find_map(|value| access.session(value, now))
}

/// The web UI's routes: the only ones a [`Session`] counts on.
pub(super) fn ui_route(path: &str) -> bool {
    path == "/" || path.starts_with("/ui/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tests::secret;

    #[test]
    fn a_ui_session_stands_for_its_caller_until_it_lapses() {
        let access = Access::new(secret('s'), vec![("alice".into(), secret('a'))]);
        let alice = Caller {
            token: Some("alice".into()),
        };
        let admin = access
            .open_session(&Caller { token: None }, 1000)
            .expect("session");
        let own = access.open_session(&alice, 1000).expect("session");
        let s = access.session(&own, 1001).expect("a valid session");
        assert_eq!(s.caller, alice);
        assert_eq!(
            access.session(&admin, 1001).expect("valid").caller.token,
            None
        );
        // One CSRF token per session, checked whole.
        let again = access.session(&own, 2000).expect("valid");
        assert!(again.csrf_ok(s.csrf()) && s.csrf().len() == 64);
        assert!(!s.csrf_ok(access.session(&admin, 1001).expect("valid").csrf()));
        assert!(!s.csrf_ok("") && !s.csrf_ok(&s.csrf()[1..]));
        // Lapsed, forged, another cluster's, a token no longer listed: no session.
        assert!(access.session(&own, 1000 + SESSION_SECS).is_none());
        let forged = format!("{}*", own.strip_suffix("alice").expect("who last"));
        assert!(access.session(&forged, 1001).is_none());
        let longer = own.replacen(".", ".9", 1);
        assert!(access.session(&longer, 1001).is_none());
        assert!(access.session("", 1001).is_none());
        let other = Access::new(secret('t'), vec![("alice".into(), secret('a'))]);
        assert!(other.session(&own, 1001).is_none());
        let revoked = Access::new(secret('s'), vec![]);
        assert!(revoked.session(&own, 1001).is_none());
        assert!(revoked.session(&admin, 1001).is_some());
    }
}
