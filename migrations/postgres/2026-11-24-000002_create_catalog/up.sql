-- Product groups (categories) and brands as Haier names them.
CREATE TABLE haier_categories (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);

CREATE TABLE haier_brands (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);

-- One row per product code Haier has listed for the customer.
CREATE TABLE haier_products (
    product_code TEXT PRIMARY KEY NOT NULL,
    model TEXT NOT NULL,
    category TEXT,
    brand TEXT,
    image_url TEXT,
    -- JSON array of leaflet URLs (productLageUrls).
    leaflet_urls TEXT NOT NULL DEFAULT '[]',
    is_sales BOOLEAN NOT NULL,
    no_sales_reason TEXT,
    -- Set by `run-job --category/--brand`: the shop's own category and brand for the product.
    local_category TEXT,
    local_brand TEXT,
    -- Hash of Haier's fields: an unchanged product is not rewritten.
    content_hash TEXT NOT NULL,
    first_seen_at TIMESTAMP NOT NULL,
    -- When Haier's listing last added or changed this row.
    last_seen_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    -- Set when a complete listing no longer contains the product; cleared when it returns.
    delisted_at TIMESTAMP
);
CREATE INDEX haier_products_category ON haier_products (category);
CREATE INDEX haier_products_brand ON haier_products (brand);

-- Supply prices exactly as Haier sent them (decimal text, never recomputed).
CREATE TABLE haier_prices (
    product_code TEXT PRIMARY KEY NOT NULL,
    supply_price TEXT,
    invoice_price TEXT,
    rebate_rate TEXT,
    rebate_money TEXT,
    stock_rebate_policy TEXT,
    reason TEXT,
    is_sales BOOLEAN NOT NULL,
    content_hash TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Every change of supply or invoice price, old -> new.
CREATE TABLE haier_price_changes (
    id BIGSERIAL PRIMARY KEY,
    product_code TEXT NOT NULL,
    old_supply_price TEXT,
    new_supply_price TEXT,
    old_invoice_price TEXT,
    new_invoice_price TEXT,
    changed_at TIMESTAMP NOT NULL
);
CREATE INDEX haier_price_changes_product ON haier_price_changes (product_code, changed_at DESC);
CREATE INDEX haier_price_changes_time ON haier_price_changes (changed_at DESC);

-- Available stock per product and county.
CREATE TABLE haier_stocks (
    product_code TEXT NOT NULL,
    county_code TEXT NOT NULL,
    stock BIGINT NOT NULL,
    -- JSON array of the warehouses Haier listed.
    warehouses TEXT NOT NULL DEFAULT '[]',
    -- The warehouse to show: most stock, grade 0 winning a tie.
    sec_code TEXT,
    warehouse_grade TEXT,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (product_code, county_code)
);

-- Newest logistics state per pushed order.
CREATE TABLE haier_logistics (
    order_code TEXT PRIMARY KEY NOT NULL,
    so_id TEXT NOT NULL,
    state_code TEXT,
    state_description TEXT,
    state_time TEXT,
    company_name TEXT,
    express_no TEXT,
    delivered BOOLEAN NOT NULL DEFAULT FALSE,
    -- The whole reply's data, as JSON.
    raw TEXT NOT NULL DEFAULT '{}',
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX haier_logistics_so_id ON haier_logistics (so_id);
