//! The token check: with a token in `[admin]` (`token`/`token_file`, or named in
//! `[admin.tokens]`), every request must carry one, as `Authorization: Bearer <token>` or as the
//! password of HTTP basic auth (any user name, so that a browser can log in). Compared in
//! constant time with every token; the token is never logged. The request then carries the
//! token's name ([`Caller`]), for the CSRF token of its forms and the audit trail.

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

/// The tokens requests must carry, by name; none means the page is open.
pub(crate) struct TokenCheck {
    tokens: Vec<(String, Secret)>,
}

/// Who a request came from: the name of the token it carried (`None` when the page has no
/// token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    pub(crate) token_name: Option<String>,
}

impl TokenCheck {
    pub(crate) fn new(tokens: Vec<(String, Secret)>) -> TokenCheck {
        TokenCheck { tokens }
    }

    /// Who a request with this `Authorization` header is, if it may see the page.
    fn caller(&self, authorization: Option<&HeaderValue>) -> Option<Caller> {
        if self.tokens.is_empty() {
            return Some(Caller { token_name: None });
        }
        let given = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(presented_token)?;
        // Every token is compared, so that the time taken does not say which one nearly matched.
        let mut found = None;
        for (name, token) in &self.tokens {
            if bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
                found = Some(name.clone());
            }
        }
        found.map(|name| Caller {
            token_name: Some(name),
        })
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
    if let Some(caller) = check.caller(request.headers().get(header::AUTHORIZATION)) {
        let mut request = request;
        request.extensions_mut().insert(caller);
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, REALM)],
        "This status page needs a token of [admin] (token_file or [admin.tokens]).\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(token: Option<&str>, header: Option<&str>) -> bool {
        let header = header.map(|h| HeaderValue::from_str(h).unwrap());
        let tokens = token
            .map(|t| vec![("admin".to_owned(), Secret::from(t))])
            .unwrap_or_default();
        TokenCheck::new(tokens).caller(header.as_ref()).is_some()
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

    #[test]
    fn a_request_is_known_by_the_name_of_its_token() {
        let check = TokenCheck::new(vec![
            ("admin".to_owned(), Secret::from("first-token")),
            ("alice".to_owned(), Secret::from("alices-token")),
        ]);
        let name = |header: &str| {
            check
                .caller(Some(&HeaderValue::from_str(header).unwrap()))
                .and_then(|c| c.token_name)
        };
        assert_eq!(name("Bearer alices-token").as_deref(), Some("alice"));
        assert_eq!(name("Bearer first-token").as_deref(), Some("admin"));
        assert_eq!(name("Bearer bobs-token"), None);
    }
}
