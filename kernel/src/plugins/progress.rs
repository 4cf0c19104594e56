//! Progress lines while plugins come up, for `kerno up`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

use tokio::sync::watch;

use super::status::phase;
use super::supervisor::PluginReport;

/// Whether a plugin has settled enough to be reported: running, or failed
/// at least once.
fn settled(report: &PluginReport) -> bool {
    report.phase == phase::RUNNING || report.last_error.is_some()
}

/// Prints one line per plugin as it reaches Running or fails, for at most
/// `patience`; returns the last reports.
pub async fn print_progress(
    mut reports: watch::Receiver<BTreeMap<String, PluginReport>>,
    patience: Duration,
    out: &mut (impl Write + Send),
) -> BTreeMap<String, PluginReport> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut printed = BTreeSet::new();
    loop {
        let current = reports.borrow_and_update().clone();
        for (name, report) in &current {
            if settled(report) && printed.insert(name.clone()) {
                let _ = match (&report.last_error, report.phase.as_str()) {
                    (_, phase::RUNNING) => writeln!(out, "  plugin {name}: Running"),
                    (Some(error), phase) => writeln!(out, "  plugin {name}: {phase}: {error}"),
                    (None, phase) => writeln!(out, "  plugin {name}: {phase}"),
                };
                let _ = out.flush();
            }
        }
        if current.values().all(settled) {
            return current;
        }
        match tokio::time::timeout_at(deadline, reports.changed()).await {
            Ok(Ok(())) => {}
            _ => {
                let current = reports.borrow().clone();
                for name in current.keys().filter(|n| !printed.contains(*n)) {
                    let _ = writeln!(out, "  plugin {name}: still starting after {patience:?}");
                }
                return current;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn prints_each_plugin_once_as_it_settles() {
        let report = |phase: &str, error: Option<&str>| PluginReport {
            phase: phase.into(),
            last_error: error.map(str::to_owned),
            restarts: 0,
        };
        let (tx, rx) = watch::channel(BTreeMap::from([
            ("a".to_owned(), report(phase::STARTING, None)),
            ("b".to_owned(), report(phase::STARTING, None)),
        ]));
        let task = tokio::spawn(async move {
            let mut out = Vec::new();
            let last = print_progress(rx, Duration::from_secs(5), &mut out).await;
            (String::from_utf8_lossy(&out).into_owned(), last)
        });
        tx.send_modify(|r| {
            r.insert("a".into(), report(phase::RUNNING, None));
        });
        tx.send_modify(|r| {
            r.insert("b".into(), report(phase::FAILED, Some("handshake: bad")));
        });
        let (text, last) = task.await.unwrap_or_else(|e| panic!("{e}"));
        assert!(text.contains("  plugin a: Running\n"), "{text}");
        assert!(
            text.contains("  plugin b: Failed: handshake: bad\n"),
            "{text}"
        );
        assert_eq!(last.len(), 2);
    }
}
