//! The one catalog check, for `outbox enqueue` and the poller alike: is each product of an order
//! one Haier sells? The products are read through `crate::db::products`, the catalog's owner.

use super::problem::Problem;
use crate::db::{products, DbConnection};
use crate::haier::Order;
use diesel::QueryResult;
use std::collections::HashSet;

/// What `haier_products` says about the products of some orders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Whether it lists any product for sale at all (before the first products sync it does not).
    listed: bool,
    /// Those of the orders' product codes it lists as for sale.
    for_sale: HashSet<String>,
}

impl Catalog {
    /// Reads what the catalog says about the products of `orders`.
    pub fn load<'a>(
        conn: &mut DbConnection,
        orders: impl IntoIterator<Item = &'a Order>,
    ) -> QueryResult<Self> {
        let codes: Vec<String> = orders
            .into_iter()
            .flat_map(|order| order.item_list.iter().map(|item| item.product_code.clone()))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        Ok(Catalog {
            listed: products::any_for_sale(conn)?,
            for_sale: products::codes_for_sale(conn, &codes)?,
        })
    }

    /// A catalog that sells exactly `codes` (for checks without a database).
    pub fn selling<S: Into<String>>(codes: impl IntoIterator<Item = S>) -> Self {
        let for_sale: HashSet<String> = codes.into_iter().map(Into::into).collect();
        Catalog {
            listed: !for_sale.is_empty(),
            for_sale,
        }
    }

    /// Whether the catalog lists nothing for sale yet, so that no order can pass.
    pub fn is_empty(&self) -> bool {
        !self.listed
    }

    /// One [`Problem::UnknownProduct`] for each item of `order` that is not for sale.
    pub fn check(&self, order: &Order) -> Vec<Problem> {
        order
            .item_list
            .iter()
            .enumerate()
            .filter(|(_, item)| !self.for_sale.contains(&item.product_code))
            .map(|(index, item)| Problem::UnknownProduct {
                index,
                code: item.product_code.clone(),
            })
            .collect()
    }

    /// Whether every problem of an order is a product this catalog does not list only because it
    /// lists nothing yet: such an order waits for the first products sync instead of dying.
    pub fn explains(&self, problems: &[Problem]) -> bool {
        self.is_empty()
            && problems
                .iter()
                .all(|problem| matches!(problem, Problem::UnknownProduct { .. }))
    }
}
