//! The credentials the simulator accepts, one set for each side of the contract. Building them
//! from `jobs.toml` belongs to the config module; the defaults are the shipped demo values.

use crate::config::Secret;

/// Where the simulator listens when nothing says otherwise (the demo `[haier] base_url`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:18700";
/// Where the simulator sends callbacks when nothing says otherwise (the demo `[callback] listen`
/// and the receiver's path).
pub const DEFAULT_CALLBACK_URL: &str = "http://127.0.0.1:18701/haier/callback";

/// Everything the simulator checks a caller against. The fields are public: build one with a
/// struct literal, or start from [`SimCredentials::default`] (the demo values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCredentials {
    pub openplat: OpenplatCredentials,
    pub ylh: YlhCredentials,
    pub callback: CallbackCredentials,
}

/// `[haier]`: the openplat gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenplatCredentials {
    pub client_id: String,
    pub client_secret: Secret,
    /// Sold-to code: `customerCode`, `salesCode` and the logistics call's `sellerCode`.
    pub customer_code: String,
    /// Ship-to code: `sendToCode` / `senderCode`.
    pub send_to_code: String,
    /// `passWord` of the product and price calls.
    pub password: Secret,
    /// `sellerPassword` of the stock and logistics calls.
    pub seller_password: Secret,
    /// `customerPassword` of the balance call.
    pub customer_password: Secret,
}

/// `[ylh]`: the order cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YlhCredentials {
    pub client_id: String,
    pub client_password: Secret,
    pub username: String,
    pub password: Secret,
    /// The `sellerCode` an order push must carry.
    pub seller_code: String,
}

/// `[callback]`: what the simulator signs its callbacks with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackCredentials {
    pub app_key: String,
    pub secret: Secret,
}

impl Default for SimCredentials {
    fn default() -> Self {
        Self {
            openplat: OpenplatCredentials {
                client_id: "demo-openplat-client".into(),
                client_secret: "demo-openplat-secret".into(),
                customer_code: "8800633175".into(),
                send_to_code: "8800633175".into(),
                password: "demo-password".into(),
                seller_password: "demo-password".into(),
                customer_password: "demo-password".into(),
            },
            ylh: YlhCredentials {
                client_id: "demo-ylh-client".into(),
                client_password: "demo-ylh-secret".into(),
                username: "demo-user".into(),
                password: "demo-user-password".into(),
                seller_code: "8800633175".into(),
            },
            callback: CallbackCredentials {
                app_key: "demo-app-key".into(),
                secret: "demo-callback-secret".into(),
            },
        }
    }
}

impl SimCredentials {
    /// Exactly the credentials of a config file's `[haier]`, `[ylh]` and `[callback]` sections, so
    /// that one file configures both the daemon and the simulator it talks to.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            openplat: OpenplatCredentials {
                client_id: config.haier.client_id.clone(),
                client_secret: config.haier.client_secret.clone(),
                customer_code: config.haier.customer_code.clone(),
                send_to_code: config.haier.send_to_code.clone(),
                password: config.haier.password.clone(),
                seller_password: config.haier.seller_password.clone(),
                customer_password: config.haier.customer_password.clone(),
            },
            ylh: YlhCredentials {
                client_id: config.ylh.client_id.clone(),
                client_password: config.ylh.client_password.clone(),
                username: config.ylh.username.clone(),
                password: config.ylh.password.clone(),
                seller_code: config.ylh.seller_code.clone(),
            },
            callback: CallbackCredentials {
                app_key: config.callback.app_key.clone(),
                secret: config.callback.secret.clone(),
            },
        }
    }
}
