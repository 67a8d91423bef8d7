//! The page's actions, when `[admin] allow_actions = true` and a token is set: pause, resume
//! and trigger a job, retry dead orders. Each is a POST that must carry the CSRF token of its
//! caller's credential (an HMAC-SHA256 of the token's name under a key drawn at start, checked in
//! constant time) and must not come from another site (`Sec-Fetch-Site`, `Origin`). Each goes
//! through the owner the command line goes through (`cli::pause`, `cli::trigger`,
//! `orders::manual`), is written to the audit trail under the token's name (`admin:alice`), and
//! answers 303 back to the page with a one-line result (Post/Redirect/Get). The result travels in
//! the query string signed with the same key, so a link cannot make the page say something.

use super::auth::Caller;
use super::pages::path_segment;
use super::Admin;
use crate::audit::{self, AuditEntry, AuditOutcome};
use crate::cli::trigger::Asked;
use crate::control::operator;
use crate::orders::{retry_dead_orders, retry_order, DeadFilter, Retried};
use axum::http::{header, HeaderMap};
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The key of this process's CSRF tokens and result signatures: drawn at start, never shown, so
/// a token is worth nothing to another process or after a restart (a form is simply reloaded).
pub(crate) struct Keys {
    key: [u8; 32],
}

impl Keys {
    pub(crate) fn new() -> Keys {
        Keys { key: rand::random() }
    }

    fn mac(&self, purpose: &str, text: &str) -> HmacSha256 {
        // Invariant: HMAC takes a key of any length, so `new_from_slice` cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(text.as_bytes());
        mac
    }

    fn sign(&self, purpose: &str, text: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.mac(purpose, text).finalize().into_bytes())
    }

    /// Whether `signature` is [`Keys::sign`]'s for `purpose` and `text` (constant time).
    fn verify(&self, purpose: &str, text: &str, signature: &str) -> bool {
        let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature.trim()) else {
            return false;
        };
        self.mac(purpose, text).verify_slice(&bytes).is_ok()
    }

    /// The CSRF token of the forms shown to `caller`.
    pub(crate) fn csrf_token(&self, caller: &Caller) -> String {
        self.sign("csrf", caller.token_name.as_deref().unwrap_or(""))
    }

    fn csrf_matches(&self, caller: &Caller, given: &str) -> bool {
        self.verify("csrf", caller.token_name.as_deref().unwrap_or(""), given)
    }
}

/// How an action ended, for the line shown after the redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done,
    Refused,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Refused => "refused",
        }
    }
}

/// The result line of an action, as it comes back in the query string of the page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NoticeQuery {
    notice: Option<String>,
    outcome: Option<String>,
    sig: Option<String>,
}

/// What a page shows besides its data: the result of the action just taken, and the CSRF token
/// of its forms (`None` when actions are off, and then no form is drawn).
pub(crate) struct View {
    pub(crate) notice: Option<(Outcome, String)>,
    pub(crate) csrf: Option<String>,
}

impl View {
    pub(crate) fn new(admin: &Admin, caller: &Caller, query: NoticeQuery) -> View {
        let notice = match (query.notice, query.outcome, query.sig) {
            (Some(text), Some(outcome), Some(sig))
                if admin.keys.verify("notice", &format!("{outcome}\n{text}"), &sig) =>
            {
                let outcome = if outcome == Outcome::Done.as_str() {
                    Outcome::Done
                } else {
                    Outcome::Refused
                };
                Some((outcome, text))
            }
            _ => None,
        };
        View {
            notice,
            csrf: admin.actions_allowed().then(|| admin.keys.csrf_token(caller)),
        }
    }

    /// The result line, if any.
    pub(crate) fn notice(&self) -> Markup {
        html! {
            @match &self.notice {
                Some((Outcome::Done, text)) => div.ok.notice { (text) },
                Some((Outcome::Refused, text)) => div.alert.notice { (text) },
                None => {},
            }
        }
    }

    /// A POST form to `action` with the CSRF token, around `fields`; nothing when actions are off.
    pub(crate) fn form(&self, action: &str, fields: Markup) -> Markup {
        html! {
            @if let Some(csrf) = &self.csrf {
                form.action method="post" action=(action) {
                    input type="hidden" name="csrf" value=(csrf);
                    (fields)
                }
            }
        }
    }
}

/// The fields the action forms post; each action reads those it needs.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ActionForm {
    pub(crate) csrf: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) catch_up: Option<String>,
    pub(crate) force: Option<String>,
    pub(crate) so_id: Option<String>,
}

/// Why a POST is refused before it does anything (answered 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Forbidden {
    ActionsOff,
    CrossSite(String),
    BadCsrf,
}

impl Forbidden {
    pub(crate) fn message(&self) -> String {
        match self {
            Forbidden::ActionsOff => "Actions are off on this status page: they need [admin] \
                allow_actions = true and a token (token_file or [admin.tokens]) in jobs.toml."
                .to_owned(),
            Forbidden::CrossSite(why) => format!(
                "This form was sent from another site ({why}); actions are taken only from the \
                 status page itself. Nothing was changed."
            ),
            Forbidden::BadCsrf => "This form's CSRF token is missing or not valid for your token \
                (the page may be older than the daemon's last start): reload the page and try \
                again. Nothing was changed."
                .to_owned(),
        }
    }
}

/// The checks every action passes first: actions on, a same-site request, a valid CSRF token.
pub(crate) fn guard(
    admin: &Admin,
    caller: &Caller,
    headers: &HeaderMap,
    form: &ActionForm,
) -> Result<(), Forbidden> {
    if !admin.actions_allowed() || caller.token_name.is_none() {
        return Err(Forbidden::ActionsOff);
    }
    same_site(headers).map_err(Forbidden::CrossSite)?;
    let given = form.csrf.as_deref().unwrap_or("");
    if given.is_empty() || !admin.keys.csrf_matches(caller, given) {
        return Err(Forbidden::BadCsrf);
    }
    Ok(())
}

/// Refuses a request a browser says came from another site: `Sec-Fetch-Site` other than
/// `same-origin` or `none`, or an `Origin` whose host is not the `Host` the request was sent
/// to. A client that sends neither (curl, a script) passes; its CSRF token is still checked.
fn same_site(headers: &HeaderMap) -> Result<(), String> {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|v| v.to_str().map(str::trim).unwrap_or("(not text)").to_owned())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        if !site.eq_ignore_ascii_case("same-origin") && !site.eq_ignore_ascii_case("none") {
            return Err(format!("Sec-Fetch-Site: {site}"));
        }
    }
    if let Some(origin) = text(header::ORIGIN) {
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .map(|rest| rest.trim_end_matches('/'));
        let host = text(header::HOST);
        let same = match (authority, host.as_deref()) {
            (Some(authority), Some(host)) => authority.eq_ignore_ascii_case(host),
            _ => false,
        };
        if !same {
            return Err(format!(
                "Origin: {origin}, Host: {}",
                host.as_deref().unwrap_or("(none)")
            ));
        }
    }
    Ok(())
}

/// Where to go after an action, with its result line signed.
pub(crate) fn back_to(admin: &Admin, path: &str, outcome: Outcome, text: &str) -> String {
    let sig = admin
        .keys
        .sign("notice", &format!("{}\n{text}", outcome.as_str()));
    format!(
        "{path}?outcome={}&notice={}&sig={sig}",
        outcome.as_str(),
        path_segment(text)
    )
}

/// The name the audit trail and `paused_by` give to the caller: `admin:alice`.
fn actor(caller: &Caller) -> String {
    format!("admin:{}", caller.token_name.as_deref().unwrap_or("-"))
}

/// Writes the audit row of an action; a failure to write it is logged and said in the result.
async fn audit(
    admin: &Admin,
    caller: &Caller,
    command: &str,
    arguments: serde_json::Value,
    outcome: &anyhow::Result<(Outcome, String)>,
) -> Option<String> {
    let (outcome, detail) = match outcome {
        Ok((Outcome::Done, text)) => (AuditOutcome::Ok, Some(text.clone())),
        Ok((Outcome::Refused, text)) => (AuditOutcome::Refused, Some(text.clone())),
        Err(error) => (AuditOutcome::Failed, Some(format!("{error:#}"))),
    };
    let entry = AuditEntry {
        command: command.to_owned(),
        arguments,
        outcome,
        detail,
    };
    match audit::record_as(&admin.db, &admin.config(), entry, actor(caller)).await {
        Ok(()) => None,
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                command,
                "Failed to record a status-page action in the audit trail"
            );
            Some(" (it is not in the audit trail: writing the row failed)".to_owned())
        }
    }
}

/// Runs an action, audits it, and gives the result line (errors become a refused line naming
/// what failed; they are logged once, here).
async fn audited(
    admin: &Admin,
    caller: &Caller,
    command: &str,
    arguments: serde_json::Value,
    result: anyhow::Result<(Outcome, String)>,
) -> (Outcome, String) {
    let missing = audit(admin, caller, command, arguments, &result).await;
    let (outcome, mut text) = match result {
        Ok(done) => done,
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                command,
                "A status-page action failed"
            );
            (Outcome::Refused, format!("{command} failed: {error:#}"))
        }
    };
    if let Some(missing) = missing {
        text.push_str(&missing);
    }
    (outcome, text)
}

/// The job actions: `pause`, `resume`, `trigger`. Answers where to go.
pub(crate) async fn job_action(
    admin: &Admin,
    caller: &Caller,
    job: &str,
    action: &str,
    form: &ActionForm,
) -> String {
    let checked = |field: &Option<String>| field.as_deref().is_some_and(|v| !v.is_empty());
    let by = format!("{}@{}", actor(caller), operator::host_name());
    let (command, arguments, result) = match action {
        "pause" => {
            let reason = form.reason.as_deref().unwrap_or("").trim().to_owned();
            let arguments = json!({ "job": job, "reason": reason });
            ("pause", arguments, pause(admin, job, by, reason).await)
        }
        "resume" => {
            let catch_up = checked(&form.catch_up);
            let arguments = json!({ "job": job, "catch_up": catch_up });
            ("resume", arguments, resume(admin, job, by, catch_up).await)
        }
        _ => {
            let force = checked(&form.force);
            let arguments = json!({ "job": job, "no_wait": true, "timeout": null, "force": force });
            ("trigger", arguments, trigger(admin, job, by, force).await)
        }
    };
    let (outcome, text) = audited(admin, caller, command, arguments, result).await;
    back_to(admin, &format!("/jobs/{}", path_segment(job)), outcome, &text)
}

async fn pause(admin: &Admin, job: &str, by: String, reason: String) -> anyhow::Result<(Outcome, String)> {
    if let Err(message) = crate::cli::pause::check_job(&admin.config(), job) {
        return Ok((Outcome::Refused, message));
    }
    if reason.is_empty() {
        return Ok((
            Outcome::Refused,
            format!("the reason is empty: say why the job {job} is paused"),
        ));
    }
    let earlier = crate::cli::pause::pause_job(&admin.db, job, by, reason).await?;
    let replaced = earlier
        .map(|e| {
            format!(
                " (it was already paused by {}: {}; that reason is replaced)",
                e.paused_by, e.reason
            )
        })
        .unwrap_or_default();
    Ok((
        Outcome::Done,
        format!("job {job} paused: every daemon skips its ticks from now on{replaced}"),
    ))
}

async fn resume(admin: &Admin, job: &str, by: String, catch_up: bool) -> anyhow::Result<(Outcome, String)> {
    if let Err(message) = crate::cli::pause::check_job(&admin.config(), job) {
        return Ok((Outcome::Refused, message));
    }
    if !crate::cli::pause::resume_job(&admin.db, job, by, catch_up).await? {
        return Ok((
            Outcome::Refused,
            format!("job {job} is not paused; nothing to do"),
        ));
    }
    Ok((
        Outcome::Done,
        if catch_up {
            format!("job {job} resumed; a daemon runs its last tick once now if it passed while paused")
        } else {
            format!("job {job} resumed: it runs again from its next tick")
        },
    ))
}

async fn trigger(admin: &Admin, job: &str, by: String, force: bool) -> anyhow::Result<(Outcome, String)> {
    let config = admin.config();
    if let Err(message) = crate::cli::trigger::check_job(&config, job) {
        return Ok((Outcome::Refused, message));
    }
    let asked = crate::cli::trigger::ask_daemons(&admin.db, &config, job, by, force).await?;
    Ok(match asked {
        Asked::Recorded(id, daemons) => (
            Outcome::Done,
            format!("request #{id}: run job {job} now ({daemons} daemon(s) running; one takes it at its next heartbeat)"),
        ),
        refused => (
            Outcome::Refused,
            refused.refusal(job, config.defaults.timezone, config.daemon.heartbeat_ms),
        ),
    })
}

/// `outbox retry`: the order `so_id` of the form, or every dead order when it has none. Answers
/// where to go.
pub(crate) async fn retry(admin: &Admin, caller: &Caller, form: &ActionForm) -> String {
    let so_id = form
        .so_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let arguments = json!({
        "so_id": so_id,
        "status": if so_id.is_none() { Some("dead") } else { None },
        "since": null,
        "error_like": null,
        "dry_run": false,
    });
    let result = match &so_id {
        Some(so_id) => retry_one(admin, so_id).await,
        None => retry_all(admin).await,
    };
    let (outcome, text) = audited(admin, caller, "outbox retry", arguments, result).await;
    let path = match &so_id {
        Some(so_id) => format!("/orders/{}", path_segment(so_id)),
        None => "/orders".to_owned(),
    };
    back_to(admin, &path, outcome, &text)
}

async fn retry_one(admin: &Admin, so_id: &str) -> anyhow::Result<(Outcome, String)> {
    Ok(match retry_order(&admin.db, so_id).await? {
        Retried::Pending => (
            Outcome::Done,
            format!("{so_id} is pending again; the poller will check and push it"),
        ),
        Retried::NotFound => (Outcome::Refused, format!("no outbox order has so_id {so_id}")),
        Retried::NotDead { status } => (
            Outcome::Refused,
            format!("{so_id} is {status}, not dead; only a dead order can be retried"),
        ),
    })
}

async fn retry_all(admin: &Admin) -> anyhow::Result<(Outcome, String)> {
    let so_ids = retry_dead_orders(&admin.db, DeadFilter::default(), false).await?;
    Ok(if so_ids.is_empty() {
        (Outcome::Refused, "no order is dead; nothing to retry".to_owned())
    } else {
        (
            Outcome::Done,
            format!(
                "{} dead order(s) are pending again; the poller will check and push them: {}",
                so_ids.len(),
                so_ids.join(", ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn caller(name: &str) -> Caller {
        Caller {
            token_name: Some(name.to_owned()),
        }
    }

    #[test]
    fn a_csrf_token_holds_for_its_token_name_and_this_process_only() {
        let keys = Keys::new();
        let token = keys.csrf_token(&caller("alice"));
        assert!(keys.csrf_matches(&caller("alice"), &token));
        assert!(!keys.csrf_matches(&caller("bob"), &token));
        assert!(!keys.csrf_matches(&caller("alice"), ""));
        assert!(!keys.csrf_matches(&caller("alice"), "not base64!"));
        assert!(!Keys::new().csrf_matches(&caller("alice"), &token));
    }

    #[test]
    fn a_request_from_another_site_is_refused() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_str(value).unwrap());
            }
            map
        };
        assert!(same_site(&headers(&[])).is_ok());
        assert!(same_site(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_site(&headers(&[
            ("origin", "http://127.0.0.1:18702"),
            ("host", "127.0.0.1:18702")
        ]))
        .is_ok());
        assert!(same_site(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(same_site(&headers(&[("sec-fetch-site", "same-site")])).is_err());
        assert!(same_site(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:18702")
        ]))
        .is_err());
        assert!(same_site(&headers(&[("origin", "null"), ("host", "127.0.0.1:18702")])).is_err());
        assert!(same_site(&headers(&[("origin", "http://127.0.0.1:18702")])).is_err());
    }

    #[test]
    fn a_result_line_is_shown_only_with_its_signature() {
        let keys = Keys::new();
        let sig = keys.sign("notice", "done\njob prices paused");
        assert!(keys.verify("notice", "done\njob prices paused", &sig));
        assert!(!keys.verify("notice", "done\njob stock paused", &sig));
        assert!(!keys.verify("csrf", "done\njob prices paused", &sig));
    }
}
