//! `schema-registry apply`: registers a directory of Avro schemas with any Confluent-compatible
//! registry (this one, Confluent's or Apicurio's), over HTTP.
//!
//! Layout: `<dir>/<topic>/v1.avsc`, `v2.avsc`, ... Each topic folder becomes the subject
//! `<topic>-value` (TopicNameStrategy). The files of a subject are first checked against each
//! other at the target level here, so a breaking change fails before anything is sent; then the
//! level is set on the subject and the versions are registered in order. Registering is
//! idempotent: an already-registered schema answers with its id. `--dry-run` sends no writes:
//! it looks each file up and asks the registry whether the unregistered ones are compatible.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use apache_avro::Schema;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::config::ApplyConfig;
use crate::schema::{self, Level};

/// One schema file to register.
#[derive(Debug)]
struct Entry {
    subject: String,
    path: PathBuf,
    text: String,
    schema: Schema,
}

/// Registers (or with `dry_run` checks) every schema under `config.dir`.
pub async fn apply(config: &ApplyConfig) -> anyhow::Result<()> {
    let subjects = discover(&config.dir)?;
    if subjects.is_empty() {
        bail!(
            "no schemas found under {} (expected <topic>/v<N>.avsc)",
            config.dir.display()
        );
    }
    for entries in &subjects {
        check_locally(entries, config.compatibility)?;
    }
    let client = Client::new(config)?;
    let mut failures = Vec::new();
    for entries in &subjects {
        let subject = &entries[0].subject;
        if !config.dry_run {
            client
                .put(
                    &format!("/config/{subject}"),
                    &json!({ "compatibility": config.compatibility.to_string() }),
                )
                .await?;
        }
        for entry in entries {
            let file = entry.path.display();
            if config.dry_run {
                match client.lookup(entry).await? {
                    Some((version, id)) => say(format_args!(
                        "{subject}\t{file}\talready registered: version {version}, id {id}"
                    )),
                    None => {
                        let answer = client
                            .post(
                                &format!("/compatibility/subjects/{subject}/versions?verbose=true"),
                                &json!({ "schema": entry.text }),
                            )
                            .await?;
                        if answer["is_compatible"].as_bool() == Some(true) {
                            say(format_args!(
                                "{subject}\t{file}\twould be registered (compatible)"
                            ));
                        } else {
                            say(format_args!(
                                "{subject}\t{file}\tINCOMPATIBLE: {}",
                                answer["messages"]
                            ));
                            failures.push(format!("{subject} {file}: {}", answer["messages"]));
                        }
                    }
                }
            } else {
                let answer = client
                    .post(
                        &format!("/subjects/{subject}/versions"),
                        &json!({ "schema": entry.text }),
                    )
                    .await?;
                let id = answer["id"]
                    .as_u64()
                    .context("registry answered a registration without an id")?;
                let (version, _) = client
                    .lookup(entry)
                    .await?
                    .context("a schema just registered was not found")?;
                say(format_args!(
                    "{subject}\t{file}\tid {id}, version {version}"
                ));
            }
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} schema(s) are incompatible:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    Ok(())
}

/// Prints one report line; a closed stdout (`| head`) is not an error worth a panic.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Finds `<dir>/<topic>/v<N>.avsc`, grouped by subject and sorted by N.
fn discover(dir: &Path) -> anyhow::Result<Vec<Vec<Entry>>> {
    let mut topics: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    topics.sort();
    let mut out = Vec::new();
    for topic_dir in topics {
        let topic = topic_dir
            .file_name()
            .and_then(|n| n.to_str())
            .context("topic folder name is not UTF-8")?
            .to_owned();
        let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(&topic_dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| version_of(&p).map(|v| (v, p)))
            .collect();
        files.sort();
        let mut entries = Vec::new();
        for (_, path) in files {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let schema = Schema::parse_str(&text)
                .with_context(|| format!("{} is not a valid Avro schema", path.display()))?;
            entries.push(Entry {
                subject: format!("{topic}-value"),
                path,
                text,
                schema,
            });
        }
        if !entries.is_empty() {
            out.push(entries);
        }
    }
    Ok(out)
}

/// `v12.avsc` → 12.
fn version_of(path: &Path) -> Option<u32> {
    if path.extension()? != "avsc" {
        return None;
    }
    path.file_stem()?.to_str()?.strip_prefix('v')?.parse().ok()
}

/// Each file must be compatible with the ones before it at `level`.
fn check_locally(entries: &[Entry], level: Level) -> anyhow::Result<()> {
    for (i, entry) in entries.iter().enumerate() {
        let earlier: Vec<(u32, &Schema)> = entries[..i]
            .iter()
            .enumerate()
            .map(|(n, e)| (n as u32 + 1, &e.schema))
            .collect();
        let messages = schema::check(level, &entry.schema, &earlier);
        if !messages.is_empty() {
            bail!(
                "{} breaks {level} compatibility with the files before it: {}",
                entry.path.display(),
                messages.join("; ")
            );
        }
    }
    Ok(())
}

/// The registry calls `apply` makes, over the shared REST client (its URLs in fail-over order,
/// its credentials and timeout).
struct Client {
    rest: rivulet_common::RegistryClient,
}

impl Client {
    fn new(config: &ApplyConfig) -> anyhow::Result<Self> {
        Ok(Self {
            rest: config.registry.client()?,
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.rest
            .send(method, path, Some(body))
            .await
            .with_context(|| {
                format!(
                    "calling the schema registry at {}",
                    self.rest.urls().join(", ")
                )
            })
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let (status, value) = self.send(Method::POST, path, body).await?;
        if !status.is_success() {
            bail!("POST {path} answered {status}: {value}");
        }
        Ok(value)
    }

    async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let (status, value) = self.send(Method::PUT, path, body).await?;
        if !status.is_success() {
            bail!("PUT {path} answered {status}: {value}");
        }
        Ok(value)
    }

    /// `(version, id)` of the entry's schema under its subject, or `None` if not registered.
    async fn lookup(&self, entry: &Entry) -> anyhow::Result<Option<(u64, u64)>> {
        let path = format!("/subjects/{}", entry.subject);
        let (status, value) = self
            .send(Method::POST, &path, &json!({ "schema": entry.text }))
            .await?;
        match status {
            s if s.is_success() => Ok(value["version"].as_u64().zip(value["id"].as_u64())),
            StatusCode::NOT_FOUND => Ok(None),
            _ => bail!("POST {path} answered {status}: {value}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_file_names() {
        assert_eq!(version_of(Path::new("x/v3.avsc")), Some(3));
        assert_eq!(version_of(Path::new("x/v10.avsc")), Some(10));
        assert_eq!(version_of(Path::new("x/readme.md")), None);
        assert_eq!(version_of(Path::new("x/w1.avsc")), None);
    }

    #[test]
    fn the_repository_schemas_evolve_full_transitively() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let subjects = discover(&dir).unwrap();
        let names: Vec<&str> = subjects.iter().map(|e| e[0].subject.as_str()).collect();
        assert!(names.contains(&"raw-data-in-value"), "{names:?}");
        assert!(names.contains(&"summary-stats-value"), "{names:?}");
        assert!(names.contains(&"base-costs-value"), "{names:?}");
        for entries in &subjects {
            check_locally(entries, Level::FullTransitive).unwrap();
        }
    }
}
