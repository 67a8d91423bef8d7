//! The audit trail: every command that changes state leaves one `haier_audit_log` row, with who
//! ran it, its arguments and its outcome, and no secret in it; commands that only read leave none.

use crate::support::*;
use haier_sync::audit::secret_values;

#[tokio::test]
async fn every_state_changing_command_leaves_one_audit_row_with_no_secret_in_it() {
    let jobs = "[jobs.tick]\nkind = \"stock\"\nschedule = \"0 0 3 * * *\"\n";
    let app = spawn_app_with(Options::default().extra_toml(jobs)).await;
    seed_products(app.db(), &["P1"]).await;
    let orders = app.dir().join("orders.json");
    std::fs::write(&orders, order_json("SO-1", &["P1"]).to_string()).unwrap();
    let secrets = secret_values(app.config());
    assert!(!secrets.is_empty());
    let secret = secrets[0].clone();
    let reason = format!("rotating the secret {secret}");

    let commands: Vec<(Vec<&str>, i32)> = vec![
        (vec!["migrate"], 0),
        (vec!["pause", "tick", "--reason", &reason], 0),
        (vec!["status"], 0),
        (vec!["resume", "tick"], 0),
        (vec!["outbox", "enqueue", orders.to_str().unwrap()], 0),
        (vec!["outbox", "list"], 0),
        (vec!["outbox", "retry", "SO-1"], 1),
        (
            vec!["outbox", "cancel", "SO-1", "--reason", "customer changed mind"],
            0,
        ),
        (vec!["audit"], 0),
    ];
    for (args, code) in &commands {
        let output = run_command(&app, args);
        assert_eq!(
            output.status.code(),
            Some(*code),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let output = run_command(&app, &["audit", "--json"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret in the audit trail: {text}"
        );
    }
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let seen: Vec<(String, String)> = rows
        .iter()
        .rev()
        .map(|r| {
            (
                r["command"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("migrate", "ok"),
        ("pause", "ok"),
        ("resume", "ok"),
        ("outbox enqueue", "ok"),
        ("outbox retry", "refused"),
        ("outbox cancel", "ok"),
    ];
    assert_eq!(
        seen,
        expected
            .iter()
            .map(|(c, o)| (c.to_string(), o.to_string()))
            .collect::<Vec<_>>()
    );
    let pause = &rows[rows.len() - 2];
    let arguments: serde_json::Value = serde_json::from_str(pause["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments["job"], "tick");
    assert_eq!(arguments["reason"], "rotating the secret ***");
    assert!(!pause["os_user"].as_str().unwrap().is_empty());
    assert!(!pause["host"].as_str().unwrap().is_empty());
    let retry = &rows[1];
    assert_eq!(retry["detail"], "exit code 1");

    // The table form names the same commands.
    let table = String::from_utf8(run_command(&app, &["audit", "--limit", "2"]).stdout).unwrap();
    assert!(
        table.contains("outbox cancel") && table.contains("outbox retry") && !table.contains("migrate"),
        "{table}"
    );
}
