//! The audit log with the real kubectl: one JSON line per request with who,
//! what, the decision and the code; and a Secret's value in none of the
//! audit file, the kernel's log (at debug level) or kubectl's error messages.

use std::process::Output;

use base64::Engine as _;
use kerno_tests::{Backend, Kerno, eventually};

const SECRET_VALUE: &str = "hunter2-correct-horse-battery";

fn events(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn every_request_is_audited_and_secret_values_are_written_nowhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.log");
    let log = dir.path().join("kernel.log");
    std::fs::write(
        dir.path().join("tokens.csv"),
        "erin-token-16180,erin,1005\n",
    )
    .expect("tokens");
    let audit_arg = audit.display().to_string();
    let tokens_arg = dir.path().join("tokens.csv").display().to_string();
    let k = Kerno::start_logged(
        Backend::Embedded,
        &["--audit-log", &audit_arg, "--token-auth-file", &tokens_arg],
        &log,
        "debug",
    )
    .expect("kerno");

    let encoded = base64::engine::general_purpose::STANDARD.encode(SECRET_VALUE);
    let literal = format!("--from-literal=password={SECRET_VALUE}");
    let mut errors = String::new();
    k.kubectl_ok(&["create", "secret", "generic", "db", &literal]);
    // Failing writes carrying the value: a bad name, bad data, a bad type.
    errors += &all_output(&k.kubectl(&["create", "secret", "generic", "Bad_Name", &literal]));
    let bad_key = format!("--from-literal=bad key={SECRET_VALUE}");
    errors += &all_output(&k.kubectl(&["create", "secret", "generic", "db2", &bad_key]));
    let bad_patch = format!(r#"{{"data":{{"password":"{SECRET_VALUE}!"}}}}"#);
    errors += &all_output(&k.kubectl(&["patch", "secret", "db", "-p", &bad_patch]));
    let bad_type = format!(r#"{{"stringData":{{"password":"{SECRET_VALUE}"}},"type":7}}"#);
    errors += &all_output(&k.kubectl(&["patch", "secret", "db", "--type=merge", "-p", &bad_type]));
    let immutable =
        format!(r#"{{"metadata":{{"name":"other"}},"stringData":{{"k":"{SECRET_VALUE}"}}}}"#);
    errors += &all_output(&k.kubectl(&["patch", "secret", "db", "--type=merge", "-p", &immutable]));
    for refusal in [
        "Secret \"Bad_Name\" is invalid",
        "must be base64-encoded",
        "Error from server",
    ] {
        assert!(errors.contains(refusal), "{refusal:?} not in {errors}");
    }
    let got = k.kubectl_ok(&["get", "secret", "db", "-o", "jsonpath={.data.password}"]);
    assert_eq!(got, encoded, "the secret was stored");
    let refused = k.kubectl(&["--token", "erin-token-16180", "get", "secret", "db"]);
    assert!(!refused.status.success());

    let lines = eventually(std::time::Duration::from_secs(10), || {
        let lines = events(&audit);
        lines
            .iter()
            .any(|e| e["user"]["username"] == "erin")
            .then_some(lines)
    })
    .expect("erin's request is audited");
    let create = lines
        .iter()
        .find(|e| {
            e["verb"] == "create"
                && e["objectRef"]["resource"] == "secrets"
                && e["responseStatus"]["code"] == 201
        })
        .expect("the secret's create is audited");
    assert_eq!(create["objectRef"]["namespace"], "default");
    assert_eq!(create["user"]["username"], "kerno-admin", "{create}");
    assert_eq!(
        create["annotations"]["authorization.k8s.io/decision"],
        "allow"
    );
    assert_eq!(
        create["requestURI"],
        "/api/v1/namespaces/default/secrets?fieldManager=kubectl-create&fieldValidation=Strict"
    );
    let patch = lines
        .iter()
        .find(|e| e["verb"] == "patch" && e["objectRef"]["name"] == "db")
        .expect("a patch is audited");
    assert_eq!(patch["objectRef"]["resource"], "secrets");
    let denied = lines
        .iter()
        .find(|e| e["user"]["username"] == "erin")
        .expect("erin");
    assert_eq!(denied["verb"], "get");
    assert_eq!(denied["responseStatus"]["code"], 403);
    assert_eq!(denied["objectRef"]["name"], "db");
    assert_eq!(
        denied["annotations"]["authorization.k8s.io/decision"],
        "forbid"
    );
    assert!(
        denied["annotations"]["authorization.k8s.io/reason"]
            .as_str()
            .is_some_and(|r| r.contains("cannot get resource \"secrets\"")),
        "{denied}"
    );

    let audit_text = std::fs::read_to_string(&audit).expect("audit");
    let log_text = std::fs::read_to_string(&log).expect("log");
    assert!(
        log_text.contains("DEBUG"),
        "the kernel logs at debug: {log_text}"
    );
    for (what, text) in [
        ("audit log", &audit_text),
        ("kernel log", &log_text),
        ("kubectl errors", &errors),
    ] {
        assert!(
            !text.contains(SECRET_VALUE) && !text.contains(&encoded),
            "the secret value is in the {what}:\n{text}"
        );
    }
}
