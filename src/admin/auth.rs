//! The token check: with `[admin] token` set, every request must carry it, as
//! `Authorization: Bearer <token>` or as the password of HTTP basic auth (any user name, so that a
//! browser can log in). Compared in constant time; the token is never logged.

use crate::config::Secret;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::sync::Arc;
use subtle::ConstantTimeEq as _;

/// The realm browsers show in their login prompt.
const REALM: &str = r#"Basic realm="haier-sync""#;

/// The token requests must carry, if any.
pub(crate) struct TokenCheck {
    token: Option<Secret>,
}

impl TokenCheck {
    pub(crate) fn new(token: Option<Secret>) -> TokenCheck {
        TokenCheck { token }
    }

    /// Whether a request with this `Authorization` header may see the page.
    fn allows(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let Some(given) = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(presented_token)
        else {
            return false;
        };
        bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()))
    }
}

/// The token in an `Authorization` header: a bearer token, or the password of basic auth.
fn presented_token(header: &str) -> Option<String> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_user, password) = text.split_once(':')?;
        return Some(password.to_owned());
    }
    None
}

/// Answers 401 with a basic-auth challenge unless the request carries the token.
pub(crate) async fn require_token(
    State(check): State<Arc<TokenCheck>>,
    request: Request,
    next: Next,
) -> Response {
    if check.allows(request.headers().get(header::AUTHORIZATION)) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, REALM)],
        "This status page needs the token of [admin] token_file.\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(token: Option<&str>, header: Option<&str>) -> bool {
        let header = header.map(|h| HeaderValue::from_str(h).unwrap());
        TokenCheck::new(token.map(Secret::from)).allows(header.as_ref())
    }

    #[test]
    fn without_a_token_every_request_is_allowed() {
        assert!(check(None, None));
    }

    #[test]
    fn the_token_is_taken_as_bearer_or_basic_password() {
        let basic = base64::engine::general_purpose::STANDARD.encode("anyone:s3cret");
        assert!(check(Some("s3cret"), Some("Bearer s3cret")));
        assert!(check(Some("s3cret"), Some(&format!("Basic {basic}"))));
        assert!(!check(Some("s3cret"), None));
        assert!(!check(Some("s3cret"), Some("Bearer s3cre")));
        assert!(!check(Some("s3cret"), Some("Bearer s3crett")));
        let wrong = base64::engine::general_purpose::STANDARD.encode("s3cret:x");
        assert!(!check(Some("s3cret"), Some(&format!("Basic {wrong}"))));
        assert!(!check(Some("s3cret"), Some("Basic !!!")));
    }
}
