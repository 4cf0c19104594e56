//! The etcd store backend (etcd v3 API through `etcd-client`).
//!
//! Conditional writes are etcd transactions: compare the key's create or mod
//! revision, write on success, read the key on failure to tell a missing key
//! from a conflict. etcd's own revision is the store revision, so several
//! kernels can share one etcd.

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, KvClient, PutOptions, Txn, TxnOp,
    TxnOpResponse, TxnResponse, WatchClient, WatchOptions,
};
use futures::StreamExt;

use super::{Error, Event, EventKind, KeyValue, ListResult, Result, Revision, Store, WatchStream};

/// Largest response accepted from etcd. Lists of many objects exceed gRPC's
/// 4 MiB default easily; etcd itself caps requests (values) at 1.5 MiB.
const MAX_RESPONSE: usize = 512 * 1024 * 1024;

/// etcd's default request limit (`--max-request-bytes`, 1.5 MiB) less room
/// for the transaction around the key and value. Bigger writes are refused
/// here with a clear message instead of etcd's generic one.
const MAX_WRITE: usize = 1024 * 1024 * 3 / 2 - 4096;

/// How long to wait for etcd to report the compaction revision of a watch
/// that starts before it (etcd reports it from a background loop).
const COMPACTED_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// The etcd [`Store`].
#[derive(Clone)]
pub struct EtcdStore {
    kv: KvClient,
    watch: WatchClient,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore").finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to etcd at `endpoints` (e.g. `http://127.0.0.1:2379`).
    pub async fn connect(endpoints: &[String]) -> Result<Self> {
        let client = Client::connect(endpoints, None)
            .await
            .map_err(|e| Error::backend("connect to etcd", e))?;
        Ok(Self::from_client(&client))
    }

    /// Wraps an existing client.
    pub fn from_client(client: &Client) -> Self {
        Self {
            kv: client.kv_client().max_decoding_message_size(MAX_RESPONSE),
            watch: client
                .watch_client()
                .max_decoding_message_size(MAX_RESPONSE),
        }
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.kv.clone().txn(txn).await.map_err(etcd_error)
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let mut resp = self.kv.clone().get(key, None).await.map_err(etcd_error)?;
        resp.take_kvs()
            .into_iter()
            .next()
            .map(convert_kv)
            .transpose()
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListResult> {
        let start = match start_after {
            Some(after) if after >= prefix => {
                let mut key = after.as_bytes().to_vec();
                key.push(0);
                key
            }
            _ => prefix.as_bytes().to_vec(),
        };
        let mut options = GetOptions::new().with_range(prefix_end(prefix.as_bytes()));
        if limit > 0 {
            options = options.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let mut resp = self
            .kv
            .clone()
            .get(start, Some(options))
            .await
            .map_err(etcd_error)?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let more = resp.more();
        let kvs = resp
            .take_kvs()
            .into_iter()
            .map(convert_kv)
            .collect::<Result<Vec<_>>>()?;
        Ok(ListResult {
            kvs,
            more,
            revision,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        check_size(key, &value)?;
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(Error::AlreadyExists {
                key: key.to_owned(),
            });
        }
        let revision = txn_revision(&resp)?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue> {
        check_size(key, &value)?;
        // A missing key has mod revision 0 in etcd: also require that it exists.
        let txn = Txn::new()
            .when([
                Compare::mod_revision(key, CompareOp::Equal, expected_mod_revision),
                Compare::create_revision(key, CompareOp::Greater, 0),
            ])
            .and_then([TxnOp::put(
                key,
                value.to_vec(),
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(refused(key, expected_mod_revision, &resp)?);
        }
        let revision = txn_revision(&resp)?;
        let prev = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Put(mut put) => put.take_prev_key(),
            _ => None,
        });
        let prev = prev.ok_or_else(|| Error::Backend {
            message: "etcd update returned no previous value".into(),
            source: None,
        })?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: prev.create_revision(),
            mod_revision: revision,
        })
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<KeyValue> {
        let mut compares = vec![Compare::create_revision(key, CompareOp::Greater, 0)];
        if let Some(expected) = expected_mod_revision {
            compares.push(Compare::mod_revision(key, CompareOp::Equal, expected));
        }
        let txn = Txn::new()
            .when(compares)
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(refused(key, expected_mod_revision.unwrap_or(0), &resp)?);
        }
        let revision = txn_revision(&resp)?;
        let prev = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Delete(mut del) => del.take_prev_kvs().into_iter().next(),
            _ => None,
        });
        let prev = prev.ok_or_else(|| Error::Backend {
            message: "etcd delete returned no previous value".into(),
            source: None,
        })?;
        Ok(KeyValue {
            mod_revision: revision,
            ..convert_kv(prev)?
        })
    }

    async fn watch(&self, prefix: &str, after_revision: Revision) -> Result<WatchStream> {
        watch(self, prefix, after_revision).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        // A count-only read of one key is the cheapest request with a header.
        let resp = self
            .kv
            .clone()
            .get("\0", Some(GetOptions::new().with_count_only()))
            .await
            .map_err(etcd_error)?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        match self.kv.clone().compact(revision, None).await {
            Ok(_) => Ok(()),
            // Compacting to a revision already compacted is not an error here.
            Err(e) if is_compacted(&e) => Ok(()),
            Err(e) => Err(etcd_error(e)),
        }
    }
}

/// Opens an etcd watch that delivers exactly the revisions after `after`.
///
/// etcd starts a watch *at* a revision and reports compaction asynchronously,
/// so the watch starts at `after` itself (cancelled by etcd exactly when
/// `after` is older than the compaction revision, as the store contract says)
/// and that revision's own events are skipped. A count-only read at `after`
/// tells synchronously whether it has been compacted, so the call itself fails.
async fn watch(store: &EtcdStore, prefix: &str, after: Revision) -> Result<WatchStream> {
    let start = after.max(1);
    let options = WatchOptions::new()
        .with_range(prefix_end(prefix.as_bytes()))
        .with_start_revision(start)
        .with_prev_key();
    let mut stream = store
        .watch
        .clone()
        .watch(prefix, Some(options))
        .await
        .map_err(etcd_error)?;
    let compacted = match store
        .kv
        .clone()
        .get(
            prefix,
            Some(GetOptions::new().with_revision(start).with_count_only()),
        )
        .await
    {
        Ok(_) => false,
        Err(e) if is_compacted(&e) => true,
        // A future revision: nothing to replay and nothing compacted.
        Err(e) if e.to_string().contains("future revision") => false,
        Err(e) => return Err(etcd_error(e)),
    };
    if compacted {
        let reported = tokio::time::timeout(COMPACTED_PATIENCE, async {
            loop {
                match stream.message().await {
                    Ok(Some(resp)) if resp.compact_revision() > 0 => {
                        break Some(resp.compact_revision());
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break None,
                }
            }
        })
        .await
        .ok()
        .flatten();
        return Err(Error::Compacted {
            requested: after,
            compacted: reported.unwrap_or(start + 1),
        });
    }
    let (sender, responses) = stream.split();
    let items = futures::stream::unfold(
        (responses, Some(sender), false),
        move |(mut responses, sender, done)| async move {
            if done {
                return None;
            }
            let items: Vec<Result<Event>> = match responses.message().await {
                Ok(Some(resp)) if resp.canceled() || resp.compact_revision() > 0 => {
                    let err = if resp.compact_revision() > 0 {
                        Error::Compacted {
                            requested: after,
                            compacted: resp.compact_revision(),
                        }
                    } else {
                        Error::Backend {
                            message: format!("etcd canceled the watch: {}", resp.cancel_reason()),
                            source: None,
                        }
                    };
                    return Some((vec![Err(err)], (responses, sender, true)));
                }
                Ok(Some(resp)) => resp
                    .events()
                    .iter()
                    .filter_map(|e| convert_event(e, after).transpose())
                    .collect(),
                Ok(None) => vec![Err(Error::Backend {
                    message: "etcd closed the watch".into(),
                    source: None,
                })],
                Err(e) => vec![Err(etcd_error(e))],
            };
            let done = items.iter().any(Result::is_err);
            Some((items, (responses, sender, done)))
        },
    );
    Ok(Box::pin(items.flat_map(futures::stream::iter)))
}

/// Converts a watch event, dropping those at or before `after`.
fn convert_event(event: &etcd_client::Event, after: Revision) -> Result<Option<Event>> {
    let Some(kv) = event.kv() else {
        return Ok(None);
    };
    if kv.mod_revision() <= after {
        return Ok(None);
    }
    let kind = match event.event_type() {
        etcd_client::EventType::Put => EventKind::Put,
        etcd_client::EventType::Delete => EventKind::Delete,
    };
    let mut kv = convert_kv(kv.clone())?;
    let prev_kv = event.prev_kv().cloned().map(convert_kv).transpose()?;
    if kind == EventKind::Delete
        && let Some(prev) = &prev_kv
    {
        // etcd clears the create revision of a delete's kv; keep the key's.
        kv.create_revision = prev.create_revision;
    }
    Ok(Some(Event { kind, kv, prev_kv }))
}

/// Refuses writes etcd would reject as too large.
fn check_size(key: &str, value: &[u8]) -> Result<()> {
    let size = key.len() + value.len();
    if size > MAX_WRITE {
        return Err(Error::Backend {
            message: format!(
                "write of {size} bytes to {key} exceeds etcd's request limit of {MAX_WRITE} bytes"
            ),
            source: None,
        });
    }
    Ok(())
}

/// Why a conditional write's compare failed: the key is gone or was changed.
fn refused(key: &str, expected: Revision, resp: &TxnResponse) -> Result<Error> {
    let current = resp.op_responses().into_iter().find_map(|r| match r {
        TxnOpResponse::Get(mut get) => Some(get.take_kvs().into_iter().next()),
        _ => None,
    });
    match current.flatten() {
        Some(kv) => Ok(Error::Conflict {
            key: key.to_owned(),
            expected,
            actual: kv.mod_revision(),
        }),
        None => Ok(Error::NotFound {
            key: key.to_owned(),
        }),
    }
}

fn txn_revision(resp: &TxnResponse) -> Result<Revision> {
    resp.header()
        .map(|h| h.revision())
        .ok_or_else(|| Error::Backend {
            message: "etcd response without header".into(),
            source: None,
        })
}

fn convert_kv(kv: etcd_client::KeyValue) -> Result<KeyValue> {
    let create_revision = kv.create_revision();
    let mod_revision = kv.mod_revision();
    let (key, value) = kv.into_key_value();
    let key = String::from_utf8(key).map_err(|e| Error::backend("etcd key is not utf-8", e))?;
    Ok(KeyValue {
        key,
        value: Bytes::from(value),
        create_revision,
        mod_revision,
    })
}

/// The end of the key range of `prefix`: the prefix with its last byte below
/// 0xff incremented ("\0", all keys, for an empty or all-0xff prefix).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn is_compacted(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if s.message().contains("compacted"))
}

fn etcd_error(e: etcd_client::Error) -> Error {
    Error::backend("etcd request failed", e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end(b"/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b""), vec![0]);
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn oversized_writes_are_refused() {
        assert!(check_size("/k", &vec![0; MAX_WRITE - 2]).is_ok());
        let err = check_size("/k", &vec![0; MAX_WRITE]).unwrap_err();
        assert!(err.to_string().contains("request limit"), "{err}");
    }

    #[tokio::test]
    async fn large_values_round_trip_and_oversized_fail_cleanly() {
        let (store, _server) = etcd_store().await;
        let big = Bytes::from(vec![b'x'; 1024 * 1024]);
        let kv = store.create("/big", big.clone()).await.unwrap();
        assert_eq!(store.get("/big").await.unwrap().unwrap(), kv);
        let err = store
            .update(
                "/big",
                Bytes::from(vec![b'y'; 2 * 1024 * 1024]),
                kv.mod_revision,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Backend { .. }), "{err:?}");
        assert_eq!(store.get("/big").await.unwrap().unwrap().value, big);
    }

    #[tokio::test]
    async fn watch_ends_with_an_error_when_etcd_goes_away() {
        let (store, server) = etcd_store().await;
        let mut watch = store.watch("/w/", 0).await.unwrap();
        let kv = store
            .create("/w/a", Bytes::from_static(b"1"))
            .await
            .unwrap();
        let event = crate::store::conformance::next_event(&mut watch).await;
        assert_eq!(event.kv, kv);
        drop(server);
        let item = crate::store::conformance::next_item(&mut watch).await;
        assert!(matches!(item, Err(Error::Backend { .. })), "{item:?}");
    }

    async fn etcd_store() -> (std::sync::Arc<dyn Store>, crate::testing::EtcdServer) {
        let server = crate::testing::EtcdServer::start().await;
        let store = EtcdStore::connect(&[server.endpoint()])
            .await
            .expect("connect to the test etcd");
        (std::sync::Arc::new(store), server)
    }

    crate::store::conformance::conformance_tests!(etcd_store);
}
