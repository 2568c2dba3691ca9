//! `raw-data-generator`: see the crate docs of `rivulet_raw_data_generator`.

use anyhow::Context;
use rivulet_raw_data_generator::{Cli, Command, costs, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (cli, deprecated) =
        rivulet_common::env::parse::<Cli>(rivulet_raw_data_generator::RENAMED_ENV);
    rivulet_common::init_tracing(&cli.log)?;
    deprecated.warn();
    let token = rivulet_common::shutdown_token();
    match cli.command {
        Command::Run(config) => run::run(config, token)
            .await
            .map(drop)
            .context("generator failed"),
        Command::Costs(config) => costs::costs(config)
            .await
            .map(drop)
            .context("writing base costs failed"),
    }
}
