//! `contrib/`: the Grafana dashboard parses and, like the Prometheus alerts, names only metrics the daemon exports.
//! (`.ci/run` also runs `promtool check rules` and `promtool test rules` on the alerts, and checks every dashboard
//! query's PromQL with promtool.)
use std::collections::BTreeSet;

/// Every sample name the daemon's registry can export.
fn exported() -> BTreeSet<String> {
    zdsync::telemetry::metrics().names.iter().cloned().collect()
}

/// The metric names a PromQL expression uses (zdsync's and the gRPC server's).
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|token| token.starts_with("zdsync_") || token.starts_with("grpc_server_"))
        .map(str::to_owned)
        .collect()
}

fn collect_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                    _ => collect_exprs(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_exprs(item, out)),
        _ => {}
    }
}

#[test]
fn the_dashboard_parses_and_names_only_exported_metrics() {
    let exported = exported();
    assert!(
        exported.contains("grpc_server_handled_total"),
        "{exported:?}"
    );
    assert!(exported.contains("grpc_server_handling_seconds_bucket"));
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/grafana/zdsync.json"
    ))
    .expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "zdsync");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "a query names a zdsync metric: {expr}");
        for name in names {
            assert!(
                exported.contains(&name),
                "{name} (in `{expr}`) is not exported; exported: {exported:?}"
            );
            used.insert(name);
        }
    }
    // The four areas the dashboard covers.
    for name in [
        "zdsync_last_successful_sync_timestamp_seconds",
        "zdsync_zendesk_requests_total",
        "zdsync_zendesk_rate_limit_wait_seconds_total",
        "zdsync_sync_tickets_total",
        "grpc_server_handling_seconds_bucket",
    ] {
        assert!(used.contains(name), "the dashboard shows {name}");
    }
}

#[test]
fn the_alerts_name_only_exported_metrics() {
    let exported = exported();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/prometheus/alerts.yml"
    ))
    .expect("the alerts");
    let mut alerts = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("- alert: ") {
            alerts.push(name.to_owned());
        }
        if let Some(expr) = line.strip_prefix("expr: ") {
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{expr}");
            for name in names {
                assert!(
                    exported.contains(&name),
                    "{name} (in `{expr}`) is not exported"
                );
            }
        }
    }
    for alert in [
        "ZdsyncNoSuccessfulSync",
        "ZdsyncAuthenticationFailing",
        "ZdsyncStoreNotWritable",
    ] {
        assert!(alerts.iter().any(|a| a == alert), "{alert} in {alerts:?}");
    }
}
