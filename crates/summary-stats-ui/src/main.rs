//! `summary-stats-ui`: see the crate docs of `rivulet_summary_stats_ui`.

use anyhow::Context;
use rivulet_summary_stats_ui::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (config, deprecated) =
        rivulet_common::env::parse::<Config>(rivulet_summary_stats_ui::RENAMED_ENV);
    rivulet_common::init_tracing(&config.log)?;
    deprecated.warn();
    let token = rivulet_common::shutdown_token();
    rivulet_summary_stats_ui::run(config, token)
        .await
        .context("summary-stats-ui failed")
}
