//! The simulator's deterministic catalog: products and extra codes made from a seed, their prices,
//! their stock per county, and the mutations that move prices and stock over time.
//! It owns no wire shapes (the handlers in `openplat.rs` turn it into Haier's JSON).
//!
//! Everything comes from a small hash-based generator (SplitMix64), not from `rand`, so a seed
//! gives the same catalog on every platform and every version. Product `i` depends only on the
//! seed and `i`, never on the number of products, so `--products 500` is a prefix of
//! `--products 1000`.

use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The most purchasable products a catalog holds (codes must stay unique and replies sane).
pub const MAX_PRODUCTS: usize = 1_000_000;

/// Codes have 6 base-36 characters after their 3-character group prefix.
const CODE_SPACE: u64 = 36u64.pow(6);
/// Odd and not a multiple of 3, so `index × CODE_STEP` is a bijection modulo `CODE_SPACE` and
/// every index gets its own code.
const CODE_STEP: u64 = 2_654_435_761;

const SALT_PRODUCT: u64 = 0x5052_4f44;
const SALT_EXTRA: u64 = 0x4558_5452;
const SALT_STOCK_SHAPE: u64 = 0x5348_4150;
const SALT_STOCK_LEVEL: u64 = 0x4c45_564c;
const SALT_MUTATE: u64 = 0x4d55_5441;
const SALT_CODE: u64 = 0x434f_4445;

/// Extra codes (known to Haier, not placed for the customer): one per 100 products, at least 3.
pub fn extra_count(products: usize) -> usize {
    (products / 100).max(3)
}

/// `invoicePrice = supplyPrice × (1 − rebateRate) − rebateMoney`, rounded half-up to the fen.
pub fn invoice_price(supply: Decimal, rebate_rate: Decimal, rebate_money: Decimal) -> Decimal {
    let mut price = (supply * (Decimal::ONE - rebate_rate) - rebate_money)
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    price.rescale(2);
    price
}

/// One product or extra code of the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// Haier's material code, e.g. `GD0A3K9Z1`.
    pub code: String,
    /// The model, which is also the display name, e.g. `EC6002-MC3`.
    pub model: String,
    /// The product group (category), e.g. `电热水器`.
    pub group: &'static str,
    /// `海尔`, `卡萨帝` or `统帅`.
    pub brand: &'static str,
    pub image_url: String,
    pub leaflet_urls: Vec<String>,
    /// Placed for the customer (`isSales:"1"`); extra codes are not.
    pub for_sale: bool,
    /// The price at version 0, or `None` when no price is in force.
    base_price: Option<BasePrice>,
    /// Whether this product's decimals go out as JSON strings (else as JSON numbers).
    pub decimals_as_strings: bool,
    /// Step of this product's price walk under mutation (1..=10, invertible modulo 11).
    price_step: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct BasePrice {
    supply: Decimal,
    rebate_rate: Decimal,
    rebate_money: Decimal,
    stock_rebate_policy: u8,
}

/// A price in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    /// Yuan, 2 places.
    pub supply: Decimal,
    /// `supply × (1 − rebate_rate) − rebate_money`, half-up to the fen.
    pub invoice: Decimal,
    /// 4 places, e.g. `0.0300`.
    pub rebate_rate: Decimal,
    /// Yuan, 2 places.
    pub rebate_money: Decimal,
    /// One of 0, 1, 2, 5.
    pub stock_rebate_policy: u8,
}

/// What the price call says about a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceLookup {
    /// An extra code or a code the catalog never heard of: `isSales:"0"`, `商品暂不可采`.
    NotForSale,
    /// Purchasable, but no price in force: `价格未生效`.
    NoPrice,
    InForce(Price),
}

/// One warehouse of a stock reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warehouse {
    pub sec_code: String,
    pub stock: u64,
    /// 0: the local warehouse; 1: the upper-level one.
    pub grade: u8,
    pub cut_time: &'static str,
    pub achieve_user_order_cut: bool,
    pub hours: u32,
    pub is_transfer: bool,
}

/// What one mutation step changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mutation {
    pub prices_changed: Vec<String>,
    pub stock_changed: Vec<String>,
}

/// The catalog: immutable products plus per-product price and stock versions that mutations bump.
#[derive(Debug)]
pub struct Catalog {
    seed: u64,
    /// Purchasable products first (`0..for_sale`), then the extra codes.
    products: Vec<Product>,
    for_sale: usize,
    by_code: HashMap<String, usize>,
    price_versions: Vec<AtomicU32>,
    stock_versions: Vec<AtomicU32>,
    mutation_ticks: AtomicU64,
}

impl Catalog {
    /// Builds the catalog for `seed` with `products` purchasable products (capped at
    /// [`MAX_PRODUCTS`]) and [`extra_count`] extra codes.
    pub fn generate(seed: u64, products: usize) -> Self {
        let products = products.min(MAX_PRODUCTS);
        let extras = extra_count(products);
        let mut all = Vec::with_capacity(products + extras);
        all.extend((0..products as u64).map(|i| make_product(seed, i, true)));
        all.extend((0..extras as u64).map(|j| make_product(seed, j, false)));
        let by_code = all.iter().enumerate().map(|(i, p)| (p.code.clone(), i)).collect();
        let price_versions = (0..all.len()).map(|_| AtomicU32::new(0)).collect();
        let stock_versions = (0..all.len()).map(|_| AtomicU32::new(0)).collect();
        Self {
            seed,
            products: all,
            for_sale: products,
            by_code,
            price_versions,
            stock_versions,
            mutation_ticks: AtomicU64::new(0),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A number below `below` that depends only on the seed and `salt` (for data outside the
    /// products, such as account balances).
    pub(crate) fn seeded_number(&self, salt: u64, below: u64) -> u64 {
        Draw::new(&[self.seed, salt]).below(below)
    }

    /// The purchasable products, in catalog order (the order of the full listing).
    pub fn products_for_sale(&self) -> &[Product] {
        &self.products[..self.for_sale]
    }

    /// Codes Haier knows but has not placed for the customer (`isSales:"0"`, `产品未投放`).
    pub fn extra_products(&self) -> &[Product] {
        &self.products[self.for_sale..]
    }

    /// A product or extra code by its code.
    pub fn product(&self, code: &str) -> Option<&Product> {
        self.by_code.get(code).map(|&i| &self.products[i])
    }

    pub fn is_for_sale(&self, code: &str) -> bool {
        self.product(code).is_some_and(|p| p.for_sale)
    }

    /// The price the price call reports for `code` now.
    pub fn price(&self, code: &str) -> PriceLookup {
        let Some(&i) = self.by_code.get(code) else {
            return PriceLookup::NotForSale;
        };
        let product = &self.products[i];
        if !product.for_sale {
            return PriceLookup::NotForSale;
        }
        let Some(base) = product.base_price else {
            return PriceLookup::NoPrice;
        };
        let version = u64::from(self.price_versions[i].load(Ordering::Relaxed));
        // A walk over 11 values around the base; consecutive versions always differ.
        let offset_yuan = 20 * ((((version * product.price_step) + 5) % 11) as i64 - 5);
        let supply = (base.supply + Decimal::new(offset_yuan * 100, 2)).max(Decimal::new(9900, 2));
        PriceLookup::InForce(Price {
            supply,
            invoice: invoice_price(supply, base.rebate_rate, base.rebate_money),
            rebate_rate: base.rebate_rate,
            rebate_money: base.rebate_money,
            stock_rebate_policy: base.stock_rebate_policy,
        })
    }

    /// The warehouses the stock call lists for `code` in `county` now (empty: no stock).
    /// Codes that are not purchasable have no stock.
    pub fn stock(&self, code: &str, county: &str) -> Vec<Warehouse> {
        let Some(&i) = self.by_code.get(code) else {
            return Vec::new();
        };
        if !self.products[i].for_sale {
            return Vec::new();
        }
        let version = u64::from(self.stock_versions[i].load(Ordering::Relaxed));
        let (code_hash, county_hash) = (hash_str(code), hash_str(county));
        let mut shape = Draw::new(&[self.seed, SALT_STOCK_SHAPE, code_hash, county_hash]);
        let count = match shape.below(100) {
            0..15 => 0,
            15..60 => 1,
            60..90 => 2,
            _ => 3,
        };
        let mut level = Draw::new(&[self.seed, SALT_STOCK_LEVEL, code_hash, county_hash, version]);
        (0..count)
            .map(|j| {
                let grade = u8::from(j > 0 || shape.percent(20));
                let stock = if level.percent(10) {
                    0
                } else {
                    1 + level.below(200)
                };
                Warehouse {
                    sec_code: format!(
                        "{}{}",
                        if grade == 0 { "C" } else { "R" },
                        1000 + shape.below(9000)
                    ),
                    stock,
                    grade,
                    cut_time: shape.pick(&["12:00:00", "16:00:00", "17:30:00"]),
                    achieve_user_order_cut: shape.percent(70),
                    hours: shape.pick(&[24, 48, 72]),
                    is_transfer: grade == 1 && shape.percent(50),
                }
            })
            .collect()
    }

    /// Available stock for `code` in `county`: the sum over [`Catalog::stock`].
    pub fn stock_total(&self, code: &str, county: &str) -> u64 {
        self.stock(code, county).iter().map(|w| w.stock).sum()
    }

    /// One mutation step: about 1% of the purchasable products get a new price and about 2% new
    /// stock levels (in every county). Deterministic from the seed and the step number.
    pub fn mutate(&self) -> Mutation {
        let mut mutation = Mutation::default();
        if self.for_sale == 0 {
            return mutation;
        }
        let tick = self.mutation_ticks.fetch_add(1, Ordering::Relaxed);
        let mut draw = Draw::new(&[self.seed, SALT_MUTATE, tick]);
        let n = self.for_sale as u64;
        for _ in 0..(self.for_sale / 100).max(1) {
            let i = draw.below(n) as usize;
            self.price_versions[i].fetch_add(1, Ordering::Relaxed);
            if self.products[i].base_price.is_some() {
                mutation.prices_changed.push(self.products[i].code.clone());
            }
        }
        for _ in 0..(self.for_sale / 50).max(1) {
            let i = draw.below(n) as usize;
            self.stock_versions[i].fetch_add(1, Ordering::Relaxed);
            mutation.stock_changed.push(self.products[i].code.clone());
        }
        for codes in [&mut mutation.prices_changed, &mut mutation.stock_changed] {
            codes.sort_unstable();
            codes.dedup();
        }
        mutation
    }

    /// Undoes every mutation: prices and stock are back to the seed's.
    pub fn reset_mutations(&self) {
        for version in self.price_versions.iter().chain(&self.stock_versions) {
            version.store(0, Ordering::Relaxed);
        }
        self.mutation_ticks.store(0, Ordering::Relaxed);
    }
}

struct GroupSpec {
    name: &'static str,
    prefix: &'static str,
    weight: u64,
    min_yuan: u64,
    max_yuan: u64,
    model: fn(&mut Draw) -> String,
}

const GROUPS: [GroupSpec; 8] = [
    GroupSpec {
        name: "电热水器",
        prefix: "GD0",
        weight: 20,
        min_yuan: 899,
        max_yuan: 3999,
        model: water_heater_model,
    },
    GroupSpec {
        name: "家用空调",
        prefix: "AA0",
        weight: 20,
        min_yuan: 2199,
        max_yuan: 8999,
        model: air_conditioner_model,
    },
    GroupSpec {
        name: "冰箱",
        prefix: "BB0",
        weight: 20,
        min_yuan: 1799,
        max_yuan: 15999,
        model: fridge_model,
    },
    GroupSpec {
        name: "洗衣机",
        prefix: "CE0",
        weight: 18,
        min_yuan: 1299,
        max_yuan: 9999,
        model: washer_model,
    },
    GroupSpec {
        name: "冷柜",
        prefix: "BC0",
        weight: 6,
        min_yuan: 899,
        max_yuan: 3999,
        model: freezer_model,
    },
    GroupSpec {
        name: "燃气热水器",
        prefix: "JJ0",
        weight: 6,
        min_yuan: 1299,
        max_yuan: 5999,
        model: gas_heater_model,
    },
    GroupSpec {
        name: "吸油烟机",
        prefix: "CA0",
        weight: 5,
        min_yuan: 1499,
        max_yuan: 6999,
        model: hood_model,
    },
    GroupSpec {
        name: "净水机",
        prefix: "GR0",
        weight: 5,
        min_yuan: 999,
        max_yuan: 4999,
        model: purifier_model,
    },
];

fn water_heater_model(d: &mut Draw) -> String {
    let litres = d.pick(&["50", "60", "80"]);
    let line = d.pick(&["MC", "JH", "PV", "SN"]);
    format!("EC{litres}0{}-{line}{}", d.below(10), 1 + d.below(9))
}

fn air_conditioner_model(d: &mut Draw) -> String {
    let size = d.pick(&["26", "35", "50", "72"]);
    format!(
        "KFR-{size}GW/{:02}{}{}",
        d.below(100),
        letters(d, 3),
        10 + d.below(90)
    )
}

fn fridge_model(d: &mut Draw) -> String {
    let litres = d.pick(&["218", "310", "470", "510", "650"]);
    let suffix = d.pick(&["U1", "D9", "B9", ""]);
    format!("BCD-{litres}W{}{suffix}", letters(d, 4))
}

fn washer_model(d: &mut Draw) -> String {
    let kg = d.pick(&["80", "90", "100", "120"]);
    format!("EG{kg}{}{}", letters(d, 3), 10 + d.below(90))
}

fn freezer_model(d: &mut Draw) -> String {
    let litres = d.pick(&["100", "200", "300", "519"]);
    format!("BC/BD-{litres}{}", letters(d, 2))
}

fn gas_heater_model(d: &mut Draw) -> String {
    let power = d.pick(&["25", "31", "36"]);
    let flow = d.pick(&["13", "16"]);
    format!("JSQ{power}-{flow}{}{}", letters(d, 2), 1 + d.below(9))
}

fn hood_model(d: &mut Draw) -> String {
    let flow = d.pick(&["200", "219", "258"]);
    let line = d.pick(&["T3", "E900", "C3"]);
    format!("CXW-{flow}-{}{line}", letters(d, 1))
}

fn purifier_model(d: &mut Draw) -> String {
    let flux = d.pick(&["400", "600", "1000"]);
    format!("HRO{flux}-{}{}", 1 + d.below(9), letters(d, 1))
}

fn letters(d: &mut Draw, n: usize) -> String {
    (0..n).map(|_| char::from(b'A' + d.below(26) as u8)).collect()
}

/// Product `index` (purchasable) or extra code `index`; depends only on `seed` and `index`.
fn make_product(seed: u64, index: u64, for_sale: bool) -> Product {
    let mut d = Draw::new(&[seed, if for_sale { SALT_PRODUCT } else { SALT_EXTRA }, index]);
    let total_weight: u64 = GROUPS.iter().map(|g| g.weight).sum();
    let mut roll = d.below(total_weight);
    let group = GROUPS
        .iter()
        .find(|g| {
            if roll < g.weight {
                true
            } else {
                roll -= g.weight;
                false
            }
        })
        .unwrap_or(&GROUPS[0]);
    // Extra codes come from the top of the code space, products from the bottom: never equal.
    let code_index = if for_sale { index } else { CODE_SPACE - 1 - index };
    let code = format!("{}{}", group.prefix, code_suffix(seed, code_index));
    let (brand, price_factor_percent) = match d.below(100) {
        0..70 => ("海尔", 100),
        70..90 => ("卡萨帝", 200),
        _ => ("统帅", 80),
    };
    let model = (group.model)(&mut d);
    let yuan = (group.min_yuan + d.below(group.max_yuan - group.min_yuan)) * price_factor_percent / 100;
    let supply = Decimal::new(((yuan / 100) * 100 + 99) as i64 * 100, 2);
    let rebate_rate = Decimal::new(d.pick(&[0, 100, 200, 300, 500]), 4);
    let rebate_money = Decimal::new(d.pick(&[0, 2000, 5000, 10000]), 2);
    let stock_rebate_policy = d.pick(&[0u8, 1, 2, 5]);
    // Exactly one product in 50 has no price in force, wherever the seed puts it.
    let has_price = !for_sale || (index + seed) % 50 != 7;
    let base = "https://img.haier-sim.invalid/products";
    let leaflets = 1 + d.below(3);
    Product {
        image_url: format!("{base}/{code}/main.jpg"),
        leaflet_urls: (1..=leaflets)
            .map(|k| format!("{base}/{code}/detail-{k}.jpg"))
            .collect(),
        code,
        model,
        group: group.name,
        brand,
        for_sale,
        base_price: has_price.then_some(BasePrice {
            supply,
            rebate_rate,
            rebate_money,
            stock_rebate_policy,
        }),
        decimals_as_strings: d.percent(50),
        price_step: 1 + d.below(10),
    }
}

fn code_suffix(seed: u64, index: u64) -> String {
    let offset = mix(seed ^ SALT_CODE) % CODE_SPACE;
    let mut value =
        ((u128::from(index) * u128::from(CODE_STEP) + u128::from(offset)) % u128::from(CODE_SPACE)) as u64;
    let mut chars = [b'0'; 6];
    for slot in chars.iter_mut().rev() {
        *slot = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(value % 36) as usize];
        value /= 36;
    }
    String::from_utf8_lossy(&chars).into_owned()
}

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, for hashing codes and counties into the generator.
fn hash_str(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A tiny deterministic generator seeded from a list of numbers.
struct Draw(u64);

impl Draw {
    fn new(parts: &[u64]) -> Self {
        Draw(parts.iter().fold(0x5EED, |state, &part| mix(state ^ part)))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::str::FromStr;

    #[test]
    fn the_same_seed_gives_the_same_catalog() {
        let a = Catalog::generate(7, 300);
        let b = Catalog::generate(7, 300);
        assert_eq!(a.products, b.products);
        let code = &a.products_for_sale()[42].code;
        assert_eq!(a.price(code), b.price(code));
        assert_eq!(a.stock(code, "110101"), b.stock(code, "110101"));
    }

    #[test]
    fn another_seed_gives_another_catalog() {
        let a = Catalog::generate(1, 50);
        let b = Catalog::generate(2, 50);
        assert_ne!(a.products_for_sale()[0].code, b.products_for_sale()[0].code);
    }

    #[test]
    fn a_smaller_catalog_is_a_prefix_of_a_larger_one() {
        let small = Catalog::generate(3, 500);
        let large = Catalog::generate(3, 1000);
        assert_eq!(small.products_for_sale(), &large.products_for_sale()[..500]);
        assert_eq!(
            small.extra_products(),
            &large.extra_products()[..small.extra_products().len()]
        );
    }

    #[test]
    fn codes_are_unique_and_look_like_haier_codes() {
        let catalog = Catalog::generate(1, 5000);
        let codes: HashSet<&str> = catalog.products.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes.len(), 5000 + extra_count(5000));
        for code in codes {
            assert_eq!(code.len(), 9, "{code}");
            assert!(
                code.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()),
                "{code}"
            );
        }
    }

    #[test]
    fn about_two_percent_have_no_price_and_extras_are_not_for_sale() {
        let catalog = Catalog::generate(1, 1000);
        let no_price = catalog
            .products_for_sale()
            .iter()
            .filter(|p| catalog.price(&p.code) == PriceLookup::NoPrice)
            .count();
        assert_eq!(no_price, 20);
        for extra in catalog.extra_products() {
            assert!(!extra.for_sale);
            assert_eq!(catalog.price(&extra.code), PriceLookup::NotForSale);
            assert!(catalog.stock(&extra.code, "110101").is_empty());
        }
        assert_eq!(catalog.price("NOSUCHCODE"), PriceLookup::NotForSale);
        let groups: HashSet<&str> = catalog.products_for_sale().iter().map(|p| p.group).collect();
        assert!(groups.contains("电热水器") && groups.contains("冰箱") && groups.len() == GROUPS.len());
    }

    #[test]
    fn invoice_price_follows_the_contract_rounding_half_up_to_the_fen() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(
            invoice_price(d("2399.00"), d("0.0300"), d("50.00")).to_string(),
            "2277.03"
        );
        // 1000.05 × 0.95 = 950.0475 → 950.05
        assert_eq!(
            invoice_price(d("1000.05"), d("0.0500"), d("0.00")).to_string(),
            "950.05"
        );
        // 100.10 × 0.95 = 95.095 → 95.10 (half-up, not banker's)
        assert_eq!(
            invoice_price(d("100.10"), d("0.0500"), d("0")).to_string(),
            "95.10"
        );
        assert_eq!(invoice_price(d("999"), d("0"), d("0")).to_string(), "999.00");
    }

    #[test]
    fn prices_have_contract_scales() {
        let catalog = Catalog::generate(1, 200);
        for p in catalog.products_for_sale() {
            if let PriceLookup::InForce(price) = catalog.price(&p.code) {
                assert_eq!(price.supply.scale(), 2);
                assert_eq!(price.invoice.scale(), 2);
                assert_eq!(price.rebate_rate.scale(), 4);
                assert_eq!(price.rebate_money.scale(), 2);
                assert!(price.supply.to_string().ends_with("99.00"));
                assert!([0, 1, 2, 5].contains(&price.stock_rebate_policy));
                assert_eq!(
                    price.invoice,
                    invoice_price(price.supply, price.rebate_rate, price.rebate_money)
                );
            }
        }
    }

    #[test]
    fn some_stock_lists_are_empty_and_others_sum_their_warehouses() {
        let catalog = Catalog::generate(1, 100);
        let lists: Vec<Vec<Warehouse>> = catalog
            .products_for_sale()
            .iter()
            .map(|p| catalog.stock(&p.code, "310101"))
            .collect();
        assert!(lists.iter().any(Vec::is_empty));
        assert!(lists.iter().any(|l| l.len() >= 2));
        let code = &catalog.products_for_sale()[0].code;
        let sum: u64 = catalog.stock(code, "310101").iter().map(|w| w.stock).sum();
        assert_eq!(catalog.stock_total(code, "310101"), sum);
    }

    #[test]
    fn mutation_changes_prices_and_stock_and_reset_undoes_it() {
        let catalog = Catalog::generate(1, 500);
        let before: Vec<PriceLookup> = catalog
            .products_for_sale()
            .iter()
            .map(|p| catalog.price(&p.code))
            .collect();
        let mutation = catalog.mutate();
        assert!(!mutation.prices_changed.is_empty());
        assert!(!mutation.stock_changed.is_empty());
        for code in &mutation.prices_changed {
            let i = catalog.by_code[code];
            assert_ne!(catalog.price(code), before[i], "{code}");
        }
        catalog.reset_mutations();
        let after: Vec<PriceLookup> = catalog
            .products_for_sale()
            .iter()
            .map(|p| catalog.price(&p.code))
            .collect();
        assert_eq!(before, after);
        // The same step sequence again gives the same mutation.
        assert_eq!(catalog.mutate(), mutation);
    }
}
