use anyhow::Context;
use sluice_runtime::env;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        print!("{}", sluice_api::openapi_json());
        return Ok(());
    }
    sluice_runtime::init_tracing();
    let store = sluice_runtime::open_store().await?;
    if let Some(key) =
        sluice_api::bootstrap_admin_key(&store, env("SLUICE_BOOTSTRAP_ADMIN_KEY").as_deref())
            .await
            .context("creating the first admin key")?
    {
        // Printed once, on stderr and outside the log stream: only the hash
        // is stored, so this is the one chance to copy it.
        eprintln!(
            "\nCreated the first admin API key (shown only now):\n  {}\nUse it as: Authorization: Bearer <key>\n",
            key.token()
        );
    }
    let max_body_bytes = match env("SLUICE_API_MAX_BODY_BYTES") {
        Some(v) => v
            .parse()
            .context("SLUICE_API_MAX_BODY_BYTES must be a number of bytes")?,
        None => sluice_api::DEFAULT_MAX_BODY_BYTES,
    };
    let addr = env("SLUICE_API_ADDR").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr} (SLUICE_API_ADDR)"))?;
    tracing::info!(%addr, "sluice-api listening");
    let egress = sluice_model::EgressPolicy::from_env().map_err(anyhow::Error::msg)?;
    let mut state = sluice_api::AppState::new(store, max_body_bytes).with_egress(egress);
    state.metrics_require_key = matches!(
        env("SLUICE_METRICS_REQUIRE_KEY").as_deref(),
        Some("1" | "true" | "yes")
    );
    match env("SLUICE_WEB_DIR").map(std::path::PathBuf::from) {
        Some(dir) if dir.join("index.html").is_file() => {
            tracing::info!(dir = %dir.display(), "serving the web UI at /");
            state = state.with_web_dir(dir);
        }
        Some(dir) => tracing::warn!(
            dir = %dir.display(),
            "SLUICE_WEB_DIR has no index.html (build the UI with `npm run build` in web/); serving the API only"
        ),
        None => tracing::info!("SLUICE_WEB_DIR is not set; serving the API only"),
    }
    let app = sluice_api::app(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(sluice_runtime::shutdown_signal())
        .await
        .context("serving HTTP")?;
    Ok(())
}
