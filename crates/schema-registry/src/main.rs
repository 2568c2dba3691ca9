//! `schema-registry`: see the crate docs of `rivulet_schema_registry`.

use anyhow::Context;
use rivulet_schema_registry::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (cli, deprecated) = rivulet_common::env::parse::<Cli>(rivulet_schema_registry::RENAMED_ENV);
    rivulet_common::init_tracing(&cli.log)?;
    deprecated.warn();
    match cli.command {
        Command::Serve(config) => {
            let token = rivulet_common::shutdown_token();
            rivulet_schema_registry::run(config, token)
                .await
                .context("schema registry failed")
        }
        Command::Apply(config) => rivulet_schema_registry::apply(&config)
            .await
            .context("schemas apply failed"),
    }
}
