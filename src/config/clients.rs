//! Resolution of `[haier]` and `[ylh]`, the two Haier systems the client calls: their endpoints
//! (by `environment` or `base_url`), credentials, and the request policies both share (rate
//! limit, retry, breaker).

use super::limits;
use super::load::{ConfigError, LoaderWithDoc};
use super::raw::{RawBreaker, RawHaier, RawRateLimit, RawRetry, RawYlh};
use super::{BreakerPolicy, HaierConfig, RateLimit, RetryPolicy, YlhConfig};

impl LoaderWithDoc {
    fn rate_limit(&self, raw: Option<RawRateLimit>, section: &str) -> Result<RateLimit, ConfigError> {
        let raw = raw.unwrap_or_default();
        let per_second = raw.per_second.unwrap_or(50);
        self.check(
            &[section, "rate_limit", "per_second"],
            per_second,
            limits::RATE_PER_SECOND,
        )?;
        let burst = raw.burst.unwrap_or(per_second.div_ceil(10).max(1));
        self.check(&[section, "rate_limit", "burst"], burst, limits::RATE_BURST)?;
        Ok(RateLimit { per_second, burst })
    }

    fn retry(&self, raw: Option<RawRetry>, section: &str) -> Result<RetryPolicy, ConfigError> {
        let raw = raw.unwrap_or_default();
        let policy = RetryPolicy {
            max_attempts: raw.max_attempts.unwrap_or(5),
            backoff_base_ms: raw.backoff_base_ms.unwrap_or(200),
            backoff_cap_ms: raw.backoff_cap_ms.unwrap_or(10_000),
        };
        self.check(
            &[section, "retry", "max_attempts"],
            policy.max_attempts,
            limits::RETRY_MAX_ATTEMPTS,
        )?;
        self.check(
            &[section, "retry", "backoff_base_ms"],
            policy.backoff_base_ms,
            limits::BACKOFF_BASE_MS,
        )?;
        self.check(
            &[section, "retry", "backoff_cap_ms"],
            policy.backoff_cap_ms,
            limits::BACKOFF_CAP_MS,
        )?;
        if policy.backoff_cap_ms < policy.backoff_base_ms {
            return Err(self.error(
                &[section, "retry", "backoff_cap_ms"],
                "must not be below backoff_base_ms",
            ));
        }
        Ok(policy)
    }

    fn breaker(&self, raw: Option<RawBreaker>, section: &str) -> Result<BreakerPolicy, ConfigError> {
        let raw = raw.unwrap_or_default();
        let policy = BreakerPolicy {
            failure_threshold: raw.failure_threshold.unwrap_or(10),
            cool_down_ms: raw.cool_down_ms.unwrap_or(30_000),
        };
        self.check(
            &[section, "breaker", "failure_threshold"],
            policy.failure_threshold,
            limits::BREAKER_FAILURE_THRESHOLD,
        )?;
        self.check(
            &[section, "breaker", "cool_down_ms"],
            policy.cool_down_ms,
            limits::BREAKER_COOL_DOWN_MS,
        )?;
        Ok(policy)
    }

    pub(super) fn resolve_haier(&self, raw: RawHaier) -> Result<HaierConfig, ConfigError> {
        let s = "haier";
        let (base_url, token_url) = match (raw.environment.as_deref(), raw.base_url.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(self.error(
                    &[s, "base_url"],
                    "set either `environment` or `base_url`, not both",
                ))
            }
            (None, None) => {
                return Err(self.error(
                    &[s, "environment"],
                    "set `environment` (test, stage, prod) or `base_url`",
                ))
            }
            (Some(env), None) => {
                let host = match env {
                    "test" => "https://openplat-test.haier.net",
                    "stage" => "https://openplat-bj-aliyun-stage.haier.net",
                    "prod" => "https://openplat-bj-aliyun.haier.net",
                    other => {
                        return Err(self.error(
                            &[s, "environment"],
                            format!("unknown environment `{other}`; expected test, stage or prod"),
                        ))
                    }
                };
                let base = self.url(host, &[s, "environment"])?;
                let token = match raw.token_url.as_deref() {
                    Some(t) => self.url(t, &[s, "token_url"])?,
                    None => self.url(
                        &format!("{host}{}", crate::haier::paths::TOKEN_PATH),
                        &[s, "environment"],
                    )?,
                };
                (base, token)
            }
            (None, Some(base)) => {
                let base_url = self.url(base, &[s, "base_url"])?;
                let token = match raw.token_url.as_deref() {
                    Some(t) => self.url(t, &[s, "token_url"])?,
                    None => base_url
                        .join(crate::haier::paths::TOKEN_PATH)
                        .map_err(|e| self.error(&[s, "base_url"], e.to_string()))?,
                };
                (base_url, token)
            }
        };
        let customer_code = self.required_text(raw.customer_code, &[s, "customer_code"])?;
        let password = self.required_secret(s, "password", raw.password, raw.password_file)?;
        let seller_password = self.secret(
            s,
            "seller_password",
            raw.seller_password,
            raw.seller_password_file,
        )?;
        let customer_password = self.secret(
            s,
            "customer_password",
            raw.customer_password,
            raw.customer_password_file,
        )?;
        let timeout_ms = raw.timeout_ms.unwrap_or(15_000);
        self.check(&[s, "timeout_ms"], timeout_ms, limits::REQUEST_TIMEOUT_MS)?;
        Ok(HaierConfig {
            base_url,
            token_url,
            client_id: self.required_text(raw.client_id, &[s, "client_id"])?,
            client_secret: self.required_secret(
                s,
                "client_secret",
                raw.client_secret,
                raw.client_secret_file,
            )?,
            send_to_code: self
                .optional_text(raw.send_to_code, &[s, "send_to_code"])?
                .unwrap_or_else(|| customer_code.clone()),
            customer_code,
            supplier_code: self
                .optional_text(raw.supplier_code, &[s, "supplier_code"])?
                .unwrap_or_else(|| "1001".to_owned()),
            seller_password: seller_password.unwrap_or_else(|| password.clone()),
            customer_password: customer_password.unwrap_or_else(|| password.clone()),
            password,
            timeout_ms,
            rate_limit: self.rate_limit(raw.rate_limit, s)?,
            retry: self.retry(raw.retry, s)?,
            breaker: self.breaker(raw.breaker, s)?,
        })
    }

    pub(super) fn resolve_ylh(&self, raw: RawYlh, haier: &HaierConfig) -> Result<YlhConfig, ConfigError> {
        let s = "ylh";
        let (base_url, path_suffix) = match (raw.environment.as_deref(), raw.base_url.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(self.error(
                    &[s, "base_url"],
                    "set either `environment` or `base_url`, not both",
                ))
            }
            (None, None) => {
                return Err(self.error(
                    &[s, "environment"],
                    "set `environment` (dev, pre, prod) or `base_url`",
                ))
            }
            (Some(env), None) => {
                let (host, suffix) = match env {
                    "dev" => ("http://dev.ylhtest.com", "-dev"),
                    "pre" => ("http://pre.yilihuo.com", "-pre"),
                    "prod" => ("http://www.yilihuo.com", ""),
                    other => {
                        return Err(self.error(
                            &[s, "environment"],
                            format!("unknown environment `{other}`; expected dev, pre or prod"),
                        ))
                    }
                };
                if raw.path_suffix.is_some() {
                    return Err(self.error(
                        &[s, "path_suffix"],
                        "`path_suffix` goes with `base_url`; `environment` sets it",
                    ));
                }
                (self.url(host, &[s, "environment"])?, suffix.to_owned())
            }
            (None, Some(base)) => {
                let suffix = raw.path_suffix.unwrap_or_default();
                if !["", "-dev", "-pre"].contains(&suffix.as_str()) {
                    return Err(self.error(
                        &[s, "path_suffix"],
                        format!("unknown path suffix `{suffix}`; expected \"-dev\", \"-pre\" or \"\""),
                    ));
                }
                (self.url(base, &[s, "base_url"])?, suffix)
            }
        };
        let timeout_ms = raw.timeout_ms.unwrap_or(15_000);
        self.check(&[s, "timeout_ms"], timeout_ms, limits::REQUEST_TIMEOUT_MS)?;
        Ok(YlhConfig {
            base_url,
            path_suffix,
            client_id: self.required_text(raw.client_id, &[s, "client_id"])?,
            client_password: self.required_secret(
                s,
                "client_password",
                raw.client_password,
                raw.client_password_file,
            )?,
            username: self.required_text(raw.username, &[s, "username"])?,
            password: self.required_secret(s, "password", raw.password, raw.password_file)?,
            source_system: self.required_text(raw.source_system, &[s, "source_system"])?,
            shop_name: self.required_text(raw.shop_name, &[s, "shop_name"])?,
            seller_code: self
                .optional_text(raw.seller_code, &[s, "seller_code"])?
                .unwrap_or_else(|| haier.customer_code.clone()),
            timeout_ms,
            rate_limit: self.rate_limit(raw.rate_limit, s)?,
            retry: self.retry(raw.retry, s)?,
            breaker: self.breaker(raw.breaker, s)?,
        })
    }
}
