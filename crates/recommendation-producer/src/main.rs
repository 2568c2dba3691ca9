//! `recommendation-producer`: see the crate docs of `rivulet_recommendation_producer`.

use anyhow::Context;
use clap::Parser;
use rivulet_recommendation_producer::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    rivulet_common::init_tracing(&config.log)?;
    let token = rivulet_common::shutdown_token();
    rivulet_recommendation_producer::run(config, token)
        .await
        .context("recommendation-producer failed")
}
