//! The C ABI of kerno's in-process admission modules (version 1).
//!
//! A module is a shared library (`cdylib`) exporting four symbols:
//!
//! ```c
//! uint32_t kerno_admission_abi_version(void);   // returns 1
//! uint32_t kerno_admission_phase(void);         // 0 mutating, 1 validating
//! uint8_t *kerno_admission_review(const uint8_t *request, size_t request_len,
//!                                 size_t *response_len);
//! void     kerno_admission_free(uint8_t *response, size_t response_len);
//! ```
//!
//! `kerno_admission_review` takes a [`Request`] as JSON and returns a
//! [`Response`] as JSON in a buffer the module allocated and frees in
//! `kerno_admission_free`. JSON keeps the ABI small and language-neutral: a
//! module can be written in C, Zig or Rust. Rust authors write a function
//! `fn(&Request) -> Response` and [`export_admission_module!`].
//!
//! The kernel side is [`Module::load`] (checks the ABI version and every
//! symbol, so a wrong library fails start-up with a clear message) and
//! [`Module::review`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The ABI version this crate speaks.
pub const ABI_VERSION: u32 = 1;

/// What the kernel asks a module about.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: String,
    /// API group of the object (empty for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind, e.g. `Pod`.
    pub kind: String,
    /// Plural resource, e.g. `pods`.
    pub resource: String,
    /// Subresource, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_resource: String,
    /// Namespace (empty for cluster-scoped objects).
    #[serde(default)]
    pub namespace: String,
    /// Object name (may be empty on create with generateName).
    #[serde(default)]
    pub name: String,
    /// The object being written (null on delete).
    #[serde(default)]
    pub object: serde_json::Value,
    /// The stored object on update and delete.
    #[serde(default)]
    pub old_object: serde_json::Value,
    /// Who asks.
    #[serde(default)]
    pub user: String,
    /// Whether the write is a dry run.
    #[serde(default)]
    pub dry_run: bool,
}

/// A module's answer.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// Whether the request may go on.
    pub allowed: bool,
    /// Why not (shown to the user), or a note.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Mutating modules: the object as it should be written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<serde_json::Value>,
}

impl Response {
    /// Allowed, unchanged.
    pub fn allow() -> Self {
        Self {
            allowed: true,
            ..Self::default()
        }
    }

    /// Allowed, with the object replaced by `object`.
    pub fn mutate(object: serde_json::Value) -> Self {
        Self {
            allowed: true,
            object: Some(object),
            ..Self::default()
        }
    }

    /// Refused with `message`.
    pub fn deny(message: impl Into<String>) -> Self {
        Self {
            allowed: false,
            message: message.into(),
            object: None,
        }
    }
}

/// When a module runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// May change the object; runs first.
    Mutating,
    /// May only allow or refuse; runs after every mutating module.
    Validating,
}

/// Why a module could not be loaded or called.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The library could not be opened.
    #[error("cannot load admission module {path}: {message}")]
    Load {
        /// The library.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// A required symbol is missing.
    #[error("admission module {path} does not export {symbol}: is it a kerno admission module?")]
    Symbol {
        /// The library.
        path: PathBuf,
        /// The missing symbol.
        symbol: &'static str,
    },
    /// The module speaks another ABI version.
    #[error("admission module {path} speaks ABI version {found}, this kernel speaks {ABI_VERSION}")]
    Version {
        /// The library.
        path: PathBuf,
        /// What it speaks.
        found: u32,
    },
    /// The module reported a phase that does not exist.
    #[error("admission module {path} reports unknown phase {found} (0 mutating, 1 validating)")]
    Phase {
        /// The library.
        path: PathBuf,
        /// What it reported.
        found: u32,
    },
    /// The module's answer was not a valid response.
    #[error("admission module {name} answered malformed JSON: {message}")]
    Answer {
        /// The module's file name.
        name: String,
        /// The decoder's message.
        message: String,
    },
}

type VersionFn = unsafe extern "C" fn() -> u32;
type PhaseFn = unsafe extern "C" fn() -> u32;
type ReviewFn = unsafe extern "C" fn(*const u8, usize, *mut usize) -> *mut u8;
type FreeFn = unsafe extern "C" fn(*mut u8, usize);

/// A loaded module. The library stays loaded as long as this value lives.
pub struct Module {
    name: String,
    phase: Phase,
    review: ReviewFn,
    free: FreeFn,
    // Keeps the code behind `review` and `free` mapped; dropped last.
    _library: libloading::Library,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name)
            .field("phase", &self.phase)
            .finish()
    }
}

impl Module {
    /// Loads the library at `path` and checks that it is a module of this ABI.
    pub fn load(path: &Path) -> Result<Self, Error> {
        // SAFETY: loading a library runs its initialisers. The kernel loads
        // only paths its administrator listed in the config file, which is
        // the trust boundary for in-process modules (as for any plugin code).
        #[allow(unsafe_code)]
        let library = unsafe { libloading::Library::new(path) }.map_err(|e| Error::Load {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let symbol = |name: &'static str| Error::Symbol {
            path: path.to_owned(),
            symbol: name,
        };
        // SAFETY (all four): the symbols are looked up with the exact
        // signatures the ABI defines; a library exporting them with other
        // signatures breaks the ABI contract documented above. The fn
        // pointers are only used while `library` is alive (owned by `Module`).
        #[allow(unsafe_code)]
        let (version, phase, review, free) = unsafe {
            let version: VersionFn = *library
                .get::<VersionFn>(b"kerno_admission_abi_version\0")
                .map_err(|_| symbol("kerno_admission_abi_version"))?;
            let phase: PhaseFn = *library
                .get::<PhaseFn>(b"kerno_admission_phase\0")
                .map_err(|_| symbol("kerno_admission_phase"))?;
            let review: ReviewFn = *library
                .get::<ReviewFn>(b"kerno_admission_review\0")
                .map_err(|_| symbol("kerno_admission_review"))?;
            let free: FreeFn = *library
                .get::<FreeFn>(b"kerno_admission_free\0")
                .map_err(|_| symbol("kerno_admission_free"))?;
            (version(), phase(), review, free)
        };
        if version != ABI_VERSION {
            return Err(Error::Version {
                path: path.to_owned(),
                found: version,
            });
        }
        let phase = match phase {
            0 => Phase::Mutating,
            1 => Phase::Validating,
            found => {
                return Err(Error::Phase {
                    path: path.to_owned(),
                    found,
                });
            }
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Self {
            name,
            phase,
            review,
            free,
            _library: library,
        })
    }

    /// The module's file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When it runs.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Asks the module about `request` (already JSON-encoded).
    pub fn review_json(&self, request: &[u8]) -> Result<Response, Error> {
        let mut len = 0usize;
        // SAFETY: `request` is a valid slice for the call's duration; `len`
        // is a valid out-pointer. The module returns a buffer of `len` bytes
        // that stays valid until we hand it back to its own free function.
        #[allow(unsafe_code)]
        let answer = unsafe {
            let ptr = (self.review)(request.as_ptr(), request.len(), &mut len);
            if ptr.is_null() {
                return Err(Error::Answer {
                    name: self.name.clone(),
                    message: "null response".into(),
                });
            }
            let decoded = serde_json::from_slice::<Response>(std::slice::from_raw_parts(ptr, len));
            (self.free)(ptr, len);
            decoded
        };
        answer.map_err(|e| Error::Answer {
            name: self.name.clone(),
            message: e.to_string(),
        })
    }

    /// Asks the module about `request`.
    pub fn review(&self, request: &Request) -> Result<Response, Error> {
        let json = serde_json::to_vec(request).map_err(|e| Error::Answer {
            name: self.name.clone(),
            message: e.to_string(),
        })?;
        self.review_json(&json)
    }
}

/// For module authors: exports `$review: fn(&Request) -> Response` under the
/// ABI, as a `Phase::Mutating` or `Phase::Validating` module. The crate must
/// be a `cdylib` and allow `unsafe_code` (the exported functions are
/// `extern "C"` with raw pointers).
///
/// ```ignore
/// kerno_admission_ffi::export_admission_module!(Validating, review);
/// fn review(req: &kerno_admission_ffi::Request) -> kerno_admission_ffi::Response { .. }
/// ```
#[macro_export]
macro_rules! export_admission_module {
    ($phase:ident, $review:path) => {
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn kerno_admission_abi_version() -> u32 {
            $crate::ABI_VERSION
        }

        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn kerno_admission_phase() -> u32 {
            match $crate::Phase::$phase {
                $crate::Phase::Mutating => 0,
                $crate::Phase::Validating => 1,
            }
        }

        /// # Safety
        /// `request` must point to `request_len` readable bytes and
        /// `response_len` to a writable `usize` (the kernel guarantees both).
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn kerno_admission_review(
            request: *const u8,
            request_len: usize,
            response_len: *mut usize,
        ) -> *mut u8 {
            // SAFETY: guaranteed by the caller, see above.
            let bytes = unsafe { ::std::slice::from_raw_parts(request, request_len) };
            let response = match ::serde_json::from_slice::<$crate::Request>(bytes) {
                Ok(req) => $review(&req),
                Err(e) => $crate::Response::deny(format!("malformed admission request: {e}")),
            };
            let json =
                ::serde_json::to_vec(&response).unwrap_or_else(|_| b"{\"allowed\":false}".to_vec());
            let boxed = json.into_boxed_slice();
            // SAFETY: `response_len` is writable, see above.
            unsafe { *response_len = boxed.len() };
            ::std::boxed::Box::into_raw(boxed) as *mut u8
        }

        /// # Safety
        /// `response` and `response_len` must come from one call of
        /// `kerno_admission_review` and be freed once.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn kerno_admission_free(response: *mut u8, response_len: usize) {
            // SAFETY: the pointer and length came from `Box::into_raw` of a
            // boxed slice of this length in `kerno_admission_review`.
            unsafe {
                drop(::std::boxed::Box::from_raw(
                    ::std::ptr::slice_from_raw_parts_mut(response, response_len),
                ))
            };
        }
    };
}
