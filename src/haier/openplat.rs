//! Openplat's operations: purchasable products, prices, stock, logistics and balance, each a
//! body from `wire::request` sent through the shared call path and decoded by `wire::reply`.

use super::body::ListingBody;
use super::call::{encode, require};
use super::client::HaierClient;
use super::error::HaierError;
use super::stats::Operation;
use super::types::{Balance, KnownItems, ListedItem, Logistics, Price, Product, StockLevel};
use super::wire;

/// Haier caps product and price calls at 20 codes (there is no pagination).
pub const MAX_CODES_PER_CALL: usize = 20;

/// Refuses a code list outside 1..=20 or with a blank code.
fn check_codes(operation: Operation, codes: &[String]) -> Result<(), HaierError> {
    let message = if codes.is_empty() {
        "at least one product code is needed".to_owned()
    } else if codes.len() > MAX_CODES_PER_CALL {
        format!(
            "at most {MAX_CODES_PER_CALL} product codes per call, got {}",
            codes.len()
        )
    } else if codes.iter().any(|c| c.trim().is_empty()) {
        "a product code is blank".to_owned()
    } else {
        return Ok(());
    };
    Err(HaierError::InvalidRequest {
        operation: operation.as_str(),
        message,
    })
}

impl HaierClient {
    /// Purchasable products: the given codes (1..=20), or the customer's whole listing (`None`).
    pub async fn query_products(&self, codes: Option<&[String]>) -> Result<Vec<Product>, HaierError> {
        let operation = Operation::Products;
        if let Some(codes) = codes {
            check_codes(operation, codes)?;
        }
        let p = &self.inner.op;
        let body = encode(
            operation,
            &wire::ProductsRequest {
                customer_code: &p.customer_code,
                send_to_code: &p.send_to_code,
                product_codes: codes,
                supplier_code: &p.supplier_code,
                search_type: wire::SEARCH_TYPE,
                password: p.password.expose(),
            },
        )?;
        self.inner
            .call(operation, &p.products_url, body, wire::products_from)
            .await
    }

    /// The customer's whole listing, decoded as it arrives: items go to `sink` in batches as
    /// soon as they are read, and the result is how many products there were. An item whose raw
    /// bytes hash to one of `known` is not decoded but sent as [`ListedItem::Known`] with the
    /// index `known` gives it. Memory stays flat however large the catalog. A retried attempt
    /// sends its items again from the first (the receiver must take repeats); a broken reply
    /// fails the call after the items read before the break were sent.
    pub async fn stream_listing(
        &self,
        sink: tokio::sync::mpsc::Sender<Vec<ListedItem>>,
        known: std::sync::Arc<KnownItems>,
    ) -> Result<u64, HaierError> {
        let operation = Operation::Products;
        let p = &self.inner.op;
        let body = encode(
            operation,
            &wire::ProductsRequest {
                customer_code: &p.customer_code,
                send_to_code: &p.send_to_code,
                product_codes: None,
                supplier_code: &p.supplier_code,
                search_type: wire::SEARCH_TYPE,
                password: p.password.expose(),
            },
        )?;
        self.inner
            .call_with(
                operation,
                &p.products_url,
                body,
                ListingBody { sink, known },
                None,
            )
            .await
    }

    /// Supply prices of 1..=20 products.
    pub async fn query_prices(&self, codes: &[String]) -> Result<Vec<Price>, HaierError> {
        let operation = Operation::Prices;
        check_codes(operation, codes)?;
        let p = &self.inner.op;
        let body = encode(
            operation,
            &wire::PricesRequest {
                customer_code: &p.customer_code,
                send_to_code: &p.send_to_code,
                product_codes: codes,
                price_type: wire::PRICE_TYPE,
                password: p.password.expose(),
            },
        )?;
        self.inner
            .call(operation, &p.prices_url, body, wire::prices_from)
            .await
    }

    /// Available stock of one product for one county (a 6-digit GB/T 2260 code).
    pub async fn query_stock(&self, product_code: &str, county_code: &str) -> Result<StockLevel, HaierError> {
        let operation = Operation::Stock;
        require(
            operation,
            !product_code.trim().is_empty(),
            "the product code is blank",
        )?;
        require(
            operation,
            county_code.len() == 6 && county_code.bytes().all(|b| b.is_ascii_digit()),
            "the county code must be 6 digits",
        )?;
        let p = &self.inner.op;
        let body = encode(
            operation,
            &wire::StockRequest {
                sales_code: &p.customer_code,
                sender_code: &p.send_to_code,
                product_code,
                county_code,
                source: wire::STOCK_SOURCE,
                seller_password: p.seller_password.expose(),
            },
        )?;
        let (product_code, county_code) = (product_code.to_owned(), county_code.to_owned());
        self.inner
            .call(operation, &p.stock_url, body, move |data| {
                wire::stock_from(&product_code, &county_code, data)
            })
            .await
    }

    /// What Haier knows about the delivery of one order (its Haier order no.).
    pub async fn query_logistics(&self, order_code: &str) -> Result<Logistics, HaierError> {
        let operation = Operation::Logistics;
        require(
            operation,
            !order_code.trim().is_empty(),
            "the order code is blank",
        )?;
        let p = &self.inner.op;
        let body = encode(
            operation,
            &wire::LogisticsRequest {
                order_code,
                seller_code: &p.customer_code,
                seller_password: p.seller_password.expose(),
            },
        )?;
        let order_code = order_code.to_owned();
        self.inner
            .call(operation, &p.logistics_url, body, move |data| {
                wire::logistics_from(&order_code, data)
            })
            .await
    }

    /// The balances of the customer's payer accounts.
    pub async fn query_balance(&self) -> Result<Vec<Balance>, HaierError> {
        let operation = Operation::Balance;
        let p = &self.inner.op;
        let body = encode(
            operation,
            &wire::BalanceRequest {
                customer_code: &p.customer_code,
                customer_password: p.customer_password.expose(),
            },
        )?;
        self.inner
            .call(operation, &p.balance_url, body, wire::balances_from)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_lists_are_checked_before_sending() {
        let codes = |n: usize| (0..n).map(|i| format!("P{i}")).collect::<Vec<_>>();
        assert!(check_codes(Operation::Prices, &codes(1)).is_ok());
        assert!(check_codes(Operation::Prices, &codes(20)).is_ok());
        assert!(matches!(
            check_codes(Operation::Prices, &codes(21)),
            Err(HaierError::InvalidRequest {
                operation: "prices",
                ..
            })
        ));
        assert!(check_codes(Operation::Products, &[]).is_err());
        assert!(check_codes(Operation::Products, &[" ".to_owned()]).is_err());
    }
}
