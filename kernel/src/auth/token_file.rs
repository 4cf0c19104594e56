//! The static token file (`--token-auth-file`, `kernel.tokenAuthFile`), in
//! Kubernetes' CSV format: `token,user,uid[,"group1,group2"]`, one user a line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::user::UserInfo;

/// Why a token file was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("token auth file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `token,user,uid[,groups]`.
    #[error("token auth file {path}: line {line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// One user of the token file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticUser {
    /// The user.
    pub user: UserInfo,
    /// The user's uid (third column).
    pub uid: String,
}

/// Reads `path`: token → user.
pub fn load(path: &Path) -> Result<HashMap<String, StaticUser>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|(line, message)| Error::Line {
        path: path.to_path_buf(),
        line,
        message,
    })
}

/// Parses the file's text; `Err((line, message))` for the first bad line.
pub fn parse(text: &str) -> Result<HashMap<String, StaticUser>, (usize, String)> {
    let mut users = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let fields = split_csv(line).map_err(|m| (number, m))?;
        if fields.len() < 3 {
            return Err((
                number,
                format!(
                    "must have at least 3 columns (token, user name, user uid), found {}",
                    fields.len()
                ),
            ));
        }
        let token = fields[0].trim();
        let name = fields[1].trim();
        if token.is_empty() {
            return Err((number, "the token is empty".into()));
        }
        if name.is_empty() {
            return Err((number, "the user name is empty".into()));
        }
        let groups: Vec<String> = fields
            .get(3)
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let previous = users.insert(
            token.to_owned(),
            StaticUser {
                user: UserInfo::new(name, groups),
                uid: fields[2].trim().to_owned(),
            },
        );
        if previous.is_some() {
            return Err((number, "duplicate token".into()));
        }
    }
    Ok(users)
}

/// Splits one CSV record: commas separate fields, double quotes enclose
/// fields that contain commas, `""` inside quotes is a quote.
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            ('"', false) => return Err("a bare \" in a field that is not quoted".into()),
            (',', false) => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubernetes_token_files() {
        let users = parse("# admins\nt1,alice,1001,\"dev,ops\"\n\nt2,bob,1002\nt3,carol,1003,qa\n")
            .expect("parses");
        let alice = &users["t1"];
        assert_eq!(alice.user.name, "alice");
        assert_eq!(alice.uid, "1001");
        assert_eq!(alice.user.groups, ["dev", "ops", "system:authenticated"]);
        assert_eq!(users["t2"].user.groups, ["system:authenticated"]);
        assert_eq!(users["t3"].user.groups, ["qa", "system:authenticated"]);
    }

    #[test]
    fn bad_lines_are_named() {
        assert_eq!(
            parse("t1,alice,1\nt2,bob\n").expect_err("refused"),
            (
                2,
                "must have at least 3 columns (token, user name, user uid), found 2".into()
            )
        );
        assert_eq!(parse(",alice,1\n").expect_err("refused").0, 1);
        assert_eq!(parse("t,alice,1,\"dev\n").expect_err("refused").0, 1);
        assert_eq!(
            parse("t,a,1\nt,b,2\n").expect_err("refused"),
            (2, "duplicate token".into())
        );
        let err = load(Path::new("/nonexistent/tokens.csv")).expect_err("missing");
        assert!(
            err.to_string()
                .starts_with("token auth file /nonexistent/tokens.csv"),
            "{err}"
        );
    }
}
