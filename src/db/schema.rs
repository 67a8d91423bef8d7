//! The tables, written to be portable across SQLite and PostgreSQL: timestamps are UTC
//! `Timestamp`, JSON and decimals are `Text`.

diesel::table! {
    haier_sync_logs (id) {
        id -> BigInt,
        job_name -> Text,
        sync_type -> Text,
        status -> Text,
        message -> Nullable<Text>,
        total_count -> BigInt,
        success_count -> BigInt,
        failed_count -> BigInt,
        started_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        scheduled_for -> Nullable<Timestamp>,
        trigger -> Text,
        instance -> Text,
    }
}

diesel::table! {
    haier_sync_instances (instance) {
        instance -> Text,
        hostname -> Text,
        pid -> BigInt,
        version -> Text,
        started_at -> Timestamp,
        heartbeat_at -> Timestamp,
        stopped_at -> Nullable<Timestamp>,
        client_stats -> Nullable<Text>,
        config_hash -> Nullable<Text>,
    }
}

diesel::table! {
    haier_categories (id) {
        id -> BigInt,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    haier_brands (id) {
        id -> BigInt,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    haier_products (product_code) {
        product_code -> Text,
        model -> Text,
        category -> Nullable<Text>,
        brand -> Nullable<Text>,
        image_url -> Nullable<Text>,
        leaflet_urls -> Text,
        is_sales -> Bool,
        no_sales_reason -> Nullable<Text>,
        local_category -> Nullable<Text>,
        local_brand -> Nullable<Text>,
        content_hash -> Text,
        first_seen_at -> Timestamp,
        last_seen_at -> Timestamp,
        updated_at -> Timestamp,
        delisted_at -> Nullable<Timestamp>,
        raw_hash -> Nullable<Binary>,
    }
}

diesel::table! {
    haier_prices (product_code) {
        product_code -> Text,
        supply_price -> Nullable<Text>,
        invoice_price -> Nullable<Text>,
        rebate_rate -> Nullable<Text>,
        rebate_money -> Nullable<Text>,
        stock_rebate_policy -> Nullable<Text>,
        reason -> Nullable<Text>,
        is_sales -> Bool,
        content_hash -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    haier_price_changes (id) {
        id -> BigInt,
        product_code -> Text,
        old_supply_price -> Nullable<Text>,
        new_supply_price -> Nullable<Text>,
        old_invoice_price -> Nullable<Text>,
        new_invoice_price -> Nullable<Text>,
        changed_at -> Timestamp,
    }
}

diesel::table! {
    haier_stocks (product_code, county_code) {
        product_code -> Text,
        county_code -> Text,
        stock -> BigInt,
        warehouses -> Text,
        sec_code -> Nullable<Text>,
        warehouse_grade -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    haier_logistics (order_code) {
        order_code -> Text,
        so_id -> Text,
        state_code -> Nullable<Text>,
        state_description -> Nullable<Text>,
        state_time -> Nullable<Text>,
        company_name -> Nullable<Text>,
        express_no -> Nullable<Text>,
        delivered -> Bool,
        raw -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    haier_order_outbox (id) {
        id -> BigInt,
        so_id -> Text,
        online_no -> Text,
        payload -> Text,
        status -> Text,
        attempts -> BigInt,
        next_attempt_at -> Timestamp,
        locked_by -> Nullable<Text>,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        haier_order_no -> Nullable<Text>,
        pushed_at -> Nullable<Timestamp>,
        confirmed_at -> Nullable<Timestamp>,
        delivered_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        cancel_state -> Nullable<Text>,
        cancel_detail -> Nullable<Text>,
        out_of_stock_at -> Nullable<Timestamp>,
        push_unseen_at -> Nullable<Timestamp>,
        cancel_requested_at -> Nullable<Timestamp>,
        out_of_stock_detail -> Nullable<Text>,
    }
}

diesel::table! {
    haier_order_lines (id) {
        id -> BigInt,
        so_id -> Text,
        product_code -> Text,
        ordered_qty -> BigInt,
        received_qty -> BigInt,
        rejected_qty -> BigInt,
        returned_qty -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    haier_order_events (id) {
        id -> BigInt,
        so_id -> Nullable<Text>,
        method -> Nullable<Text>,
        platform_order_no -> Nullable<Text>,
        state -> Nullable<Text>,
        outcome -> Text,
        detail -> Nullable<Text>,
        raw -> Text,
        fingerprint -> Nullable<Text>,
        received_at -> Timestamp,
        clock_skew_secs -> Nullable<BigInt>,
        ext_order_no -> Nullable<Text>,
        attached_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    haier_order_shipments (id) {
        id -> BigInt,
        so_id -> Text,
        haier_order_no -> Text,
        delivery_record_code -> Text,
        carrier_code -> Nullable<Text>,
        carrier_name -> Nullable<Text>,
        express_no -> Text,
        serial_numbers -> Text,
        fetched_at -> Timestamp,
    }
}

diesel::table! {
    haier_job_pauses (job_name) {
        job_name -> Text,
        paused_by -> Text,
        paused_at -> Timestamp,
        reason -> Text,
        resumed_by -> Nullable<Text>,
        resumed_at -> Nullable<Timestamp>,
        catch_up_requested -> Bool,
    }
}

diesel::table! {
    haier_job_triggers (id) {
        id -> BigInt,
        job_name -> Text,
        requested_at -> Timestamp,
        requested_by -> Text,
        run_if_paused -> Bool,
        expires_at -> Timestamp,
        state -> Text,
        claimed_by -> Nullable<Text>,
        claimed_at -> Nullable<Timestamp>,
        sync_log_id -> Nullable<BigInt>,
        finished_at -> Nullable<Timestamp>,
        message -> Nullable<Text>,
    }
}

diesel::table! {
    haier_audit_log (id) {
        id -> BigInt,
        at -> Timestamp,
        os_user -> Text,
        host -> Text,
        command -> Text,
        arguments -> Text,
        outcome -> Text,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    haier_retention_prunes (id) {
        id -> BigInt,
        trigger -> Text,
        daily_seq -> Nullable<BigInt>,
        instance -> Text,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        outcome -> Text,
        deleted -> BigInt,
        counts -> Nullable<Text>,
        message -> Nullable<Text>,
    }
}

diesel::table! {
    haier_job_missed_fires (job_name) {
        job_name -> Text,
        missed_count -> BigInt,
        caught_up_count -> BigInt,
        first_missed_at -> Timestamp,
        last_missed_at -> Timestamp,
        detected_at -> Timestamp,
        detected_by -> Text,
    }
}

diesel::table! {
    haier_shop_events (id) {
        id -> BigInt,
        so_id -> Text,
        seq -> BigInt,
        state -> Text,
        cancel_state -> Nullable<Text>,
        haier_order_no -> Nullable<Text>,
        reason -> Nullable<Text>,
        lines -> Text,
        shipments -> Text,
        schedule -> Text,
        source -> Text,
        created_at -> Timestamp,
        delivery -> Text,
        attempts -> BigInt,
        next_attempt_at -> Timestamp,
        locked_by -> Nullable<Text>,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    haier_quota (system) {
        system -> Text,
        tat_us -> BigInt,
    }
}

diesel::table! {
    haier_quota_leases (participant, system, leased_at_us) {
        participant -> Text,
        system -> Text,
        leased_at_us -> BigInt,
        permits -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    haier_sync_logs,
    haier_sync_instances,
    haier_categories,
    haier_brands,
    haier_products,
    haier_prices,
    haier_price_changes,
    haier_stocks,
    haier_logistics,
    haier_order_outbox,
    haier_order_lines,
    haier_order_events,
    haier_order_shipments,
    haier_job_pauses,
    haier_job_triggers,
    haier_audit_log,
    haier_retention_prunes,
    haier_job_missed_fires,
    haier_shop_events,
    haier_quota,
    haier_quota_leases,
);
