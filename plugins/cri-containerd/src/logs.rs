//! Container logs in the Kubernetes CRI format, one line per record:
//! `<RFC3339Nano> <stdout|stderr> <F|P> <content>`.
//!
//! Writing: containerd's shim runs this driver's own binary as a logging
//! binary (`binary://<exe>?log-writer=<path>`), handing it the container's
//! stdout and stderr as fds 3 and 4 and a readiness pipe as fd 5. Because the
//! shim owns that process, logs keep flowing while the driver restarts.
//! Reading: [`read_log`] turns the file back into the container's output.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};

/// Longest content of one record; longer lines are split into `P` records.
const MAX_RECORD: usize = 16 * 1024;

/// The `containerd` log URI that makes the shim run [`run_log_writer`].
pub fn log_uri(exe: &Path, log_path: &Path) -> String {
    format!(
        "binary://{}?log-writer={}",
        exe.display(),
        percent_encode(&log_path.display().to_string())
    )
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One formatted record.
pub fn format_record(now: DateTime<Utc>, stream: &str, partial: bool, content: &[u8]) -> Vec<u8> {
    let mut line = format!(
        "{} {stream} {} ",
        now.to_rfc3339_opts(SecondsFormat::Nanos, true),
        if partial { "P" } else { "F" }
    )
    .into_bytes();
    line.extend_from_slice(content);
    line.push(b'\n');
    line
}

/// Copies one stream into the log file, record by record, until EOF.
fn copy_stream(input: impl Read, stream: &str, out: &Mutex<std::fs::File>) {
    let mut reader = BufReader::new(input);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_RECORD as u64)
            .read_until(b'\n', &mut buf);
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let complete = buf.last() == Some(&b'\n');
                if complete {
                    buf.pop();
                }
                let record = format_record(Utc::now(), stream, !complete, &buf);
                if let Ok(mut file) = out.lock() {
                    let _ = file.write_all(&record);
                }
            }
        }
    }
}

/// The `log-writer` mode of the binary, run by containerd's shim.
pub fn run_log_writer(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let out = Arc::new(Mutex::new(file));
    // Reopen the inherited pipes by path: taking ownership of raw fds would
    // need `unsafe`, and the reopened fds are the same pipes.
    let stdout = std::fs::File::open("/proc/self/fd/3")?;
    let stderr = std::fs::File::open("/proc/self/fd/4").ok();
    // Tell the shim we are ready: it waits for a byte (or EOF) on fd 5.
    if let Ok(mut ready) = OpenOptions::new().write(true).open("/proc/self/fd/5") {
        let _ = ready.write_all(b"1");
    }
    let err_thread = stderr.map(|stderr| {
        let out = Arc::clone(&out);
        std::thread::spawn(move || copy_stream(stderr, "stderr", &out))
    });
    copy_stream(stdout, "stdout", &out);
    if let Some(t) = err_thread {
        let _ = t.join();
    }
    Ok(())
}

/// How to render a log.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    /// Only the last n lines; `None`: all.
    pub tail_lines: Option<usize>,
    /// Prefix each line with its timestamp.
    pub timestamps: bool,
    /// Only records at or after this time (unix seconds); 0: all.
    pub since_unix_seconds: i64,
}

/// One parsed record.
#[derive(Debug, PartialEq)]
pub struct Record<'a> {
    /// Its timestamp text.
    pub time: &'a str,
    /// "stdout" or "stderr".
    pub stream: &'a str,
    /// Whether the line continues in the next record.
    pub partial: bool,
    /// The content.
    pub content: &'a [u8],
}

/// Parses one line (without its newline).
pub fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    let tag = parts.next()?;
    let content = parts.next().unwrap_or_default();
    Some(Record {
        time,
        stream,
        partial: tag.first() == Some(&b'P'),
        content,
    })
}

/// Renders complete lines of log text (`data` holds whole records) as the
/// user sees them.
pub fn render(data: &[u8], options: &LogOptions) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for raw in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let Some(record) = parse_record(raw) else {
            continue;
        };
        if options.since_unix_seconds > 0
            && DateTime::parse_from_rfc3339(record.time)
                .is_ok_and(|t| t.timestamp() < options.since_unix_seconds)
        {
            continue;
        }
        let line = current.get_or_insert_with(|| {
            if options.timestamps {
                format!("{} ", record.time).into_bytes()
            } else {
                Vec::new()
            }
        });
        line.extend_from_slice(record.content);
        if !record.partial {
            let mut done = current.take().unwrap_or_default();
            done.push(b'\n');
            lines.push(done);
        }
    }
    if let Some(partial) = current {
        lines.push(partial);
    }
    let skip = options
        .tail_lines
        .map_or(0, |n| lines.len().saturating_sub(n));
    lines.into_iter().skip(skip).flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let t = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.123456789Z")
            .expect("time")
            .with_timezone(&Utc);
        let line = format_record(t, "stdout", false, b"hello world");
        assert_eq!(
            line,
            b"2024-01-02T03:04:05.123456789Z stdout F hello world\n"
        );
        let rec = parse_record(&line[..line.len() - 1]).expect("parse");
        assert_eq!(rec.stream, "stdout");
        assert_eq!(rec.content, b"hello world");
        assert!(!rec.partial);
    }

    #[test]
    fn render_joins_partials_tails_and_stamps() {
        let data = b"2024-01-01T00:00:00Z stdout F one\n\
2024-01-01T00:00:01Z stderr P tw\n\
2024-01-01T00:00:01Z stderr F o\n\
2024-01-01T00:00:02Z stdout F three\n";
        assert_eq!(render(data, &LogOptions::default()), b"one\ntwo\nthree\n");
        let tail = LogOptions {
            tail_lines: Some(2),
            ..Default::default()
        };
        assert_eq!(render(data, &tail), b"two\nthree\n");
        let stamped = LogOptions {
            tail_lines: Some(1),
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(render(data, &stamped), b"2024-01-01T00:00:02Z three\n");
    }

    #[test]
    fn log_writer_formats_a_stream() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = std::fs::File::create(dir.path().join("l")).expect("create");
        let out = Mutex::new(file);
        copy_stream(&b"a\nbb\nno newline"[..], "stdout", &out);
        let text = std::fs::read(dir.path().join("l")).expect("read");
        assert_eq!(render(&text, &LogOptions::default()), b"a\nbb\nno newline");
    }
}
