//! `consumer-autoscaler`: see the crate docs of `rivulet_consumer_autoscaler`.

use anyhow::Context;
use clap::Parser;
use rivulet_consumer_autoscaler::{Cli, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    rivulet_common::init_tracing(&cli.log)?;
    let token = rivulet_common::shutdown_token();
    run(cli.config, token)
        .await
        .context("consumer-autoscaler failed")
}
