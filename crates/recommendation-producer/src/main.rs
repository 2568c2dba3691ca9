//! `recommendation-producer`: see the crate docs of `rivulet_recommendation_producer`.

use anyhow::Context;
use rivulet_recommendation_producer::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (config, deprecated) =
        rivulet_common::env::parse::<Config>(rivulet_recommendation_producer::RENAMED_ENV);
    rivulet_common::init_tracing(&config.log)?;
    deprecated.warn();
    let token = rivulet_common::shutdown_token();
    rivulet_recommendation_producer::run(config, token)
        .await
        .context("recommendation-producer failed")
}
