//! The real `kubectl` against `kerno up`: every step asserts on what kubectl
//! printed.

use std::process::{Command, Stdio};
use std::time::Duration;

use kerno_tests::Kerno;

const MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  namespace: demo
data:
  greeting: hello
---
apiVersion: v1
kind: Secret
metadata:
  name: app-secret
  namespace: demo
stringData:
  password: s3cr3t
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: busybox:1.36
        command: ["httpd", "-f", "-p", "8080"]
        ports:
        - containerPort: 8080
        env:
        - name: MODE
          value: demo
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    kind: Widget
    plural: widgets
    singular: widget
    shortNames: ["wd"]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size:
                type: integer
              color:
                type: string
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
"#;

const WIDGET: &str = r#"
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
  namespace: demo
spec:
  size: 3
  color: blue
"#;

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// The row of a `kubectl get` table whose first column is `name`.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(words)
        .find(|w| w.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
}

#[test]
fn kubectl_drives_the_kernel() {
    let k = Kerno::up().expect("kerno up");
    let replicas = || {
        k.kubectl_ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
    };

    // version: server reports 1.33, within kubectl 1.32's skew.
    let version = k.kubectl_ok(&["version"]);
    assert!(version.contains("Server Version: v1.33"), "{version}");
    let version_err = String::from_utf8_lossy(&k.kubectl(&["version"]).stderr).into_owned();
    assert!(!version_err.contains("WARNING"), "{version_err}");

    // The initial namespaces exist.
    let namespaces = k.kubectl_ok(&["get", "namespaces"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert_eq!(row(&namespaces, ns)[1], "Active", "{namespaces}");
    }

    // apply -f of a multi-document manifest.
    let applied = k.kubectl_stdin(&["apply", "-f", "-"], Some(MANIFEST));
    let applied_out = String::from_utf8_lossy(&applied.stdout);
    assert!(
        applied.status.success(),
        "{applied_out}{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    for line in [
        "namespace/demo created",
        "configmap/app-config created",
        "secret/app-secret created",
        "deployment.apps/web created",
        "service/web created",
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created",
    ] {
        assert!(
            applied_out.contains(line),
            "missing {line:?} in:\n{applied_out}"
        );
    }
    let widget = k.kubectl_stdin(&["apply", "-f", "-"], Some(WIDGET));
    assert!(
        String::from_utf8_lossy(&widget.stdout).contains("widget.example.com/w1 created"),
        "{}{}",
        String::from_utf8_lossy(&widget.stdout),
        String::from_utf8_lossy(&widget.stderr)
    );
    // A second apply of the same manifest changes nothing.
    let again = k.kubectl_stdin(&["apply", "-f", "-"], Some(MANIFEST));
    let again_out = String::from_utf8_lossy(&again.stdout);
    assert!(
        again_out.contains("deployment.apps/web unchanged"),
        "{again_out}"
    );

    // get: default table, -o wide, -o yaml, -o jsonpath.
    let deployments = k.kubectl_ok(&["get", "deployments", "-n", "demo"]);
    assert_eq!(
        words(deployments.lines().next().unwrap_or_default()),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(row(&deployments, "web")[1], "0/2", "{deployments}");
    let wide = k.kubectl_ok(&["get", "deploy", "web", "-n", "demo", "-o", "wide"]);
    let wide_row = row(&wide, "web");
    assert!(
        wide_row.contains(&"busybox:1.36") && wide_row.contains(&"app=web"),
        "{wide}"
    );
    let cm_yaml = k.kubectl_ok(&["get", "configmap", "app-config", "-n", "demo", "-o", "yaml"]);
    assert!(
        cm_yaml.contains("greeting: hello") && cm_yaml.contains("resourceVersion:"),
        "{cm_yaml}"
    );
    let secret = k.kubectl_ok(&[
        "get",
        "secret",
        "app-secret",
        "-n",
        "demo",
        "-o",
        "jsonpath={.data.password}",
    ]);
    assert_eq!(secret, "czNjcjN0", "stringData becomes base64 data");
    assert_eq!(replicas(), "2");
    let strategy = k.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-n",
        "demo",
        "-o",
        "jsonpath={.spec.strategy.type}",
    ]);
    assert_eq!(strategy, "RollingUpdate", "defaulted");
    let widgets = k.kubectl_ok(&["get", "wd", "-n", "demo"]);
    assert_eq!(
        row(&widgets, "w1")[1],
        "3",
        "printer column Size: {widgets}"
    );
    let services = k.kubectl_ok(&["get", "svc", "-n", "demo"]);
    assert!(row(&services, "web").contains(&"80/TCP"), "{services}");

    // describe.
    let described = k.kubectl_ok(&["describe", "deployment", "web", "-n", "demo"]);
    assert!(
        described.contains("Name:") && described.contains("web"),
        "{described}"
    );
    assert!(described.contains("2 desired"), "{described}");
    assert!(described.contains("busybox:1.36"), "{described}");

    // label, annotate, selectors.
    assert!(
        k.kubectl_ok(&["label", "deployment", "web", "-n", "demo", "tier=frontend"])
            .contains("deployment.apps/web labeled")
    );
    let selected = k.kubectl_ok(&[
        "get",
        "deploy",
        "-n",
        "demo",
        "-l",
        "tier=frontend",
        "-o",
        "name",
    ]);
    assert_eq!(selected.trim(), "deployment.apps/web");
    let none = k.kubectl_ok(&[
        "get",
        "deploy",
        "-n",
        "demo",
        "-l",
        "tier!=frontend",
        "-o",
        "name",
    ]);
    assert_eq!(none.trim(), "");
    assert!(
        k.kubectl_ok(&[
            "annotate",
            "deployment",
            "web",
            "-n",
            "demo",
            "owner=team-a"
        ])
        .contains("annotated")
    );
    let owner = k.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-n",
        "demo",
        "-o",
        "jsonpath={.metadata.annotations.owner}",
    ]);
    assert_eq!(owner, "team-a");

    // patch: merge, JSON and strategic.
    assert!(
        k.kubectl_ok(&[
            "patch",
            "deploy",
            "web",
            "-n",
            "demo",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":3}}"#
        ])
        .contains("patched")
    );
    assert_eq!(replicas(), "3");
    assert!(
        k.kubectl_ok(&[
            "patch",
            "deploy",
            "web",
            "-n",
            "demo",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#
        ])
        .contains("patched")
    );
    assert_eq!(replicas(), "4");
    let strategic =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"busybox:1.37"}]}}}}"#;
    assert!(
        k.kubectl_ok(&["patch", "deploy", "web", "-n", "demo", "-p", strategic])
            .contains("patched")
    );
    let containers = k.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-n",
        "demo",
        "-o",
        "jsonpath={range .spec.template.spec.containers[*]}{.name}={.image} {.command[0]}{end}",
    ]);
    assert_eq!(
        containers, "web=busybox:1.37 httpd",
        "strategic merge keeps the container's other fields"
    );
    let generation = k.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-n",
        "demo",
        "-o",
        "jsonpath={.metadata.generation}",
    ]);
    assert!(
        generation.parse::<i64>().unwrap_or(0) >= 4,
        "generation grows with spec changes: {generation}"
    );

    // scale.
    assert!(
        k.kubectl_ok(&["scale", "deployment", "web", "-n", "demo", "--replicas=5"])
            .contains("deployment.apps/web scaled")
    );
    assert_eq!(replicas(), "5");

    // Server-side apply, with a conflict against the other managers.
    let ssa = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"demo"},"spec":{"replicas":7}}"#;
    let conflict = k.kubectl_stdin(
        &["apply", "--server-side", "--field-manager=ops", "-f", "-"],
        Some(ssa),
    );
    assert!(!conflict.status.success());
    let conflict_err = String::from_utf8_lossy(&conflict.stderr);
    assert!(conflict_err.contains("conflict"), "{conflict_err}");
    assert!(conflict_err.contains(".spec.replicas"), "{conflict_err}");
    let forced = k.kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=ops",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(ssa),
    );
    assert!(
        String::from_utf8_lossy(&forced.stdout).contains("deployment.apps/web serverside-applied"),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert_eq!(replicas(), "7");
    let managers = k.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-n",
        "demo",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert!(managers.contains("ops"), "{managers}");
    let widget_ssa = WIDGET.replace("size: 3", "size: 9");
    let applied_widget = k.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(&widget_ssa));
    assert!(
        String::from_utf8_lossy(&applied_widget.stdout).contains("serverside-applied"),
        "{}",
        String::from_utf8_lossy(&applied_widget.stderr)
    );
    assert_eq!(
        k.kubectl_ok(&[
            "get",
            "widget",
            "w1",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.size}"
        ]),
        "9"
    );

    // replace (what `edit` does).
    let json = k.kubectl_ok(&["get", "configmap", "app-config", "-n", "demo", "-o", "json"]);
    let edited = json.replace("\"hello\"", "\"bonjour\"");
    let replaced = k.kubectl_stdin(&["replace", "-f", "-"], Some(&edited));
    assert!(
        String::from_utf8_lossy(&replaced.stdout).contains("configmap/app-config replaced"),
        "{}",
        String::from_utf8_lossy(&replaced.stderr)
    );
    // Replacing again with the now stale resourceVersion conflicts.
    let stale = k.kubectl_stdin(&["replace", "-f", "-"], Some(&edited));
    let stale_err = String::from_utf8_lossy(&stale.stderr);
    assert!(stale_err.contains("the object has been modified; please apply your changes to the latest version and try again"), "{stale_err}");

    // get -w sees ADDED, MODIFIED and DELETED.
    let mut watch = Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(k.kubeconfig())
        .args([
            "get",
            "configmaps",
            "-n",
            "demo",
            "-w",
            "--output-watch-events",
            "--request-timeout=30s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl get -w");
    std::thread::sleep(Duration::from_millis(1500));
    k.kubectl_ok(&[
        "create",
        "configmap",
        "watched",
        "-n",
        "demo",
        "--from-literal=a=1",
    ]);
    k.kubectl_ok(&["label", "configmap", "watched", "-n", "demo", "seen=yes"]);
    k.kubectl_ok(&["delete", "configmap", "watched", "-n", "demo"]);
    std::thread::sleep(Duration::from_millis(1500));
    let _ = watch.kill();
    let watched = watch.wait_with_output().expect("watch output");
    let watched_out = String::from_utf8_lossy(&watched.stdout);
    let events: Vec<Vec<&str>> = watched_out
        .lines()
        .map(words)
        .filter(|w| w.get(1) == Some(&"watched"))
        .collect();
    let kinds: Vec<&str> = events.iter().map(|w| w[0]).collect();
    assert_eq!(
        kinds,
        ["ADDED", "MODIFIED", "DELETED"],
        "{watched_out}{}",
        String::from_utf8_lossy(&watched.stderr)
    );

    // Discovery as kubectl shows it.
    let resources = k.kubectl_ok(&["api-resources"]);
    assert_eq!(
        row(&resources, "deployments"),
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
    assert_eq!(
        row(&resources, "namespaces"),
        ["namespaces", "ns", "v1", "false", "Namespace"]
    );
    assert_eq!(
        row(&resources, "widgets"),
        ["widgets", "wd", "example.com/v1", "true", "Widget"]
    );
    assert!(
        resources
            .lines()
            .any(|l| l.starts_with("plugins") && l.contains("kerno.dev/v1")),
        "{resources}"
    );
    let versions = k.kubectl_ok(&["api-versions"]);
    for v in [
        "v1",
        "apps/v1",
        "batch/v1",
        "example.com/v1",
        "kerno.dev/v1",
        "rbac.authorization.k8s.io/v1",
    ] {
        assert!(
            versions.lines().any(|l| l == v),
            "{v} missing in:\n{versions}"
        );
    }

    // explain reads the served OpenAPI.
    let explained = k.kubectl_ok(&["explain", "deployment.spec.strategy"]);
    assert!(
        explained.contains("KIND:") && explained.contains("Deployment"),
        "{explained}"
    );
    assert!(explained.contains("rollingUpdate"), "{explained}");

    // Strict field validation refuses unknown fields.
    let typo = MANIFEST
        .split("---")
        .nth(1)
        .unwrap_or_default()
        .replace("\ndata:", "\ndta:");
    let refused = k.kubectl_stdin(&["apply", "-f", "-"], Some(&typo));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("unknown field \"dta\""),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // delete, with cascade flags.
    let foreground = k.kubectl_ok(&[
        "delete",
        "deployment",
        "web",
        "-n",
        "demo",
        "--cascade=foreground",
        "--wait=false",
    ]);
    assert!(
        foreground.contains("deployment.apps \"web\" deleted"),
        "{foreground}"
    );
    let finalizers = k.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-n",
        "demo",
        "-o",
        "jsonpath={.metadata.finalizers}",
    ]);
    assert!(
        finalizers.contains("foregroundDeletion"),
        "foreground deletion waits on its dependents: {finalizers}"
    );
    assert!(
        k.kubectl_ok(&["delete", "svc", "web", "-n", "demo", "--cascade=background"])
            .contains("service \"web\" deleted")
    );
    let gone = k.kubectl_err(&["get", "svc", "web", "-n", "demo"]);
    assert!(gone.contains("services \"web\" not found"), "{gone}");
    assert!(
        k.kubectl_ok(&["delete", "widget", "w1", "-n", "demo"])
            .contains("deleted")
    );
    assert!(
        k.kubectl_ok(&["delete", "crd", "widgets.example.com"])
            .contains("deleted")
    );
    let no_widgets = k.kubectl_err(&["get", "widgets", "-n", "demo"]);
    assert!(
        no_widgets.contains("NotFound") || no_widgets.contains("doesn't have a resource type"),
        "{no_widgets}"
    );
    let resources = k.kubectl_ok(&["api-resources"]);
    assert!(
        !resources.lines().any(|l| l.starts_with("widgets")),
        "{resources}"
    );
}
