//! Environment variable names follow one scheme: the shared groups keep their families
//! (`KAFKA_*`, `SCHEMA_REGISTRY_*` for the registry client, `LOG_FORMAT`, `DATABASE_URL`), and
//! every other setting of a binary is `<BINARY>_<FLAG>` (`BACKEND_`, `GENERATOR_`, `UI_`,
//! `RECOMMENDER_`, `SCHEMA_REGISTRY_`). Names that were renamed still work: [`parse`] reads the
//! old name when the new one is not set, and [`Deprecated::warn`] says so once, after tracing
//! is up.

use std::ffi::OsString;

use clap::Command;

/// A renamed environment variable: `(old, new)`.
pub type Renamed = (&'static str, &'static str);

/// The old names a parse used (each once), to warn about.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Deprecated(pub Vec<Renamed>);

impl Deprecated {
    /// Logs one warning per old name used.
    pub fn warn(&self) {
        for (old, new) in &self.0 {
            tracing::warn!(
                old,
                new,
                "Deprecated environment variable {old}: it still works, but set {new} instead."
            );
        }
    }
}

/// Parses the command line and the environment like `T::parse()`, reading each renamed
/// variable's old name where only the old one is set. Exits with clap's message on bad input.
pub fn parse<T: clap::Parser>(renamed: &[Renamed]) -> (T, Deprecated) {
    match parse_from(std::env::args_os(), renamed, |name| {
        std::env::var_os(name).is_some()
    }) {
        Ok(parsed) => parsed,
        Err(error) => error.exit(),
    }
}

/// [`parse`] with the arguments and the environment's presence test given (tests).
pub fn parse_from<T: clap::Parser>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    renamed: &[Renamed],
    present: impl Fn(&str) -> bool,
) -> Result<(T, Deprecated), clap::Error> {
    let mut used = Vec::new();
    let command = redirect(T::command(), renamed, &present, &mut used);
    let matches = command.try_get_matches_from(args)?;
    let parsed = T::from_arg_matches(&matches)?;
    used.sort_unstable();
    used.dedup();
    Ok((parsed, Deprecated(used)))
}

/// Points every argument whose variable was renamed, and only set under its old name, at the
/// old name; in every subcommand too.
fn redirect(
    mut command: Command,
    renamed: &[Renamed],
    present: &impl Fn(&str) -> bool,
    used: &mut Vec<Renamed>,
) -> Command {
    let redirected: Vec<(String, Renamed)> = command
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_str()?;
            let &(old, new) = renamed.iter().find(|(_, new)| *new == env)?;
            (!present(new) && present(old)).then(|| (arg.get_id().to_string(), (old, new)))
        })
        .collect();
    for (id, (old, new)) in redirected {
        command = command.mut_arg(id, |arg| arg.env(old));
        used.push((old, new));
    }
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in subcommands {
        command = command.mut_subcommand(name, |sub| redirect(sub, renamed, present, used));
    }
    command
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Sub {
        Run {
            #[arg(long, env = "RIVULET_TEST_NEW_TOPIC", default_value = "default")]
            topic: String,
        },
    }

    fn topic(cli: Cli) -> String {
        let Sub::Run { topic } = cli.command;
        topic
    }

    const RENAMED: &[Renamed] = &[("RIVULET_TEST_OLD_TOPIC", "RIVULET_TEST_NEW_TOPIC")];

    #[test]
    fn an_old_name_still_works_and_is_reported() {
        // The presence test stands in for the environment (setting a variable is `unsafe`,
        // which the workspace forbids): it decides which name the argument is pointed at, and
        // clap then reads that name from the real environment, where neither is set. The
        // binaries' tests set an old name for real.
        let (cli, deprecated) =
            parse_from::<Cli>(["x", "run"], RENAMED, |n| n == "RIVULET_TEST_OLD_TOPIC").unwrap();
        assert_eq!(topic(cli), "default");
        assert_eq!(
            deprecated,
            Deprecated(vec![("RIVULET_TEST_OLD_TOPIC", "RIVULET_TEST_NEW_TOPIC")])
        );
        let mut used = Vec::new();
        let command = redirect(
            <Cli as clap::CommandFactory>::command(),
            RENAMED,
            &|n: &str| n == "RIVULET_TEST_OLD_TOPIC",
            &mut used,
        );
        let run = command.find_subcommand("run").unwrap();
        let env = run.get_arguments().find_map(|a| a.get_env()).unwrap();
        assert_eq!(env, "RIVULET_TEST_OLD_TOPIC");
    }

    #[test]
    fn the_new_name_wins_when_both_are_set() {
        let (_, deprecated) = parse_from::<Cli>(["x", "run"], RENAMED, |_| true).unwrap();
        assert_eq!(deprecated, Deprecated::default());
        let (_, deprecated) = parse_from::<Cli>(["x", "run"], RENAMED, |_| false).unwrap();
        assert_eq!(deprecated, Deprecated::default());
    }

    #[test]
    fn bad_arguments_are_clap_errors() {
        assert!(parse_from::<Cli>(["x", "walk"], RENAMED, |_| false).is_err());
    }
}
