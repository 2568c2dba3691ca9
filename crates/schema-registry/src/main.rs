//! `schema-registry`: see the crate docs of `rivulet_schema_registry`.

use anyhow::Context;
use clap::Parser;
use rivulet_schema_registry::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    rivulet_common::init_tracing(&cli.log)?;
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
