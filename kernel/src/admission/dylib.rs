//! In-process admission modules loaded from shared libraries: no network hop,
//! a JSON encode and decode per request.

use std::path::Path;

use async_trait::async_trait;
use kerno_admission_ffi::Module;

use super::{AdmissionModule, AdmissionRequest, AdmissionResponse, Phase};
use crate::error::ApiError;

/// A loaded shared-library module.
#[derive(Debug)]
pub struct DylibModule {
    module: Module,
}

impl DylibModule {
    /// Loads the module at `path`; a missing file, a library that is not a
    /// module or another ABI version is a clear error (start-up fails on it).
    pub fn load(path: &Path) -> Result<Self, kerno_admission_ffi::Error> {
        Ok(Self {
            module: Module::load(path)?,
        })
    }
}

#[async_trait]
impl AdmissionModule for DylibModule {
    fn name(&self) -> &str {
        self.module.name()
    }

    fn phase(&self) -> Phase {
        self.module.phase()
    }

    async fn review(&self, req: &AdmissionRequest) -> Result<AdmissionResponse, ApiError> {
        // Modules are small synchronous functions; calling inline is cheaper
        // than a hop to a blocking thread.
        self.module
            .review(req)
            .map_err(|e| ApiError::Internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;

    /// `target/<profile>`, where the workspace build puts the example modules.
    fn built(lib: &str) -> PathBuf {
        let exe = std::env::current_exe().unwrap_or_default();
        let dir = exe.parent().and_then(Path::parent).map(Path::to_path_buf);
        let path = dir.unwrap_or_default().join(lib);
        assert!(
            path.exists(),
            "{} is missing: build the workspace first (cargo build --workspace --all-targets)",
            path.display()
        );
        path
    }

    #[tokio::test]
    async fn the_example_modules_load_and_answer() {
        let label = DylibModule::load(&built("libkerno_admission_add_label.so")).expect("load");
        assert_eq!(label.phase(), Phase::Mutating);
        assert_eq!(label.name(), "libkerno_admission_add_label.so");
        let req = AdmissionRequest {
            operation: "CREATE".into(),
            kind: "Pod".into(),
            object: json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
            ..AdmissionRequest::default()
        };
        let answer = label.review(&req).await.expect("review");
        assert_eq!(
            answer.object.expect("mutated")["metadata"]["labels"]["kerno.dev/admitted-by"],
            "add-label"
        );

        let tags =
            DylibModule::load(&built("libkerno_admission_require_image_tag.so")).expect("load");
        assert_eq!(tags.phase(), Phase::Validating);
        let answer = tags.review(&req).await.expect("review");
        assert!(!answer.allowed);
        assert!(
            answer.message.contains("without a tag"),
            "{}",
            answer.message
        );
    }

    #[test]
    fn a_missing_file_or_a_library_that_is_no_module_is_a_clear_error() {
        let missing = DylibModule::load(Path::new("/nonexistent/module.so")).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("cannot load admission module /nonexistent/module.so"),
            "{missing}"
        );
        let libc = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .expect("libc");
        let not_module = DylibModule::load(libc).unwrap_err();
        assert!(
            not_module
                .to_string()
                .contains("does not export kerno_admission_abi_version"),
            "{not_module}"
        );
    }
}
