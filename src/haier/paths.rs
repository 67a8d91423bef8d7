//! Haier's endpoint paths, named once (as `haier-api.md` gives them): the client joins them to
//! the configured base URLs, the simulator routes them, tests mock and call them. Openplat's sit
//! under its base URL as they are; YLH's carry the deployment's suffix (`-dev`, `-pre`, none)
//! inside the path. Bodies and replies are not here (`wire/` for the client).

/// Openplat's client-credentials token endpoint.
pub const TOKEN_PATH: &str = "/oauth2/auth";
/// Openplat's other token endpoint, tried when [`TOKEN_PATH`] does not answer 200.
pub const TOKEN_FALLBACK_PATH: &str = "/oauth2/token";
/// Openplat's purchasable products.
pub const PRODUCTS_PATH: &str =
    "/yilihuo/jsh-service-goods-mall-search/api/product-info/procurable-products-out/check-procurable-products";
/// Openplat's supply prices.
pub const PRICES_PATH: &str =
    "/yilihuo/jsh-service-goods-price/api/goods-price/price-daily-sales/price-query/pt-out-list-price";
/// Openplat's available stock of one product in one county.
pub const STOCK_PATH: &str = "/yilihuo/jsh-service-stock-mall/api/page/stock/get-available-stock-open";
/// Openplat's logistics of one order.
pub const LOGISTICS_PATH: &str = "/yilihuo/ylh-cloud-service-stock/api/page/stock/logistics/sass/get-thirdparty-logistics-info-by-order-code-auth";
/// Openplat's payer account balances.
pub const BALANCE_PATH: &str = "/yilihuo/jsh-service-finance-mall/api/page/account/account-balance-manager/get-payer-account-balance-by-customer-code";

/// YLH's password-grant token endpoint for a path suffix, e.g.
/// `/ylh-cloud-mgt-auth-dev/oauth/token`.
pub fn ylh_token_path(suffix: &str) -> String {
    format!("/ylh-cloud-mgt-auth{suffix}/oauth/token")
}

/// YLH's order push for a path suffix.
pub fn push_path(suffix: &str) -> String {
    format!("{}/receive-hmm-retail-order", retail_order_root(suffix))
}

/// YLH's order cancel for a path suffix.
pub fn cancel_path(suffix: &str) -> String {
    format!("{}/cancel-hmm-retail-order", retail_order_root(suffix))
}

/// YLH's reschedule of delivery and installation (the `service-order` service) for a path suffix.
pub fn reschedule_path(suffix: &str) -> String {
    format!("/ylh-cloud-service-order{suffix}/api/page/retailorder/hmm/update-distribution-time")
}

/// YLH's delivery and installation photos of one Haier order for a path suffix.
pub fn delivery_photos_path(suffix: &str) -> String {
    format!("/ylh-cloud-service-order{suffix}/api/page/retailorder/search/get-retail-order-delivery-img")
}

/// YLH's express numbers, carriers and serial numbers by Haier order no. for a path suffix.
pub fn express_numbers_path(suffix: &str) -> String {
    format!(
        "/ylh-cloud-service-stock{suffix}/api/composite/stock/logistics/get-store-logistics-by-order-code"
    )
}

/// Where YLH's retail order calls sit for a path suffix.
fn retail_order_root(suffix: &str) -> String {
    format!("/ylh-cloud-service-jst-order{suffix}/api/page/hmm/retailorder")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ylh_paths_carry_the_suffix_inside() {
        assert_eq!(ylh_token_path("-dev"), "/ylh-cloud-mgt-auth-dev/oauth/token");
        assert_eq!(
            push_path("-pre"),
            "/ylh-cloud-service-jst-order-pre/api/page/hmm/retailorder/receive-hmm-retail-order"
        );
        assert_eq!(
            cancel_path(""),
            "/ylh-cloud-service-jst-order/api/page/hmm/retailorder/cancel-hmm-retail-order"
        );
        assert_eq!(
            reschedule_path("-dev"),
            "/ylh-cloud-service-order-dev/api/page/retailorder/hmm/update-distribution-time"
        );
        assert_eq!(
            delivery_photos_path(""),
            "/ylh-cloud-service-order/api/page/retailorder/search/get-retail-order-delivery-img"
        );
        assert_eq!(
            express_numbers_path("-pre"),
            "/ylh-cloud-service-stock-pre/api/composite/stock/logistics/get-store-logistics-by-order-code"
        );
    }
}
