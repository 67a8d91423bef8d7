//! Every state enum holds exactly the texts its column's `CHECK` constraint allows, as read from a
//! freshly migrated database on the suite's backend, so that the enum and the migrations cannot
//! drift apart. A new state enum is one test here: [`assert_texts_match_check`] with its texts,
//! table and column.

use diesel::prelude::*;
use diesel::sql_types::Text;
use haier_sync::audit::AuditOutcome;
use haier_sync::control::triggers::TriggerState;
use haier_sync::db::testing::TestDb;
use haier_sync::db::DbConnection;
use haier_sync::orders::{CallbackOutcome, CancelState, OutboxStatus};
use haier_sync::retention::store::{PruneOutcome, PruneTrigger};
use haier_sync::runs::{RunStatus, SyncType, Trigger};
use std::collections::BTreeSet;

#[tokio::test]
async fn run_status_holds_the_texts_the_sync_log_allows() {
    assert_texts_match_check(RunStatus::TEXTS, "haier_sync_logs", "status").await;
}

#[tokio::test]
async fn sync_type_holds_the_texts_the_sync_log_allows() {
    assert_texts_match_check(SyncType::TEXTS, "haier_sync_logs", "sync_type").await;
}

#[tokio::test]
async fn trigger_holds_the_texts_the_sync_log_allows() {
    assert_texts_match_check(Trigger::TEXTS, "haier_sync_logs", "trigger").await;
}

/// With `out_of_stock` and `returned` (migration `2026-12-01-000001_add_order_lines`).
#[tokio::test]
async fn outbox_status_holds_the_texts_the_outbox_allows() {
    assert_texts_match_check(OutboxStatus::TEXTS, "haier_order_outbox", "status").await;
}

/// With `partly_cancelled` (once `partial`), `partly_returned` and `returned`.
#[tokio::test]
async fn cancel_state_holds_the_texts_the_outbox_allows() {
    assert_texts_match_check(CancelState::TEXTS, "haier_order_outbox", "cancel_state").await;
}

#[tokio::test]
async fn callback_outcome_holds_the_texts_the_event_table_allows() {
    assert_texts_match_check(CallbackOutcome::TEXTS, "haier_order_events", "outcome").await;
}

#[tokio::test]
async fn audit_outcome_holds_the_texts_the_audit_log_allows() {
    assert_texts_match_check(AuditOutcome::TEXTS, "haier_audit_log", "outcome").await;
}

#[tokio::test]
async fn prune_trigger_holds_the_texts_the_prune_table_allows() {
    assert_texts_match_check(PruneTrigger::TEXTS, "haier_retention_prunes", "trigger").await;
}

#[tokio::test]
async fn prune_outcome_holds_the_texts_the_prune_table_allows() {
    assert_texts_match_check(PruneOutcome::TEXTS, "haier_retention_prunes", "outcome").await;
}

#[tokio::test]
async fn trigger_state_holds_the_texts_the_run_now_requests_allow() {
    assert_texts_match_check(TriggerState::TEXTS, "haier_job_triggers", "state").await;
}

#[test]
fn check_lists_are_read_in_both_dialects() {
    let sqlite = "CREATE TABLE t (\n    status TEXT NOT NULL CHECK (status IN ('a', 'b_c')),\n    \
                  \"trigger\" TEXT NOT NULL DEFAULT 'x' CHECK (\"trigger\" in ('x','y''s')),\n    \
                  state TEXT CHECK (state IS NULL OR state IN ('p'))\n)";
    assert_eq!(allowed_texts(sqlite, "status"), ["a", "b_c"]);
    assert_eq!(allowed_texts(sqlite, "trigger"), ["x", "y's"]);
    assert_eq!(allowed_texts(sqlite, "state"), ["p"]);
    let postgres = "CHECK ((\"trigger\" = ANY (ARRAY['schedule'::text, 'catch_up'::text])))";
    assert_eq!(allowed_texts(postgres, "trigger"), ["schedule", "catch_up"]);
    assert!(allowed_texts(postgres, "status").is_empty());
}

/// Asserts that `texts` (an enum's `TEXTS`) are, as a set, the texts the `CHECK` constraint on
/// `table.column` allows in a fresh database on the suite's backend.
pub async fn assert_texts_match_check(texts: &[&str], table: &str, column: &str) {
    let test = TestDb::new().await;
    let allowed = check_list(&test, table, column).await;
    let declared: BTreeSet<String> = texts.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(
        declared,
        allowed,
        "the enum's texts differ from the CHECK list of {table}.{column} on {}",
        test.backend()
    );
}

#[derive(QueryableByName)]
struct Definition {
    #[diesel(sql_type = Text)]
    definition: String,
}

/// The texts the `CHECK` constraint on `table.column` allows, read from the live database: on
/// SQLite from the table's `CREATE TABLE` text in `sqlite_master`, on PostgreSQL from
/// `pg_get_constraintdef` of the table's check constraints. Panics when no list is found.
pub async fn check_list(test: &TestDb, table: &str, column: &str) -> BTreeSet<String> {
    let (table, column) = (table.to_owned(), column.to_owned());
    test.db
        .run(move |conn| {
            let definitions: Vec<Definition> = match conn {
                DbConnection::Sqlite(c) => diesel::sql_query(
                    "SELECT sql AS definition FROM sqlite_master WHERE type = 'table' AND name = ?",
                )
                .bind::<Text, _>(&table)
                .load(c)?,
                DbConnection::Pg(c) => diesel::sql_query(
                    "SELECT pg_get_constraintdef(k.oid) AS definition \
                     FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid \
                     WHERE t.relname = $1 AND k.contype = 'c' AND pg_table_is_visible(t.oid)",
                )
                .bind::<Text, _>(&table)
                .load(c)?,
            };
            let allowed: BTreeSet<String> = definitions
                .iter()
                .flat_map(|d| allowed_texts(&d.definition, &column))
                .collect();
            assert!(
                !allowed.is_empty(),
                "no CHECK list for {table}.{column} in: {:#?}",
                definitions.iter().map(|d| &d.definition).collect::<Vec<_>>()
            );
            Ok(allowed)
        })
        .await
        .unwrap()
}

/// The quoted texts of every `column IN (...)` (SQLite, as written in the migration) and
/// `column = ANY (ARRAY[...])` (PostgreSQL, as `pg_get_constraintdef` renders it) in `definition`.
fn allowed_texts(definition: &str, column: &str) -> Vec<String> {
    let quoted = format!("\"{column}\"");
    let mut texts = Vec::new();
    let mut from = 0;
    while let Some(found) = next_identifier(definition, from, column, &quoted) {
        let (start, len) = found;
        from = start + len;
        let rest = definition[from..].trim_start();
        let list = if let Some(list) = strip_prefix_ignore_case(rest, "IN") {
            list.trim_start().strip_prefix('(')
        } else if let Some(list) = rest.strip_prefix('=') {
            strip_prefix_ignore_case(list.trim_start(), "ANY")
                .and_then(|l| l.trim_start().strip_prefix('('))
                .and_then(|l| strip_prefix_ignore_case(l.trim_start(), "ARRAY"))
                .and_then(|l| l.trim_start().strip_prefix('['))
        } else {
            None
        };
        if let Some(list) = list {
            texts.extend(quoted_texts_until_close(list));
        }
    }
    texts
}

/// The next place at or after `from` where `column` appears as a whole identifier, bare or
/// double-quoted: its start and length.
fn next_identifier(text: &str, from: usize, bare: &str, quoted: &str) -> Option<(usize, usize)> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut at = from;
    loop {
        let bare_at = text[at..].find(bare).map(|i| at + i);
        let quoted_at = text[at..].find(quoted).map(|i| at + i);
        let (start, len) = match (bare_at, quoted_at) {
            (Some(b), Some(q)) if q < b => (q, quoted.len()),
            (Some(b), _) => (b, bare.len()),
            (None, Some(q)) => (q, quoted.len()),
            (None, None) => return None,
        };
        if len == quoted.len() {
            return Some((start, len));
        }
        let before = text[..start].chars().next_back();
        let after = text[start + len..].chars().next();
        if !before.is_some_and(|c| is_ident(c) || c == '"') && !after.is_some_and(|c| is_ident(c) || c == '"')
        {
            return Some((start, len));
        }
        at = start + len;
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    let rest = &text[prefix.len()..];
    let whole_word = !rest
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    (head.eq_ignore_ascii_case(prefix) && whole_word).then_some(rest)
}

/// The single-quoted texts (`''` is a quote inside one) before the bracket that closes the list
/// `text` starts inside of.
fn quoted_texts_until_close(text: &str) -> Vec<String> {
    let mut texts = Vec::new();
    let mut depth = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let mut literal = String::new();
                while let Some(c) = chars.next() {
                    if c == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                            literal.push('\'');
                        } else {
                            break;
                        }
                    } else {
                        literal.push(c);
                    }
                }
                texts.push(literal);
            }
            '(' | '[' => depth += 1,
            ')' | ']' if depth == 0 => break,
            ')' | ']' => depth -= 1,
            _ => {}
        }
    }
    texts
}
