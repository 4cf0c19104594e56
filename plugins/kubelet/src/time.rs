//! Kubernetes timestamps at whole seconds (what the API stores), so a status
//! computed twice compares equal.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Now, at full precision (MicroTime fields).
pub fn now_exact() -> Timestamp {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    Timestamp::from_nanosecond(nanos).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Now, truncated to the second.
pub fn now() -> Time {
    let secs = now_exact().as_second();
    Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// A runtime timestamp (unix nanoseconds) truncated to the second; `None` for 0.
pub fn from_unix_nanos(nanos: i64) -> Option<Time> {
    (nanos > 0).then(|| {
        Time(Timestamp::from_second(nanos / 1_000_000_000).unwrap_or(Timestamp::UNIX_EPOCH))
    })
}
