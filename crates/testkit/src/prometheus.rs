//! A real Prometheus (Debian's, `scripts/test` installs it) serving series a test wrote as
//! OpenMetrics text, backfilled with `promtool tsdb create-blocks-from openmetrics`: the
//! figures a query answers are exactly the ones the test knows.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A Prometheus process and its data directory, stopped and removed when dropped.
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its base URL (`http://127.0.0.1:port`).
    pub url: String,
    _dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Server {
    /// A fresh data directory: write OpenMetrics files into `dir.0` and [`import`] them into
    /// `dir.0/data`, then [`Server::start`].
    pub fn dir() -> TempDir {
        let dir = TempDir(std::env::temp_dir().join(crate::unique("prometheus")));
        std::fs::create_dir_all(dir.0.join("data")).expect("prometheus data dir");
        dir
    }

    /// A Prometheus serving the OpenMetrics `text` (ending in `# EOF`).
    pub async fn with_openmetrics(text: &str) -> Server {
        let dir = Self::dir();
        let file = dir.0.join("series.om");
        std::fs::write(&file, text).expect("writing OpenMetrics");
        import(&file, &dir.0.join("data"));
        Self::start(dir).await
    }

    /// Starts Prometheus on `dir`'s data and waits until it is ready.
    pub async fn start(dir: TempDir) -> Server {
        Self::with_config(dir, "global:\n  evaluation_interval: 1m\n").await
    }

    /// A Prometheus scraping `target` (`host:port`, `/metrics`) every second into an empty
    /// TSDB: series that leave the target get staleness markers, as in a cluster.
    pub async fn scraping(target: &str) -> Server {
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1m\nscrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: ['{target}']\n"
        );
        Self::with_config(Self::dir(), &config).await
    }

    async fn with_config(dir: TempDir, yaml: &str) -> Server {
        let data = dir.0.join("data");
        let config = dir.0.join("prometheus.yml");
        std::fs::write(&config, yaml).expect("prometheus.yml");
        let port = crate::widgets::free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .args(["--storage.tsdb.retention.time=100y", "--log.level=warn"])
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stderr(std::fs::File::create(dir.0.join("prometheus.log")).expect("log file"))
            .spawn()
            .expect("prometheus (Debian package prometheus; scripts/test installs it)");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = reqwest::get(format!("{url}/-/ready")).await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready: {}",
                log(&dir.0)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Server {
            child,
            url,
            _dir: dir,
        }
    }
}

/// Backfills the OpenMetrics file `metrics` into the TSDB at `data`.
pub fn import(metrics: &Path, data: &Path) {
    let made = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .args([metrics, data])
        .output()
        .expect("promtool (Debian package prometheus; scripts/test installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}

/// Prometheus's log in `dir`.
pub fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
}
